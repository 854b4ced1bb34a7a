#!/bin/sh
# Runs the serving benchmark (bench/serve_bench.py) against build/finmaas, building finmaas in
# Release first when build/finmaas is missing. Arguments are passed to the script, e.g.
#   bench/run-serve.sh --repeat 1
#   bench/run-serve.sh --finmaas build-bench/finmaas --threads 2
# A later --finmaas overrides the default one given here.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$repo/build/finmaas" ]; then
    cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$repo/build" --target finmaas -j2
fi
exec /usr/bin/python3 "$repo/bench/serve_bench.py" --finmaas "$repo/build/finmaas" "$@"
