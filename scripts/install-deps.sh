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
  # tests: the validation report's browser test (headless)
  chromium
  # benchmarks: peers and load generator
  wrk nginx-light python3-flask gunicorn time
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
updated=0

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  updated=1
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Chart.js, which the validation report compiles in (src/report), comes from npm at the version
# pinned in web/package-lock.json. npm is Debian's package unless a Node.js install brought its own.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$root/web/node_modules/chart.js/dist/chart.umd.js" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps: installing npm"
    if [ "$updated" -eq 0 ]; then $sudo apt-get update -qq; fi
    $sudo apt-get install -y -qq --no-install-recommends npm
  fi
  echo "install-deps: installing web/node_modules (npm ci)"
  npm ci --prefix "$root/web" --no-audit --no-fund
else
  echo "install-deps: web/node_modules present"
fi
