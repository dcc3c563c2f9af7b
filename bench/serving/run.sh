#!/usr/bin/env bash
# Serving throughput and latency of `triplane engine` and of llama.cpp's llama-server,
# side by side in one run on the same random-weight 110M-shape Q8_0 model with the same
# thread count: aggregate output tokens/s and p50/p99 time to first token (TTFT) and
# time per output token (TPOT) at several concurrencies, and a shared-prefix workload
# (a ~1,000-token system prompt) that shows prefix caching. Prints markdown tables with
# Triplane/llama-server ratios.
#
#   BUILD_DIR=build bench/serving/run.sh
#
# Builds no Triplane target: build `triplane` and `serving_load` first. Builds
# llama-server once from the llama.cpp source bundle (bench/lib.sh).
#
# Environment (defaults in brackets):
#   BUILD_DIR       build tree holding triplane and bench/serving/serving_load [build]
#   TRIPLANE_CACHE  cache directory [$HOME/.cache/triplane]
#   THREADS         compute threads of both servers [2]
#   CONCURRENCY     client concurrencies [1 4 16 64]
#   GEN             tokens generated per request (ignore_eos) [64]
#   PROMPT_WORDS    words per prompt in the concurrency sweep [32]
#   PREFIX_WORDS    words of the shared system prompt (~1,000 tokens) [960]
#   KV_TYPE         KV cache entries of both servers: f16 or q8_0 (llama-server then runs
#                   -ctk q8_0 -ctv q8_0 -fa on, which its quantized V cache needs) [f16]
#   LOG_DIR         when set, the raw JSON and both servers' logs are kept there
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

readonly BUILD_DIR="${BUILD_DIR:-build}"
readonly CACHE="${TRIPLANE_CACHE:-$HOME/.cache/triplane}"
readonly THREADS="${THREADS:-2}"
readonly CONCURRENCY="${CONCURRENCY:-1 4 16 64}"
readonly GEN="${GEN:-64}"
readonly PROMPT_WORDS="${PROMPT_WORDS:-32}"
readonly PREFIX_WORDS="${PREFIX_WORDS:-960}"
readonly KV_TYPE="${KV_TYPE:-f16}"
readonly LOG_DIR="${LOG_DIR:-}"
readonly TRIPLANE_BIN="${BUILD_DIR}/triplane"
readonly LOAD="${BUILD_DIR}/bench/serving/serving_load"

source bench/lib.sh

for bin in "${TRIPLANE_BIN}" "${LOAD}"; do
  [[ -x "${bin}" ]] || die "${bin} not found; build it first: cmake --build ${BUILD_DIR} --target triplane serving_load"
done
for n in "${THREADS}" "${GEN}" "${PROMPT_WORDS}" "${PREFIX_WORDS}" ${CONCURRENCY}; do
  [[ "${n}" =~ ^[1-9][0-9]*$ ]] || die "THREADS, CONCURRENCY, GEN, PROMPT_WORDS and PREFIX_WORDS must be positive integers"
done
[[ "${KV_TYPE}" == f16 || "${KV_TYPE}" == q8_0 ]] || die "KV_TYPE must be f16 or q8_0"
LLAMA_KV_ARGS=()
[[ "${KV_TYPE}" == q8_0 ]] && LLAMA_KV_ARGS=(-ctk q8_0 -ctv q8_0 -fa on)
ensure_jq
LLAMA_SERVER="$(llama_cpp_tool llama-server)" || exit 1
MODEL="$(bench_model q8_0)" || exit 1
readonly LLAMA_SERVER MODEL

