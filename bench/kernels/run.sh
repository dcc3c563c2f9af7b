#!/usr/bin/env bash
# Runs the CPU kernel benchmark from $BUILD_DIR (default build); builds nothing.
# Knobs: FILTER (benchmark regex, default all), MIN_TIME (seconds per case, default 0.5).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN="${BUILD_DIR:-build}/bench/kernels/kernels_bench"
if [[ ! -x "$BIN" ]]; then
  echo "missing $BIN: cmake --build ${BUILD_DIR:-build} --target kernels_bench" >&2
  exit 1
fi
exec "$BIN" --benchmark_filter="${FILTER:-.}" --benchmark_min_time="${MIN_TIME:-0.5}"
