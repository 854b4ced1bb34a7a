#!/usr/bin/env bash
# Installs every build, test and runtime dependency of finmaas by Debian 12 package name.
# Idempotent: packages already present are left alone and nothing is downloaded outside apt.
# Uses sudo when not run as root.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  # runtime libraries
  libopenblas-dev libcjson-dev libjsmn-dev libsodium-dev libsqlite3-dev libmicrohttpd-dev libgnutls28-dev gnutls-bin curl
  # gradient-boosted trees (src/gbt links libxgboost through its C API)
  libxgboost-dev
  # Keras HDF5 import
  libhdf5-dev
  # tests and benchmarks: independent reference computations (never used at run time)
  python3 python3-numpy python3-sklearn python3-pandas python3-requests python3-xgboost python3-h5py
  # benchmarks: peers and load generator
  wrk nginx-light python3-flask gunicorn time
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