WORK="$(mktemp -d -t triplane-serving-bench.XXXXXX)"
SERVER_PID=""
stop_server() {
  if [[ -n "${SERVER_PID}" ]]; then
    kill "${SERVER_PID}" 2>/dev/null || true
    wait "${SERVER_PID}" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() {
  stop_server
  if [[ -n "${LOG_DIR}" ]]; then mkdir -p "${LOG_DIR}" && cp -r "${WORK}/." "${LOG_DIR}/"; fi
  rm -rf "${WORK}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_triplane LOG / start_llama SLOTS CTX LOG: one server on a free port; sets PORT.
start_triplane() {
  PORT="$(free_port)"
  "${TRIPLANE_BIN}" engine --model "${MODEL}" --host 127.0.0.1 --port "${PORT}" --threads "${THREADS}" \
    --ctx 2048 --max-seqs 64 --max-batch-tokens 512 --kv-memory $((1536 << 20)) --kv-type "${KV_TYPE}" \
    --served-model-name model \
    >"$1" 2>&1 &
  SERVER_PID=$!
  wait_http "http://127.0.0.1:${PORT}/health" 120
}
start_llama() {
  PORT="$(free_port)"
  "${LLAMA_SERVER}" -m "${MODEL}" --host 127.0.0.1 --port "${PORT}" -t "${THREADS}" -tb "${THREADS}" \
    --parallel "$1" -c "$2" -ngl 0 --alias model "${LLAMA_KV_ARGS[@]}" >"$3" 2>&1 &
  SERVER_PID=$!
  wait_http "http://127.0.0.1:${PORT}/health" 120
}

# load OUT ARGS...: runs the load generator against PORT into OUT (JSON).
load() {
  local out="$1"
  shift
  "${LOAD}" --url "http://127.0.0.1:${PORT}" --max-tokens "${GEN}" "$@" >"${out}" ||
    die "load failed: $(tail -3 "${out}" 2>/dev/null) (see ${LOG_DIR:-LOG_DIR unset})"
}

# ---- Concurrency sweep -------------------------------------------------------------
# Triplane: one engine for every concurrency (up to 64 sequences per step). llama-server:
# restarted per concurrency with that many slots of 256 positions each.
note "triplane engine: concurrency sweep"
start_triplane "${WORK}/triplane.log"
for c in ${CONCURRENCY}; do
  load "${WORK}/triplane-c${c}.json" --concurrency "${c}" --requests $((c < 4 ? 8 : 2 * c)) \
    --prompt-words "${PROMPT_WORDS}" --warmup 2
done
note "triplane engine: shared prefix"
load "${WORK}/triplane-prefix-cold.json" --concurrency 1 --requests 4 --prompt-words "${PREFIX_WORDS}" --warmup 1
load "${WORK}/triplane-prefix-warm.json" --concurrency 1 --requests 4 --prefix-words "${PREFIX_WORDS}" \
  --prompt-words 16 --warmup 1
stop_server
for c in ${CONCURRENCY}; do
  note "llama-server --parallel ${c}"
  start_llama "${c}" $((c * 256)) "${WORK}/llama-c${c}.log"
  load "${WORK}/llama-c${c}.json" --concurrency "${c}" --requests $((c < 4 ? 8 : 2 * c)) \
    --prompt-words "${PROMPT_WORDS}" --warmup 2
  stop_server
done
note "llama-server: shared prefix"
start_llama 1 2048 "${WORK}/llama-prefix.log"
load "${WORK}/llama-prefix-cold.json" --concurrency 1 --requests 4 --prompt-words "${PREFIX_WORDS}" --warmup 1
load "${WORK}/llama-prefix-warm.json" --concurrency 1 --requests 4 --prefix-words "${PREFIX_WORDS}" \
  --prompt-words 16 --warmup 1
stop_server

# ---- Tables --------------------------------------------------------------------------
f1() { jq -r "$1" "$2"; }
echo
echo "### Concurrency sweep (110M Q8_0, ${THREADS} threads, ${KV_TYPE} KV cache, ${PROMPT_WORDS}-word prompts, ${GEN} tokens each)"
echo
echo "| concurrency | server | output tokens/s | TTFT p50 | TTFT p99 | TPOT p50 | TPOT p99 | failed |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
for c in ${CONCURRENCY}; do
  for s in triplane llama; do
    j="${WORK}/${s}-c${c}.json"
    name=$([[ ${s} == triplane ]] && echo "Triplane" || echo "llama-server")
    printf '| %s | %s | %.0f | %.1f ms | %.1f ms | %.2f ms | %.2f ms | %s |\n' "${c}" "${name}" \
      "$(f1 .output_tokens_per_s "${j}")" "$(f1 .ttft_ms.p50 "${j}")" "$(f1 .ttft_ms.p99 "${j}")" \
      "$(f1 .tpot_ms.p50 "${j}")" "$(f1 .tpot_ms.p99 "${j}")" "$(f1 .failed "${j}")"
  done
  t="${WORK}/triplane-c${c}.json" l="${WORK}/llama-c${c}.json"
  printf '| %s | **Triplane/llama-server** | **%.2f** | **%.2f** | **%.2f** | **%.2f** | **%.2f** | |\n' "${c}" \
    "$(jq -n --slurpfile a "${t}" --slurpfile b "${l}" '$a[0].output_tokens_per_s / $b[0].output_tokens_per_s')" \
    "$(jq -n --slurpfile a "${t}" --slurpfile b "${l}" '$a[0].ttft_ms.p50 / $b[0].ttft_ms.p50')" \
    "$(jq -n --slurpfile a "${t}" --slurpfile b "${l}" '$a[0].ttft_ms.p99 / $b[0].ttft_ms.p99')" \
    "$(jq -n --slurpfile a "${t}" --slurpfile b "${l}" '$a[0].tpot_ms.p50 / $b[0].tpot_ms.p50')" \
    "$(jq -n --slurpfile a "${t}" --slurpfile b "${l}" '$a[0].tpot_ms.p99 / $b[0].tpot_ms.p99')"
done
first="$(echo ${CONCURRENCY} | awk '{print $1}')"
echo
echo "Scaling at each concurrency over concurrency ${first}: output tokens/s (prefill included), and"
echo "decode alone as concurrency / TPOT p50 (the aggregate rate of the decode steps):"
echo
echo "| concurrency | Triplane output | Triplane decode | llama-server output | llama-server decode |"
echo "|---:|---:|---:|---:|---:|"
for c in ${CONCURRENCY}; do
  ratio() {  # ratio SERVER FIELD: FIELD at c over FIELD at the first concurrency
    jq -n --slurpfile a "${WORK}/$1-c${c}.json" --slurpfile b "${WORK}/$1-c${first}.json" "$2"
  }
  out='$a[0].output_tokens_per_s / $b[0].output_tokens_per_s'
  dec="(${c} / \$a[0].tpot_ms.p50) / (${first} / \$b[0].tpot_ms.p50)"
  printf '| %s | %.2f | %.2f | %.2f | %.2f |\n' "${c}" "$(ratio triplane "${out}")" "$(ratio triplane "${dec}")" \
    "$(ratio llama "${out}")" "$(ratio llama "${dec}")"
done
echo
echo "### Shared prefix (${PREFIX_WORDS}-word system prompt + 16 words, concurrency 1)"
echo
echo "| server | TTFT p50, distinct prompts | TTFT p50, shared prefix | speed-up |"
echo "|---|---:|---:|---:|"
for s in triplane llama; do
  name=$([[ ${s} == triplane ]] && echo "Triplane" || echo "llama-server")
  cold="${WORK}/${s}-prefix-cold.json" warm="${WORK}/${s}-prefix-warm.json"
  printf '| %s | %.1f ms | %.1f ms | %.1fx |\n' "${name}" "$(f1 .ttft_ms.p50 "${cold}")" "$(f1 .ttft_ms.p50 "${warm}")" \
    "$(jq -n --slurpfile a "${cold}" --slurpfile b "${warm}" '$a[0].ttft_ms.p50 / $b[0].ttft_ms.p50')"
done
