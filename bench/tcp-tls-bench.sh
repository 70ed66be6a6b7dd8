#!/usr/bin/env bash
# tcp-tls-bench.sh — tcp_proxy throughput against HAProxy 'mode tcp', and TLS handshake rate
# against nginx, on a 2-core box: load generator and upstream on CPU 0, the proxy under test
# alone on CPU 1 (as bench/proxy-bench.sh). Run with --help for everything.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

usage() {
  cat <<'EOF'
usage: bench/tcp-tls-bench.sh [--help]

Two measurements, each target in turn, ROUNDS rounds interleaved:

tcp (TCP proxy throughput, issue: TLS and TCP proxy; target Legate >= 0.9x HAProxy):
  CPU 0: iperf3 client  -->  proxy (CPU 1): HAProxy 'mode tcp' | Legate tcp_proxy  -->  iperf3 server (CPU 0)
  iperf3 -t DURATION, one stream, upload (client -> server) and download (-R), Gbit/s as the
  receiver counted them. "direct" is iperf3 without a proxy (the ceiling of CPU 0).

l4 (TCP proxy request rate, the method of ../shared/bench's targets/l4.txt):
  CPU 0: wrk -t1 -c64 --latency (HTTP/1.1 keep-alive)  -->  proxy (CPU 1): HAProxy 'mode tcp' |
  Legate tcp_proxy  -->  nginx upstream (CPU 0, return 200 with a 100-byte body); req/s and p99.

tls (TLS handshake rate; compared with nginx):
  CPU 0: openssl s_time -new (a full handshake per connection, no resumption)
    -->  proxy (CPU 1): nginx 'ssl' server answering 200 | Legate TLS listener + direct_response
  Same RSA 2048 certificate (made here with openssl), TLS 1.3, default groups. legate_openssl is
  Legate's OpenSSL engine (a listener whose context sets session_timeout: 7200s, OpenSSL's default,
  so only the engine differs from "legate", which is SslStream). Reported:
  handshakes/s and handshakes per proxy CPU-second (the proxy's cost per handshake; s_time is
  single-threaded and may be the limit on one core, which the second figure does not depend on).

Environment (defaults in brackets):
  MODES          "tcp l4 tls"               TARGETS_TCP "direct haproxy legate" (tcp and l4;
                 legate_streams = Legate with LEGATE_SOCKET_ENGINE=dotnet, tcp_proxy's stream pumps)
  TARGETS_TLS    "nginx legate" (+ legate_openssl)  ROUNDS [2]   DURATION seconds per run [10]
  LEGATE_WARMUP  seconds of load before Legate's measured runs (JIT tier-up) [30]
  LEGATE_BIN     command starting Legate; "-c CONFIG --log-level warn" is appended
                 [env DOTNET_TieredPGO_InstrumentOnlyHotCode=0 dotnet src/Legate.Cli/bin/Release/net10.0/legate.dll]
                 (see bench/proxy-bench.sh --help on the variable; scripts/run.sh's
                 ReadyToRun build: LEGATE_BIN="dotnet artifacts/legate/legate.dll")
  RUN_DIR        [/tmp/legate-tcp-tls-bench]
  ports          IPERF_PORT 18090, HAPROXY_TCP_PORT 18092, LEGATE_TCP_PORT 18093,
                 NGINX_TLS_PORT 18451, LEGATE_TLS_PORT 18453, LEGATE_TLS_OPENSSL_PORT 18454, LEGATE_ADMIN_PORT 19902,
                 L4_UPSTREAM_PORT 18094 (nginx), HAPROXY_L4_PORT 18095, LEGATE_L4_PORT 18096
  LOAD_CPU [0]   PROXY_CPU [1]

Output: one line per measurement,
  BENCH mode=tcp name=NAME dir=up|down gbps=F proxy_cpu_pct=N round=N
  BENCH mode=l4 name=NAME rps=F p99_ms=F proxy_cpu_pct=N round=N
  BENCH mode=tls name=NAME hs_per_s=F hs_per_proxy_cpu_s=F proxy_cpu_pct=N round=N
then a markdown table of medians with the ratios to HAProxy (tcp) and nginx (tls).
Needs iperf3 (apt-get install -y iperf3), wrk, haproxy, nginx, openssl, taskset.
EOF
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

MODES=${MODES:-"tcp l4 tls"}
TARGETS_TCP=${TARGETS_TCP:-"direct haproxy legate"}
TARGETS_TLS=${TARGETS_TLS:-"nginx legate"}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10}
LEGATE_WARMUP=${LEGATE_WARMUP:-30}
LEGATE_BIN=${LEGATE_BIN:-"env DOTNET_TieredPGO_InstrumentOnlyHotCode=0 dotnet src/Legate.Cli/bin/Release/net10.0/legate.dll"}
RUN_DIR=${RUN_DIR:-/tmp/legate-tcp-tls-bench}
IPERF_PORT=${IPERF_PORT:-18090}
HAPROXY_TCP_PORT=${HAPROXY_TCP_PORT:-18092}
LEGATE_TCP_PORT=${LEGATE_TCP_PORT:-18093}
NGINX_TLS_PORT=${NGINX_TLS_PORT:-18451}
LEGATE_TLS_PORT=${LEGATE_TLS_PORT:-18453}
LEGATE_TLS_OPENSSL_PORT=${LEGATE_TLS_OPENSSL_PORT:-18454}
LEGATE_ADMIN_PORT=${LEGATE_ADMIN_PORT:-19902}
L4_UPSTREAM_PORT=${L4_UPSTREAM_PORT:-18094}
HAPROXY_L4_PORT=${HAPROXY_L4_PORT:-18095}
LEGATE_L4_PORT=${LEGATE_L4_PORT:-18096}
LOAD_CPU=${LOAD_CPU:-0}
PROXY_CPU=${PROXY_CPU:-1}
CLK_TCK=$(getconf CLK_TCK)
RESULTS="$RUN_DIR/results.txt"

log() { echo "# $*" >&2; }
die() { echo "tcp-tls-bench: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found; $2"; }
need taskset "apt-get install -y util-linux"
# Only what the chosen modes run (tls alone needs neither iperf3 nor wrk nor HAProxy).
[[ " $MODES " == *" tcp "* ]] && need iperf3 "apt-get install -y iperf3"
[[ " $MODES " == *" l4 "* ]] && need wrk "apt-get install -y wrk"
[[ " $MODES " == *" tcp "* || " $MODES " == *" l4 "* ]] && need haproxy "apt-get install -y haproxy"
need nginx "apt-get install -y nginx-light"
need openssl "apt-get install -y openssl"
need ss "apt-get install -y iproute2"
need python3 "apt-get install -y python3"
for n in ROUNDS DURATION LEGATE_WARMUP; do [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer"; done

STARTED=()
alive() { kill -0 "$1" 2>/dev/null; }
stop_pid() {
  local pid=$1 i
  alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() { local p; for p in "${STARTED[@]}"; do stop_pid "$p"; done; }
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

listening() { [[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]]; }
require_free() { local p; for p in "$@"; do listening "$p" && die "port $p is already in use"; done; return 0; }
wait_listen() {   # wait_listen PID LOG PORT
  local deadline=$((SECONDS + 60))
  until listening "$3"; do
    alive "$1" || { tail -n 20 "$2" >&2; die "process $1 exited before listening on $3"; }
    (( SECONDS < deadline )) || die "nothing listens on $3 after 60 s"
    sleep 0.1
  done
}
PID=""
start_bg() {      # start_bg CPU LOG CMD...
  local cpu=$1 logf=$2; shift 2
  taskset -c "$cpu" "$@" >"$logf" 2>&1 &
  PID=$!
  STARTED+=("$PID")
}
stop_started() { local p; for p in "${STARTED[@]}"; do stop_pid "$p"; done; STARTED=(); }
cpu_ticks() {     # utime+stime of a process tree's root (threads included)
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  rest=${stat##*) }
  read -r -a f <<<"$rest"
  echo $((f[11] + f[12] + f[13] + f[14]))
}
main_pid() {      # the real process behind a taskset/bash wrapper: the deepest single child
  local pid=$1 kid
  while kid=$(ps -o pid= --ppid "$pid" 2>/dev/null | head -n1) && [[ -n $kid ]]; do pid=${kid// /}; done
  echo "$pid"
}

mkdir -p "$RUN_DIR/nginx-tmp"
: >"$RESULTS"

# ---------------------------------------------------------------- configs
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
  -keyout "$RUN_DIR/key.pem" -out "$RUN_DIR/cert.pem" 2>/dev/null

cat >"$RUN_DIR/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 1s
    timeout client 120s
    timeout server 120s
listen tcp
    bind 127.0.0.1:$HAPROXY_TCP_PORT
    server iperf 127.0.0.1:$IPERF_PORT
listen l4
    bind 127.0.0.1:$HAPROXY_L4_PORT
    server nginx 127.0.0.1:$L4_UPSTREAM_PORT
EOF

nginx_head() {   # nginx_head NAME : the main context and the start of http {} for an nginx in RUN_DIR
  cat <<EOF
worker_processes 1;
daemon off;
pid $RUN_DIR/$1.pid;
error_log $RUN_DIR/$1.error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $RUN_DIR/nginx-tmp/$1-body;
    proxy_temp_path $RUN_DIR/nginx-tmp/$1-proxy;
    fastcgi_temp_path $RUN_DIR/nginx-tmp/$1-fastcgi;
    uwsgi_temp_path $RUN_DIR/nginx-tmp/$1-uwsgi;
    scgi_temp_path $RUN_DIR/nginx-tmp/$1-scgi;
EOF
}

{ nginx_head nginx; cat <<EOF
    ssl_session_cache off;
    ssl_session_tickets off;
    server {
        listen 127.0.0.1:$NGINX_TLS_PORT ssl;
        ssl_certificate $RUN_DIR/cert.pem;
        ssl_certificate_key $RUN_DIR/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "ok\n"; }
    }
}
EOF
} >"$RUN_DIR/nginx.conf"

BODY=$(printf 'x%.0s' $(seq 1 99))
{ nginx_head upstream; cat <<EOF
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$L4_UPSTREAM_PORT;
        location / { default_type text/plain; return 200 "$BODY\n"; }
    }
}
EOF
} >"$RUN_DIR/upstream.conf"

# One Legate listener terminating TLS in front of a direct 200: name, port, extra DownstreamTlsContext
# fields (tls_openssl sets session_timeout, which puts that chain on the OpenSSL engine).
legate_tls_listener() {
  cat <<EOF
  - name: $1
    address: { socket_address: { address: 127.0.0.1, port_value: $2 } }
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext$3
          common_tls_context:
            tls_certificates: [{ certificate_chain: { filename: "$RUN_DIR/cert.pem" }, private_key: { filename: "$RUN_DIR/key.pem" } }]
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $1
          route_config:
            virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok\n" } } }] }]
          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }]
