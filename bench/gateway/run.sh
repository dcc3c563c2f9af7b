#!/usr/bin/env bash
# The gateway's added latency: the same small request (1 completion token from a tiny
# random model) sent with wrk straight to an engine instance and through the gateway of
# `triplane serve` (API key check, limits, routing, usage row), side by side in one run.
# Then the same at a fixed rate (open loop, RATE requests/s), and STREAMS concurrent SSE
# streams held through a separate `triplane gateway` process, whose memory per stream is
# measured. Prints markdown tables; the difference of the two is what the gateway adds.
#
#   BUILD_DIR=build bench/gateway/run.sh
#
# Environment (defaults in brackets):
#   BUILD_DIR    build tree holding ./triplane [build]
#   DURATION     wrk duration per case [10s]
#   CONNECTIONS  concurrency of the throughput case [16]
#   RATE         fixed request rate of the open-loop case [1000]
#   STREAMS      SSE streams held at once [1000]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

readonly BUILD_DIR="${BUILD_DIR:-build}"
readonly DURATION="${DURATION:-10s}"
readonly CONNECTIONS="${CONNECTIONS:-16}"
readonly RATE="${RATE:-1000}"
readonly STREAMS="${STREAMS:-1000}"
readonly TRIPLANE="${BUILD_DIR}/triplane"
readonly LOAD="${BUILD_DIR}/bench/gateway/gateway_load"
CACHE="${TRIPLANE_CACHE:-${HOME}/.cache/triplane}"
source bench/lib.sh

[[ -x "${TRIPLANE}" ]] || die "${TRIPLANE} not found; build first (make build)"
[[ -x "${LOAD}" ]] || die "${LOAD} not found; build it: cmake --build ${BUILD_DIR} --target gateway_load"
command -v wrk >/dev/null || die "wrk not found (Debian: apt-get install wrk)"
ensure_jq

WORK="$(mktemp -d -t triplane-gateway-bench.XXXXXX)"
SERVE_PID=""
STREAM_ENGINE_PID=""
GATEWAY_PID=""
cleanup() {
  for pid in "${GATEWAY_PID}" "${STREAM_ENGINE_PID}" "${SERVE_PID}"; do
    if [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null; then
      kill -TERM "${pid}" 2>/dev/null || true
      wait "${pid}" 2>/dev/null || true
    fi
  done
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

# ---- fixed rate (open loop) ----
rate_run() {  # rate_run NAME URL [KEY]
  "${LOAD}" rate --url "$2" --key "${3:-}" --model tiny --rate "${RATE}" --seconds "${DURATION%s}" >"${WORK}/$1.json" \
    || die "$1: failed requests: $(cat "${WORK}/$1.json")"
}
note "fixed rate: ${RATE} requests/s for ${DURATION}, direct then through the gateway"
rate_run rate_direct "${ENGINE}"
rate_run rate_gateway "${URL}" "${KEY}"
q() { jq -r "$1" "${WORK}/$2.json"; }
echo
echo "| ${RATE} requests/s, open loop | direct to the engine | through the gateway | added by the gateway |"
echo "|---|---:|---:|---:|"
for p in p50 p99 p999; do
  d=$(q ".latency_ms.${p}" rate_direct); g=$(q ".latency_ms.${p}" rate_gateway)
  printf "| %s latency | %.3f ms | %.3f ms | %.3f ms |\n" "${p}" "$d" "$g" "$(awk -v a="$g" -v b="$d" 'BEGIN { print a - b }')"
done
printf "| achieved rate | %.0f/s | %.0f/s | |\n" "$(q .achieved_rate rate_direct)" "$(q .achieved_rate rate_gateway)"

# ---- many held streams through a split gateway ----
# An engine with room for every stream at once, registered as an external backend (any
# OpenAI-compatible server is one), and a `triplane gateway` process of its own, so that
# the memory measured is the gateway's alone.
ENGINE_PORT="$(free_port)"
"${TRIPLANE}" engine --model "${WORK}/tiny.gguf" --port "${ENGINE_PORT}" --served-model-name streams --threads 1 \
  --max-seqs "$((STREAMS + 24))" --max-batch-tokens "$((STREAMS + 24))" --max-waiting "$((STREAMS * 2))" --ctx 4096 --kv-memory 2GiB --log-level warn \
  >"${WORK}/streams-engine.out" 2>"${WORK}/streams-engine.log" &
STREAM_ENGINE_PID=$!
wait_http "http://127.0.0.1:${ENGINE_PORT}/health" 60
cli backends set streams --model streams --url "http://127.0.0.1:${ENGINE_PORT}/v1" >/dev/null
GATEWAY_PORT="$(free_port)"
"${TRIPLANE}" gateway --port "${GATEWAY_PORT}" --control "${URL}" --admin-key "${KEY}" --log-level warn \
  >"${WORK}/gateway.out" 2>"${WORK}/gateway.log" &
GATEWAY_PID=$!
GATEWAY="http://127.0.0.1:${GATEWAY_PORT}"
wait_http "${GATEWAY}/health" 60
for _ in $(seq 1 200); do
  curl -sf -H "authorization: Bearer ${KEY}" "${GATEWAY}/v1/models" | grep -q '"streams"' && break
  sleep 0.05
done
# As long a stream as the model's context allows, so that each outlasts the hold.
STREAM_TOKENS=$(( $(curl -sf "http://127.0.0.1:${ENGINE_PORT}/v1/models" | jq '.data[0].max_model_len') - 16 ))
note "holding ${STREAMS} streams of up to ${STREAM_TOKENS} tokens through ${GATEWAY} (pid ${GATEWAY_PID})"
"${LOAD}" streams --url "${GATEWAY}" --key "${KEY}" --model streams --streams "${STREAMS}" --pid "${GATEWAY_PID}" \
  --hold 3 --max-tokens "${STREAM_TOKENS}" >"${WORK}/streams.json" || die "streams: $(cat "${WORK}/streams.json")"
echo
echo "| concurrent SSE streams through \`triplane gateway\` | value |"
echo "|---|---:|"
printf "| streams held | %s of %s |\n" "$(q .held streams)" "$(q .streams streams)"
printf "| gateway RSS idle / holding them | %.1f / %.1f MiB |\n" \
  "$(awk -v b="$(q .rss_idle_bytes streams)" 'BEGIN { print b / 1048576 }')" \
  "$(awk -v b="$(q .rss_held_bytes streams)" 'BEGIN { print b / 1048576 }')"
printf "| memory per stream | %.1f KB |\n" "$(awk -v b="$(q .bytes_per_stream streams)" 'BEGIN { print b / 1000 }')"
