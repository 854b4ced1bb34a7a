#!/bin/sh
# Runs the serving benchmark (bench/serve_bench.py) against build/finmaas with the load generator
# build/bench/fm_loadgen, building finmaas in Release first when build/finmaas is missing, and
# fm_loadgen when it is missing or older than bench/loadgen.c. Arguments are passed to the
# script, e.g.
#   bench/run-serve.sh --repeat 1
#   bench/run-serve.sh --finmaas build-bench/finmaas --threads 2
# A later --finmaas or --loadgen overrides the default one given here.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
build="$repo/build"
if [ ! -x "$build/finmaas" ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" --target finmaas -j2
fi
loadgen="$build/bench/fm_loadgen"
if [ ! -x "$loadgen" ] || [ "$repo/bench/loadgen.c" -nt "$loadgen" ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    cmake --build "$build" --target fm_loadgen -j2
fi
exec /usr/bin/python3 "$repo/bench/serve_bench.py" --finmaas "$build/finmaas" \
    --loadgen "$loadgen" "$@"