EOF
}

cat >"$RUN_DIR/legate.yaml" <<EOF
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: $LEGATE_ADMIN_PORT } }
static_resources:
  listeners:
  - name: tcp
    address: { socket_address: { address: 127.0.0.1, port_value: $LEGATE_TCP_PORT } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: tcp, cluster: iperf }
  - name: l4
    address: { socket_address: { address: 127.0.0.1, port_value: $LEGATE_L4_PORT } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: l4, cluster: nginx }
$(legate_tls_listener tls "$LEGATE_TLS_PORT" "")
$(legate_tls_listener tls_openssl "$LEGATE_TLS_OPENSSL_PORT" $'\n          session_timeout: 7200s')
  clusters:
  - name: iperf
    connect_timeout: 1s
    load_assignment:
      cluster_name: iperf
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $IPERF_PORT } } } }] }]
  - name: nginx
    connect_timeout: 1s
    load_assignment:
      cluster_name: nginx
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $L4_UPSTREAM_PORT } } } }] }]
EOF

# ---------------------------------------------------------------- proxies
start_proxy() {  # start_proxy NAME PORT : starts NAME on PROXY_CPU, sets PROXY_PID
  local name=$1 port=$2 logf="$RUN_DIR/$1.log"
  require_free "$port"
  case $name in
    haproxy) start_bg "$PROXY_CPU" "$logf" haproxy -db -f "$RUN_DIR/haproxy.cfg" ;;
    nginx) start_bg "$PROXY_CPU" "$logf" nginx -p "$RUN_DIR" -c "$RUN_DIR/nginx.conf" ;;
    legate|legate_streams|legate_openssl)
      # legate_streams: .NET's socket engine (LEGATE_SOCKET_ENGINE=dotnet), i.e. tcp_proxy's stream pumps, for an A/B in one run.
      local engine=""; [[ $name == legate_streams ]] && engine="LEGATE_SOCKET_ENGINE=dotnet"
      require_free "$LEGATE_ADMIN_PORT"
      start_bg "$PROXY_CPU" "$logf" bash -c "cd \"\$1\" && exec env $engine $LEGATE_BIN -c \"\$2\" --log-level warn" legate "$REPO_ROOT" "$RUN_DIR/legate.yaml" ;;
  esac
  wait_listen "$PID" "$logf" "$port"
  PROXY_PID=$(main_pid "$PID")
  log "started $name (pid $PROXY_PID) on CPU $PROXY_CPU, port $port"
}

