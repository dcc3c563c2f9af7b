#!/usr/bin/env bash
# The soak test at length: `triplane serve` and its engine under mixed plain, streamed and
# abandoned requests for SOAK_SECONDS (default 600; CI runs the same test for 40 s), with
# serve's and the engine's RSS, descriptors and threads sampled each second. Prints the
# test's figures line (requests, latency p50/p99 per half, resources at the warm point
# and at the end) and fails when a resource grew or KV blocks stayed in use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD_DIR=${BUILD_DIR:-build}
cmake --build "${BUILD_DIR}" --target triplane integration_tests >/dev/null
export TRIPLANE_LLAMA_CPP_SOURCE=${TRIPLANE_LLAMA_CPP_SOURCE:-$(scripts/llama-cpp-source)}
TRIPLANE_SOAK_SECONDS=${SOAK_SECONDS:-600} "${BUILD_DIR}/tests/integration_tests" \
  --gtest_filter='SoakTest.*' | grep -E '^\[ figures \]|FAILED|PASSED|error'
