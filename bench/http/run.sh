#!/usr/bin/env bash
# Loads the Triplane HTTP server (bench/http/http_bench_server) and nginx, side by side
# in one run, with the same wrk settings, and prints a markdown table with the ratios.
#
#   BUILD_DIR=build-bench bench/http/run.sh
#
# Builds nothing: build the `http_bench_server` target first. Installs nginx (Debian
# package) when it is missing, but never uses the system nginx service: it runs its own
# nginx in the foreground from a temporary directory on 127.0.0.1.
#
# Environment (defaults in brackets):
#   BUILD_DIR   build tree holding bench/http/http_bench_server [build]
#   DURATION    wrk duration per case and server [10s]
#   THREADS     Triplane --threads and nginx worker_processes [2]
#   SSE_EVENTS  `data:` events per SSE response, before `data: [DONE]` [16]
#   LOG_DIR     when set, raw wrk output is kept there
set -euo pipefail

readonly BUILD_DIR="${BUILD_DIR:-build}"
readonly DURATION="${DURATION:-10s}"
readonly THREADS="${THREADS:-2}"
readonly SSE_EVENTS="${SSE_EVENTS:-16}"
readonly LOG_DIR="${LOG_DIR:-}"
readonly SERVER_BIN="${BUILD_DIR}/bench/http/http_bench_server"

die() { echo "run.sh: $*" >&2; exit 1; }
note() { echo "run.sh: $*" >&2; }

# ---- Prerequisites -----------------------------------------------------------------
[[ -x "${SERVER_BIN}" ]] ||
  die "${SERVER_BIN} not found; build it first: cmake --build ${BUILD_DIR} --target http_bench_server"