iperf_once() {   # iperf_once PORT DIR(up|down) SECONDS : prints Gbit/s received
  local flag="" json="$RUN_DIR/iperf.json"
  [[ $2 == down ]] && flag="-R"
  taskset -c "$LOAD_CPU" timeout $(($3 + 30)) iperf3 -c 127.0.0.1 -p "$1" -t "$3" $flag -J >"$json" 2>/dev/null || true
  python3 -c 'import json,sys
try:
  d=json.load(open(sys.argv[1])); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))
except Exception: print("0")' "$json"
}

s_time_once() { # s_time_once PORT SECONDS : prints handshakes/s
  taskset -c "$LOAD_CPU" timeout $(($2 + 30)) openssl s_time -connect "127.0.0.1:$1" -new -time "$2" 2>/dev/null \
    | awk '/connections in .* real seconds/ { n=$1; for (i=1;i<=NF;i++) if ($(i+1)=="real") t=$i; printf "%.1f\n", n/t; found=1 } END { if (!found) print 0 }'
}

measure_tcp() {  # measure_tcp NAME ROUND
  local name=$1 round=$2 port dir before after gbps cpu
  case $name in direct) port=$IPERF_PORT ;; haproxy) port=$HAPROXY_TCP_PORT ;; legate*) port=$LEGATE_TCP_PORT ;; esac
  PROXY_PID=""
  [[ $name != direct ]] && start_proxy "$name" "$port"
  [[ $name == legate* ]] && (( LEGATE_WARMUP > 0 )) && { log "legate tcp: warm-up ${LEGATE_WARMUP}s"; iperf_once "$port" up "$LEGATE_WARMUP" >/dev/null; }
  for dir in up down; do
    before=$([[ -n $PROXY_PID ]] && cpu_ticks "$PROXY_PID" || echo 0)
    gbps=$(iperf_once "$port" "$dir" "$DURATION")
    after=$([[ -n $PROXY_PID ]] && cpu_ticks "$PROXY_PID" || echo 0)
    cpu=$([[ -n $PROXY_PID ]] && echo $(( (after - before) * 100 / CLK_TCK / DURATION )) || echo -)
    echo "BENCH mode=tcp name=$name dir=$dir gbps=$gbps proxy_cpu_pct=$cpu round=$round" | tee -a "$RESULTS"
  done
  [[ -n $PROXY_PID ]] && { stop_pid "${STARTED[-1]}"; STARTED=("${STARTED[@]:0:${#STARTED[@]}-1}"); }
  return 0
}

