#!/usr/bin/env bash
# The gateway's added latency: the same small request (1 completion token from a tiny
# random model) sent with wrk straight to an engine instance and through the gateway of
# `triplane serve` (API key check, limits, routing, usage row), side by side in one run.
# Prints a markdown table; the difference of the two is what the gateway adds.
#
#   BUILD_DIR=build bench/gateway/run.sh
#
# Environment (defaults in brackets):
#   BUILD_DIR    build tree holding ./triplane [build]
#   DURATION     wrk duration per case [10s]
#   CONNECTIONS  concurrency of the throughput case [16]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

readonly BUILD_DIR="${BUILD_DIR:-build}"
readonly DURATION="${DURATION:-10s}"
readonly CONNECTIONS="${CONNECTIONS:-16}"
readonly TRIPLANE="${BUILD_DIR}/triplane"
CACHE="${TRIPLANE_CACHE:-${HOME}/.cache/triplane}"
source bench/lib.sh

[[ -x "${TRIPLANE}" ]] || die "${TRIPLANE} not found; build first (make build)"
command -v wrk >/dev/null || die "wrk not found (Debian: apt-get install wrk)"
ensure_jq

WORK="$(mktemp -d -t triplane-gateway-bench.XXXXXX)"
SERVE_PID=""
cleanup() {
  if [[ -n "${SERVE_PID}" ]] && kill -0 "${SERVE_PID}" 2>/dev/null; then
    kill -TERM "${SERVE_PID}" 2>/dev/null || true
    wait "${SERVE_PID}" 2>/dev/null || true
  fi
  rm -rf "${WORK}"
}
trap cleanup EXIT

PORT="$(free_port)"
"${TRIPLANE}" serve --port "${PORT}" --no-demo --data-dir "${WORK}/data" --log-level warn \
  >"${WORK}/serve.out" 2>"${WORK}/serve.log" &
SERVE_PID=$!
URL="http://127.0.0.1:${PORT}"
wait_http "${URL}/health" 60
cli() { "${TRIPLANE}" "$@" --server "${URL}" --data-dir "${WORK}/data"; }

"${TRIPLANE}" gguf random --size tiny --type q8_0 --out "${WORK}/tiny.gguf" >/dev/null
cli models add tiny "${WORK}/tiny.gguf" >/dev/null
cli deploy tiny --model tiny --threads 1 --wait --timeout 120 >/dev/null
ENGINE="$(cli ps tiny --json | jq -r '.instances[0].url')"
KEY="$(head -n1 "${WORK}/data/admin.key")"
# Wait until the gateway routes to the instance.
for _ in $(seq 1 200); do
  curl -sf -H "authorization: Bearer ${KEY}" "${URL}/v1/models" | grep -q '"tiny"' && break
  sleep 0.05
done

cat >"${WORK}/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"model": "tiny", "prompt": "a", "max_tokens": 1, "ignore_eos": true}'
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer ${KEY}"
LUA

# wrk's latency percentile line "  50%  1.23ms" in milliseconds.
percentile() {
  awk -v p="$1" '$1 == p {
    v = $2; unit = v; gsub(/[0-9.]/, "", unit); sub(/[a-z]+$/, "", v);
    if (unit == "us") v /= 1000; else if (unit == "s") v *= 1000;
    printf "%.3f", v }' "$2"
}
rps() { awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$1"; }

run() {  # run NAME TARGET CONNECTIONS
  wrk -t1 -c"$3" -d"${DURATION}" --latency -s "${WORK}/post.lua" "$2/v1/completions" >"${WORK}/$1.txt"
  grep -q "Non-2xx" "${WORK}/$1.txt" && die "$1: non-2xx answers: $(cat "${WORK}/$1.txt")"
  return 0
}

note "measuring: ${DURATION} per case; engine ${ENGINE}, gateway ${URL}"
run direct1 "${ENGINE}" 1
run gateway1 "${URL}" 1
run directN "${ENGINE}" "${CONNECTIONS}"
run gatewayN "${URL}" "${CONNECTIONS}"

d50=$(percentile 50% "${WORK}/direct1.txt"); d99=$(percentile 99% "${WORK}/direct1.txt")
g50=$(percentile 50% "${WORK}/gateway1.txt"); g99=$(percentile 99% "${WORK}/gateway1.txt")
echo
echo "| case | direct to the engine | through the gateway | added by the gateway |"
echo "|---|---:|---:|---:|"
printf "| 1 connection, p50 latency | %s ms | %s ms | %.3f ms |\n" "$d50" "$g50" "$(awk -v a="$g50" -v b="$d50" "BEGIN { print a - b }")"
printf "| 1 connection, p99 latency | %s ms | %s ms | %.3f ms |\n" "$d99" "$g99" "$(awk -v a="$g99" -v b="$d99" "BEGIN { print a - b }")"
printf "| 1 connection, requests/s | %s | %s | |\n" "$(rps "${WORK}/direct1.txt")" "$(rps "${WORK}/gateway1.txt")"
printf "| %s connections, p50 / p99 | %s / %s ms | %s / %s ms | |\n" "${CONNECTIONS}" \
  "$(percentile 50% "${WORK}/directN.txt")" "$(percentile 99% "${WORK}/directN.txt")" \
  "$(percentile 50% "${WORK}/gatewayN.txt")" "$(percentile 99% "${WORK}/gatewayN.txt")"
printf "| %s connections, requests/s | %s | %s | |\n" "${CONNECTIONS}" \
  "$(rps "${WORK}/directN.txt")" "$(rps "${WORK}/gatewayN.txt")"
