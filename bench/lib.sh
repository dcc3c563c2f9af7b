# Shared by bench/*/run.sh (sourced, not run): messages, jq, the llama.cpp peer build and
# the generated model files. Expects CACHE, and for bench_model a TRIPLANE_BIN.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
note() { echo "$(basename "$0"): $*" >&2; }

# Installs Debian's jq when it is missing (as root, or through sudo).
ensure_jq() {
  command -v jq >/dev/null && return 0
  note "jq is missing; installing the Debian package (benchmarks only)"
  local sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "jq is missing and this is not root; install jq"
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  ${sudo} apt-get install -y --no-install-recommends jq >&2 ||
    { ${sudo} apt-get update >&2 && ${sudo} apt-get install -y --no-install-recommends jq >&2; } ||
    die "could not install jq"
}

# llama_cpp_tool NAME: builds llama.cpp's NAME (llama-bench, llama-server) once from the
# source bundle (scripts/llama-cpp-source) into $CACHE/llama.cpp-build with the flags of
# ORACLES.md (-DGGML_NATIVE=ON: the build belongs to this machine's CPU) and prints its
# path. flock: two runs at once build it once, not twice into one tree.
llama_cpp_tool() {
  local name="$1" src build="${CACHE}/llama.cpp-build"
  src="$(scripts/llama-cpp-source)" || die "no llama.cpp source (run scripts/setup)"
  mkdir -p "${CACHE}"
  (
    flock 9
    if [[ ! -x "${build}/bin/${name}" ]]; then
      note "building ${name} into ${build} (once; several minutes on 2 cores)"
      cmake -S "${src}" -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
        -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=ON >&2
      ninja -C "${build}" "${name}" >&2
    fi
  ) 9>"${CACHE}/llama.cpp-build.lock" || die "could not build ${name}"
  [[ -x "${build}/bin/${name}" ]] || die "${build}/bin/${name} missing after the build"
  echo "${build}/bin/${name}"
}

# bench_model TYPE: prints the path of the random-weight 110M-shape llama model of TYPE
# (Llama 2 vocabulary, seed 1), generating it into $CACHE/bench-models the first time.
bench_model() {
  local type="$1" src vocab file
  file="${CACHE}/bench-models/llama-110m-${type}-seed1.gguf"
  if [[ ! -f "${file}" ]]; then
    src="$(scripts/llama-cpp-source)" || die "no llama.cpp source (run scripts/setup)"
    vocab="${src}/models/ggml-vocab-llama-spm.gguf"
    [[ -f "${vocab}" ]] || die "${vocab} is missing"
    mkdir -p "${CACHE}/bench-models"
    note "generating ${file}"
    "${TRIPLANE_BIN}" gguf random --arch llama --size 110m --type "${type}" --vocab-from "${vocab}" \
      --seed 1 --out "${file}" >&2 || die "could not generate ${file}"
  fi
  echo "${file}"
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS: until URL answers 200, or die.
wait_http() {
  local url="$1" secs="$2" i
  for ((i = 0; i < secs * 10; ++i)); do
    curl -sf -o /dev/null "${url}" && return 0
    sleep 0.1
  done
  die "${url} did not answer within ${secs}s"
}
