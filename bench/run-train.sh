#!/bin/sh
# Runs the training benchmark (bench/train_vs_sklearn.py) against build/finmaas, building finmaas
# in Release first when build/finmaas is missing. Arguments are passed to the script, e.g.
#   bench/run-train.sh --epochs 5 --repeat 1
#   bench/run-train.sh --finmaas build-bench/finmaas
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$repo/build/finmaas" ]; then
    cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$repo/build" --target finmaas -j2
fi
exec /usr/bin/python3 "$repo/bench/train_vs_sklearn.py" --finmaas "$repo/build/finmaas" "$@"