wrk_once() {     # wrk_once PORT SECONDS : prints "rps p99_ms"
  taskset -c "$LOAD_CPU" timeout $(($2 + 30)) wrk -t1 -c64 -d"$2"s --latency "http://127.0.0.1:$1/" 2>/dev/null \
    | awk '/Requests\/sec:/ { rps=$2 }
           $1=="99%" { v=$2; if (v ~ /us$/) { sub(/us$/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v) } else if (v ~ /s$/) { sub(/s$/,"",v); v=v*1000 } p99=v }
           END { printf "%s %s\n", (rps == "" ? 0 : rps), (p99 == "" ? 0 : p99) }'
}

measure_l4() {   # measure_l4 NAME ROUND
  local name=$1 round=$2 port before after out cpu usreq
  case $name in direct) port=$L4_UPSTREAM_PORT ;; haproxy) port=$HAPROXY_L4_PORT ;; legate*) port=$LEGATE_L4_PORT ;; esac
  PROXY_PID=""
  [[ $name != direct ]] && start_proxy "$name" "$port"
  if [[ $name == legate* ]]; then
    (( LEGATE_WARMUP > 0 )) && { log "legate l4: warm-up ${LEGATE_WARMUP}s"; wrk_once "$port" "$LEGATE_WARMUP" >/dev/null; }
  else
    wrk_once "$port" 3 >/dev/null
  fi
  before=$([[ -n $PROXY_PID ]] && cpu_ticks "$PROXY_PID" || echo 0)
  out=$(wrk_once "$port" "$DURATION")
  after=$([[ -n $PROXY_PID ]] && cpu_ticks "$PROXY_PID" || echo 0)
  cpu=$([[ -n $PROXY_PID ]] && echo $(( (after - before) * 100 / CLK_TCK / DURATION )) || echo -)
  # The proxy's CPU time per request (µs): less sensitive to other load on the machine than req/s.
  usreq=$([[ -n $PROXY_PID ]] && python3 -c 'import sys; t,r,d,h=map(float,sys.argv[1:]); print("%.1f" % (t/h*1e6/(r*d)) if r else "0")' "$((after - before))" "${out% *}" "$DURATION" "$CLK_TCK" || echo -)
  echo "BENCH mode=l4 name=$name rps=${out% *} p99_ms=${out#* } proxy_cpu_pct=$cpu cpu_us_per_req=$usreq round=$round" | tee -a "$RESULTS"
  [[ -n $PROXY_PID ]] && { stop_pid "${STARTED[-1]}"; STARTED=("${STARTED[@]:0:${#STARTED[@]}-1}"); }
  return 0
}