command -v wrk >/dev/null || die "wrk not found (Debian: apt-get install wrk)"
command -v curl >/dev/null || die "curl not found"
[[ "${SSE_EVENTS}" =~ ^[0-9]+$ ]] || die "SSE_EVENTS must be a non-negative integer"
[[ "${THREADS}" =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer"

find_nginx() { command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; }; }
NGINX="$(find_nginx || true)"
if [[ -z "${NGINX}" ]]; then
  note "nginx is missing; installing the Debian package (benchmarks only)"
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "nginx is missing and this is not root; install nginx"
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  ${SUDO} apt-get install -y --no-install-recommends nginx >&2 ||
    { ${SUDO} apt-get update >&2 && ${SUDO} apt-get install -y --no-install-recommends nginx >&2; } ||
    die "could not install nginx"
  NGINX="$(find_nginx)" || die "nginx installed but not found"
fi

# ---- Cleanup: everything started here is stopped by PID, also on error --------------
WORK="$(mktemp -d -t triplane-http-bench.XXXXXX)"
PIDS=()  # every process this script started (servers, nginx workers, wrk)

stop_pid() {
  local pid="$1"
  kill -0 "${pid}" 2>/dev/null || return 0
  kill -TERM "${pid}" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "${pid}" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "${pid}" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  # Newest first: wrk, then nginx workers, then the servers.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  for pid in "${PIDS[@]}"; do wait "${pid}" 2>/dev/null || true; done
  rm -rf "${WORK}"
  exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A TCP port nobody listens on now (small race with other processes; nginx fails
# loudly if it loses it).
free_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! ss -Htln "sport = :${port}" | grep -q .; then echo "${port}"; return 0; fi
  done
  die "no free port found"
}

# Waits until GET $1 answers 200, or dies after ~10 s.
wait_ready() {
  for _ in $(seq 100); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" == 200 ]] && return 0
    sleep 0.1
  done
  die "$1 did not come up"
}

# ---- Triplane ----------------------------------------------------------------------
"${SERVER_BIN}" --port 0 --threads "${THREADS}" --log-level warn \
  >"${WORK}/triplane.out" 2>"${WORK}/triplane.err" &
PIDS+=($!)
TRIPLANE_PID=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "${WORK}/triplane.out" && break
  kill -0 "${TRIPLANE_PID}" 2>/dev/null || die "http_bench_server exited: $(cat "${WORK}/triplane.err")"
  sleep 0.1
done
TRIPLANE_PORT="$(sed -n 's|^listening on http://.*:\([0-9]*\)$|\1|p' "${WORK}/triplane.out")"
[[ -n "${TRIPLANE_PORT}" ]] || die "http_bench_server did not report its port"
TRIPLANE_URL="http://127.0.0.1:${TRIPLANE_PORT}"
wait_ready "${TRIPLANE_URL}/hello"

# ---- nginx: the static peer --------------------------------------------------------
# The SSE peer is a static file with the same bytes Triplane streams; nginx sends it
# with Content-Length in one write, Triplane chunk by chunk (the closest static peer).
SSE_FILE="${WORK}/sse.events"
: >"${SSE_FILE}"
for ((i = 0; i < SSE_EVENTS; i++)); do printf 'data: {"i":%d}\n\n' "${i}" >>"${SSE_FILE}"; done
printf 'data: [DONE]\n\n' >>"${SSE_FILE}"
JSON_BODY="$(curl -s "${TRIPLANE_URL}/json")"
mkdir -p "${WORK}/logs" "${WORK}/tmp"
# Workers may run as `nobody` when started as root: let them read the static file.
chmod 755 "${WORK}"
chmod 644 "${SSE_FILE}"

NGINX_PORT="$(free_port)"
cat >"${WORK}/nginx.conf" <<EOF
worker_processes ${THREADS};
pid ${WORK}/nginx.pid;
error_log ${WORK}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${WORK}/tmp/body;
  proxy_temp_path ${WORK}/tmp/proxy;
  fastcgi_temp_path ${WORK}/tmp/fastcgi;
  uwsgi_temp_path ${WORK}/tmp/uwsgi;
  scgi_temp_path ${WORK}/tmp/scgi;
  sendfile on;
  tcp_nodelay on;
  keepalive_timeout 75s;
  keepalive_requests 1000000;  # like Triplane: no per-connection request cap
  server {
    listen 127.0.0.1:${NGINX_PORT};
    location = /hello { default_type "text/plain; charset=utf-8"; return 200 "hello"; }
    location = /json { default_type application/json; return 200 '${JSON_BODY}'; }
    location = /sse { types { } default_type text/event-stream; alias ${SSE_FILE}; }
  }
}
EOF
"${NGINX}" -e "${WORK}/logs/error.log" -c "${WORK}/nginx.conf" -p "${WORK}" -g 'daemon off;' \
  >"${WORK}/nginx.out" 2>&1 &
PIDS+=($!)
NGINX_PID=$!
NGINX_URL="http://127.0.0.1:${NGINX_PORT}"
sleep 0.2
kill -0 "${NGINX_PID}" 2>/dev/null ||
  die "nginx exited: $(cat "${WORK}/nginx.out" "${WORK}/logs/error.log" 2>/dev/null)"
wait_ready "${NGINX_URL}/hello"
# Workers too, so that the trap stops them even if the master dies first.
for pid in $(pgrep -P "${NGINX_PID}" || true); do PIDS+=("${pid}"); done

# Both must serve the same bytes, or the comparison means nothing.
for path in /hello /json "/sse?events=${SSE_EVENTS}"; do
  cmp -s <(curl -s "${TRIPLANE_URL}${path}") <(curl -s "${NGINX_URL}${path}") ||
    die "Triplane and nginx differ on ${path}"
done

# ---- wrk ---------------------------------------------------------------------------
cat >"${WORK}/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests / seconds, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
EOF

ROWS=()  # "case|server|rps|p50_us|p99_us|errors|events_per_request"

# run_case NAME WRK_THREADS CONNECTIONS PATH EVENTS_PER_REQUEST
run_case() {
  local name="$1" threads="$2" connections="$3" path="$4" events="$5"
  local server url out line
  for server in Triplane nginx; do
    [[ "${server}" == Triplane ]] && url="${TRIPLANE_URL}" || url="${NGINX_URL}"
    out="${WORK}/wrk-$(tr -c 'A-Za-z0-9\n' '_' <<<"${name}-t${threads}-c${connections}-${server}").txt"
    note "${name}: ${server} (wrk -t${threads} -c${connections} -d${DURATION})"
    wrk -t"${threads}" -c"${connections}" -d"${DURATION}" --timeout 5s --latency \
      -s "${WORK}/report.lua" "${url}${path}" >"${out}" 2>&1 &
    PIDS+=($!)
    wait $! || die "wrk failed: $(cat "${out}")"
    [[ -n "${LOG_DIR}" ]] && mkdir -p "${LOG_DIR}" && cp "${out}" "${LOG_DIR}/"
    line="$(grep '^RESULT ' "${out}")" || die "no result from wrk: $(cat "${out}")"
    line="$(sed -E 's/RESULT rps=([^ ]+) p50_us=([^ ]+) p99_us=([^ ]+) errors=([^ ]+) non2xx=([^ ]+)/\1|\2|\3|\4+\5/' <<<"${line}")"
    ROWS+=("${name} (-t${threads} -c${connections})|${server}|${line}|${events}")
  done
}

run_case "GET /hello" 2 64 /hello 0
run_case "GET /hello" 1 1 /hello 0
run_case "GET /json" 2 64 /json 0
run_case "SSE ${SSE_EVENTS} events" 2 64 "/sse?events=${SSE_EVENTS}" "${SSE_EVENTS}"
run_case "SSE ${SSE_EVENTS} events" 1 1 "/sse?events=${SSE_EVENTS}" "${SSE_EVENTS}"

if [[ -n "${LOG_DIR}" ]]; then
  cp "${WORK}/triplane.err" "${LOG_DIR}/triplane.err"
  cp "${WORK}/logs/error.log" "${LOG_DIR}/nginx-error.log" 2>/dev/null || true
fi
[[ -s "${WORK}/triplane.err" ]] &&
  note "http_bench_server logged at warn or above:" && head -20 "${WORK}/triplane.err" >&2
kill -0 "${TRIPLANE_PID}" 2>/dev/null || die "http_bench_server died during the run"
kill -0 "${NGINX_PID}" 2>/dev/null || die "nginx died during the run"

# ---- Report ------------------------------------------------------------------------
# Ratios are Triplane/nginx: above 1 is better for requests/s and events/s, worse for
# latency.
echo "| case | server | requests/s | events/s | p50 | p99 | errors + non-2xx |"
echo "|---|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}" | awk -F'|' '
  function lat(us) { return us < 1000 ? sprintf("%d µs", us) : sprintf("%.2f ms", us / 1000) }
  function ev(rps, n) { return n > 0 ? sprintf("%.0f", rps * n) : "–" }
  function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "n/a" }
  {
    split($6, err, "+")
    printf "| %s | %s | %.0f | %s | %s | %s | %d + %d |\n", $1, $2, $3, ev($3, $7), lat($4), lat($5), err[1], err[2]
    if ($2 == "Triplane") { t_rps = $3; t_p50 = $4; t_p99 = $5 }
    else {
      printf "| %s | **Triplane/nginx** | **%s** | %s | **%s** | **%s** | |\n", $1, ratio(t_rps, $3), \
        ($7 > 0 ? "**" ratio(t_rps, $3) "**" : "–"), ratio(t_p50, $4), ratio(t_p99, $5)
    }
  }'
echo
echo "Ratios: Triplane/nginx; above 1 is better for requests/s and events/s, worse for p50/p99."
echo "p50/p99 as wrk 4 reports them, i.e. with its coordinated-omission correction."
echo "SSE events/s = requests/s × ${SSE_EVENTS} events per response (the final \`data: [DONE]\` not counted)."
