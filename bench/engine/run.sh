#!/usr/bin/env bash
# Prefill and decode tokens/s of the CPU engine (bench/engine/engine_bench) and of
# llama.cpp's llama-bench, side by side in one run on the same random-weight 110M-shape
# llama files (F16, Q8_0, Q4_0, Q4_K) at 1 and 2 threads, as a markdown table with the
# Triplane/llama.cpp ratios and decode's share of the measured memory bandwidth.
#
#   BUILD_DIR=build-bench bench/engine/run.sh
#
# Builds no Triplane target: build `triplane`, `engine_bench` and `membw` first. Builds
# llama-bench once from the llama.cpp source bundle (scripts/llama-cpp-source) into
# $CACHE/llama.cpp-build, with the flags of ORACLES.md, llama.cpp section (~9 minutes on
# 2 cores the first time; -DGGML_NATIVE=ON, so the build belongs to this machine's CPU),
# and generates the model files once into $CACHE/bench-models.
#
# Environment (defaults in brackets):
#   BUILD_DIR       build tree holding triplane and bench/engine/* [build]
#   TRIPLANE_CACHE  cache directory ($CACHE) [$HOME/.cache/triplane]
#   TYPES           weight types [f16 q8_0 q4_0 q4_k]
#   THREADS         thread counts [1 2]
#   PROMPT          prefill tokens, llama-bench -p [128]
#   GEN             decoded tokens, llama-bench -n [64]
#   REPS            timed repetitions, llama-bench -r [3]
#   MEMBW_MIB       buffer of the bandwidth measurement, MiB [1024]
#   LOG_DIR         when set, the raw JSON of every run is kept there
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

readonly BUILD_DIR="${BUILD_DIR:-build}"
readonly CACHE="${TRIPLANE_CACHE:-$HOME/.cache/triplane}"
readonly TYPES="${TYPES:-f16 q8_0 q4_0 q4_k}"
readonly THREADS="${THREADS:-1 2}"
readonly PROMPT="${PROMPT:-128}"
readonly GEN="${GEN:-64}"
readonly REPS="${REPS:-3}"
readonly MEMBW_MIB="${MEMBW_MIB:-1024}"
readonly LOG_DIR="${LOG_DIR:-}"
readonly TRIPLANE_BIN="${BUILD_DIR}/triplane"
readonly ENGINE_BENCH="${BUILD_DIR}/bench/engine/engine_bench"
readonly MEMBW="${BUILD_DIR}/bench/engine/membw"

source bench/lib.sh

# ---- Prerequisites -----------------------------------------------------------------
for bin in "${TRIPLANE_BIN}" "${ENGINE_BENCH}" "${MEMBW}"; do
  [[ -x "${bin}" ]] ||
    die "${bin} not found; build it first: cmake --build ${BUILD_DIR} --target triplane engine_bench membw"
done
for n in "${PROMPT}" "${GEN}" "${REPS}" "${MEMBW_MIB}" ${THREADS}; do
  [[ "${n}" =~ ^[1-9][0-9]*$ ]] || die "PROMPT, GEN, REPS, MEMBW_MIB and THREADS must be positive integers"
done
ensure_jq

WORK="$(mktemp -d -t triplane-engine-bench.XXXXXX)"
trap 'rm -rf "${WORK}"' EXIT

# ---- llama-bench and the models, built and generated once --------------------------
LLAMA_BENCH="$(llama_cpp_tool llama-bench)" || exit 1
readonly LLAMA_BENCH
model_file() { bench_model "$1"; }
for type in ${TYPES}; do model_file "${type}" >/dev/null || exit 1; done

keep() { [[ -n "${LOG_DIR}" ]] && mkdir -p "${LOG_DIR}" && cp "$1" "${LOG_DIR}/"; return 0; }

# ---- Memory bandwidth --------------------------------------------------------------
# Measured around every case rather than once: on this kind of VM the host may place
# the vCPUs on one or on two core complexes, and 2-thread bandwidth moves between
# ~33 and ~55 GB/s with that placement. The higher of the two measurements is the
# ceiling for the case in between.
# measure_bandwidth THREADS OUT_JSON: prints best GB/s.
measure_bandwidth() {
  "${MEMBW}" --mib "${MEMBW_MIB}" --passes 5 --threads "$1" >"$2" || die "membw failed"
  keep "$2"
  jq -r '.results[0].best_gb_per_s' "$2"
}