measure_tls() {  # measure_tls NAME ROUND
  local name=$1 round=$2 port before after rate cpu per
  case $name in nginx) port=$NGINX_TLS_PORT ;; legate) port=$LEGATE_TLS_PORT ;; legate_openssl) port=$LEGATE_TLS_OPENSSL_PORT ;; esac
  start_proxy "$name" "$port"
  [[ $name == legate* ]] && (( LEGATE_WARMUP > 0 )) && { log "legate tls: warm-up ${LEGATE_WARMUP}s"; s_time_once "$port" "$LEGATE_WARMUP" >/dev/null; }
  before=$(cpu_ticks "$PROXY_PID")
  rate=$(s_time_once "$port" "$DURATION")
  after=$(cpu_ticks "$PROXY_PID")
  cpu=$(( (after - before) * 100 / CLK_TCK / DURATION ))
  per=$(python3 -c 'import sys; r,c=float(sys.argv[1]),int(sys.argv[2]); print("%.1f" % (r*100/c if c else 0))' "$rate" "$cpu")
  echo "BENCH mode=tls name=$name hs_per_s=$rate hs_per_proxy_cpu_s=$per proxy_cpu_pct=$cpu round=$round" | tee -a "$RESULTS"
  stop_pid "${STARTED[-1]}"; STARTED=("${STARTED[@]:0:${#STARTED[@]}-1}")
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load1 $(cut -d' ' -f1 /proc/loadavg)"
echo "versions: $(haproxy -v 2>/dev/null | head -n1); $(nginx -v 2>&1); $(iperf3 --version 2>/dev/null | head -n1); $(openssl version)"
echo "legate: $LEGATE_BIN"

if [[ " $MODES " == *" tcp "* ]]; then
  require_free "$IPERF_PORT"
  start_bg "$LOAD_CPU" "$RUN_DIR/iperf-server.log" iperf3 -s -p "$IPERF_PORT"
  IPERF_SERVER=$PID
  wait_listen "$IPERF_SERVER" "$RUN_DIR/iperf-server.log" "$IPERF_PORT"
  for ((r = 1; r <= ROUNDS; r++)); do
    for t in $TARGETS_TCP; do measure_tcp "$t" "$r"; done
  done
fi

if [[ " $MODES " == *" l4 "* ]]; then
  require_free "$L4_UPSTREAM_PORT"
  start_bg "$LOAD_CPU" "$RUN_DIR/upstream.log" nginx -p "$RUN_DIR" -c "$RUN_DIR/upstream.conf"
  wait_listen "$PID" "$RUN_DIR/upstream.log" "$L4_UPSTREAM_PORT"
  for ((r = 1; r <= ROUNDS; r++)); do
    for t in $TARGETS_TCP; do measure_l4 "$t" "$r"; done
  done
fi

if [[ " $MODES " == *" tls "* ]]; then
  for ((r = 1; r <= ROUNDS; r++)); do
    for t in $TARGETS_TLS; do measure_tls "$t" "$r"; done
  done
fi
stop_started

python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
rows = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in open(sys.argv[1]) if line.startswith("BENCH")]
tcp = collections.defaultdict(list); tls = collections.defaultdict(list); l4 = collections.defaultdict(list)
for r in rows:
    if r["mode"] == "tcp": tcp[(r["name"], r["dir"])].append(r)
    elif r["mode"] == "l4": l4[r["name"]].append(r)
    else: tls[r["name"]].append(r)
if tcp:
    print("\n| tcp target | dir | Gbit/s (median) | proxy CPU % | / HAProxy |\n|---|---|---:|---:|---:|")
    for (name, d), rs in tcp.items():
        g = statistics.median(float(x["gbps"]) for x in rs)
        h = tcp.get(("haproxy", d)); hg = statistics.median(float(x["gbps"]) for x in h) if h else 0
        cpu = rs[-1]["proxy_cpu_pct"]
        print(f"| {name} | {d} | {g:.2f} | {cpu} | {g / hg:.2f} |" if hg else f"| {name} | {d} | {g:.2f} | {cpu} | - |")
if l4:
    print("\n| l4 target (wrk through TCP) | req/s (median) | p99 ms | proxy CPU % | proxy CPU µs/req | / HAProxy req/s | p99 / HAProxy |\n|---|---:|---:|---:|---:|---:|---:|")
    h = l4.get("haproxy")
    hr = statistics.median(float(x["rps"]) for x in h) if h else 0
    hp = statistics.median(float(x["p99_ms"]) for x in h) if h else 0
    for name, rs in l4.items():
        rps = statistics.median(float(x["rps"]) for x in rs); p99 = statistics.median(float(x["p99_ms"]) for x in rs)
        ratio = f"{rps / hr:.2f} | {p99 / hp:.2f}" if hr and hp else "- | -"
        us = [float(x["cpu_us_per_req"]) for x in rs if x.get("cpu_us_per_req", "-") != "-"]
        usm = f"{statistics.median(us):.1f}" if us else "-"
        print(f"| {name} | {rps:.0f} | {p99:.2f} | {rs[-1]['proxy_cpu_pct']} | {usm} | {ratio} |")
if tls:
    print("\n| tls target | handshakes/s (median) | per proxy CPU-s | / nginx (per CPU-s) |\n|---|---:|---:|---:|")
    n = tls.get("nginx"); nper = statistics.median(float(x["hs_per_proxy_cpu_s"]) for x in n) if n else 0
    for name, rs in tls.items():
        rate = statistics.median(float(x["hs_per_s"]) for x in rs)
        per = statistics.median(float(x["hs_per_proxy_cpu_s"]) for x in rs)
        print(f"| {name} | {rate:.0f} | {per:.0f} | {per / nper:.2f} |" if nper else f"| {name} | {rate:.0f} | {per:.0f} | - |")
PY