# ---- Both engines, same files, same settings ---------------------------------------
ROWS=()  # jq -c objects, one per (type, threads)
for type in ${TYPES}; do
  file="$(model_file "${type}")"
  for t in ${THREADS}; do
    tri="${WORK}/triplane-${type}-t${t}.json"
    lcp="${WORK}/llama-${type}-t${t}.json"
    note "${type}, ${t} thread(s): membw, engine_bench, llama-bench, membw"
    bw_before="$(measure_bandwidth "${t}" "${WORK}/membw-${type}-t${t}-before.json")"
    "${ENGINE_BENCH}" -m "${file}" -t "${t}" -p "${PROMPT}" -n "${GEN}" -r "${REPS}" >"${tri}" ||
      die "engine_bench failed on ${file}"
    "${LLAMA_BENCH}" -m "${file}" -p "${PROMPT}" -n "${GEN}" -t "${t}" -r "${REPS}" -o json \
      >"${lcp}" 2>"${WORK}/llama-bench.err" ||
      die "llama-bench failed on ${file}: $(tail -5 "${WORK}/llama-bench.err")"
    bw_after="$(measure_bandwidth "${t}" "${WORK}/membw-${type}-t${t}-after.json")"
    keep "${tri}"
    keep "${lcp}"
    ROWS+=("$(jq -cn --slurpfile tri "${tri}" --slurpfile lcp "${lcp}" --arg type "${type}" \
      --argjson t "${t}" --argjson bw1 "${bw_before}" --argjson bw2 "${bw_after}" '
      ($lcp[0] | map(select(.n_prompt > 0 and .n_gen == 0))[0]) as $lp |
      ($lcp[0] | map(select(.n_prompt == 0 and .n_gen > 0))[0]) as $lg |
      {type: $type, threads: $t, bw: ([$bw1, $bw2] | max), bytes: $tri[0].decode_weight_bytes_per_token,
       target: $tri[0].kernel_target, llama_commit: $lp.build_commit, cpu: $lp.cpu_info,
       tp: $tri[0].prefill.mean_tokens_per_s, tp_sd: $tri[0].prefill.stddev_tokens_per_s,
       lp: $lp.avg_ts, lp_sd: $lp.stddev_ts,
       td: $tri[0].decode.mean_tokens_per_s, td_sd: $tri[0].decode.stddev_tokens_per_s,
       ld: $lg.avg_ts, ld_sd: $lg.stddev_ts}')")
  done
done

# ---- Report ------------------------------------------------------------------------
# Bandwidth share = weight bytes one decode step reads × decode tokens/s / read
# bandwidth of membw with the same thread count, measured just before and after.
printf '%s\n' "${ROWS[@]}" | jq -rs --arg prompt "${PROMPT}" --arg gen "${GEN}" --arg reps "${REPS}" --arg mib "${MEMBW_MIB}" '
  def f0: . * 10 | round / 10 | if . >= 100 then round | tostring else tostring end;
  def r2: . * 100 | round / 100 | tostring | if test("\\.") then (if test("\\.[0-9]$") then . + "0" else . end) else . + ".00" end;
  def pct: . * 100 | round | tostring + " %";
  def tps($m; $sd): ($m | f0) + " ± " + ($sd | f0);
  "| type | threads | Triplane prefill | llama.cpp prefill | ratio | Triplane decode | llama.cpp decode | ratio | read bandwidth | Triplane decode share of bandwidth | llama.cpp decode share |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  (.[] | "| \(.type) | \(.threads) | \(tps(.tp; .tp_sd)) | \(tps(.lp; .lp_sd)) | **\(.tp / .lp | r2)** | \(tps(.td; .td_sd)) | \(tps(.ld; .ld_sd)) | **\(.td / .ld | r2)** | \(.bw | f0) GB/s | \(.bytes * .td / (.bw * 1e9) | pct) | \(.bytes * .ld / (.bw * 1e9) | pct) |"),
  "",
  "Tokens/s, mean ± standard deviation of \($reps) repetitions (prefill: \($prompt) random tokens as one batch; decode: \($gen) tokens one at a time from an empty cache, as `llama-bench -p \($prompt) -n \($gen) -r \($reps)`). Ratios: Triplane/llama.cpp, above 1 is faster.",
  "Weight bytes read per decoded token (all layer matrices + output matrix): " + (group_by(.type) | map("\(.[0].type) \(.[0].bytes / 1e6 | round) MB") | join(", ")) + ".",
  "Read bandwidth: membw with the same thread count, best of 5 passes over \($mib) MiB, the higher of the runs just before and just after the case. Decode share of bandwidth = weight bytes read per token × decode tokens/s / read bandwidth; above 100 % means part of the weights came from the L3 cache or the bandwidth moved during the case.",
  "Triplane kernels: \(.[0].target); llama.cpp \(.[0].llama_commit) on \(.[0].cpu)."'
