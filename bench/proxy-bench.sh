#!/usr/bin/env bash
# proxy-bench.sh — HTTP proxy benchmark for a 2-core box: nginx, HAProxy and Legate
# against the same upstream, with the load generator and upstream on CPU 0 and the
# proxy under test alone on CPU 1. Run with --help for everything.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

usage() {
  cat <<'EOF'
usage: bench/proxy-bench.sh [--help]

Measures HTTP proxies on this machine (made for 2 cores) and prints one
machine-readable BENCH line per measurement plus a markdown summary table.

Topology (everything on 127.0.0.1):
  CPU 0: wrk / h2load (load)  -->  proxy under test (CPU 1, alone)  -->  upstream nginx (CPU 0)
  upstream: nginx, 1 worker, "return 200" with a fixed 100-byte body, keep-alive
            (10M requests per connection), access_log off, HTTP/1.1 on UPSTREAM_PORT.

Targets (TARGETS, space separated, run in this order in every round):
  direct   wrk straight at the upstream (no proxy): the ceiling. h1 only.
  nginx    nginx reverse proxy, 1 worker, upstream keepalive pool.
           h1 on NGINX_PORT, h2c (prior knowledge) on NGINX_H2C_PORT.
  haproxy  HAProxy 'mode http', 1 thread, 'http-reuse always'.
           h1 on HAPROXY_PORT, h2c on HAPROXY_H2C_PORT.
  legate   Legate, started with LEGATE_CMD from the repository root.
           h1 on LEGATE_PORT; h2c only when LEGATE_H2C_PORT is set.
  legate-b a second Legate build (LEGATE_B_DLL), on LEGATE_B_PORT with admin on
           LEGATE_B_ADMIN_PORT (bench/legate-bench.yaml with those ports), h1 only:
           with CONCURRENT, TARGETS="legate legate-b" is a drift-free A/B of two builds.

Load (both wrapped in 'timeout'):
  h1 : taskset -c 0 wrk -t1 -c64 -d${DURATION}s --latency -s bench/wrk-report.lua URL
  h2c: taskset -c 0 h2load -t1 -c16 -m10 -D ${DURATION} --log-file=... URL
Every measured run is preceded by an unrecorded warm-up run of the same load
(WARMUP s; LEGATE_WARMUP s for legate, because a JIT-compiled .NET proxy needs
about 60 s of load at one core to tier up). Each protocol gets its own warm-up.

Environment (defaults in brackets):
  TARGETS            targets to run                      ["direct nginx haproxy legate"]
  ROUNDS             rounds; targets interleaved per round [1]
  DURATION           seconds per measured run            [10]
  WARMUP             warm-up seconds (direct/nginx/haproxy) [3]
  LEGATE_WARMUP      warm-up seconds for legate          [60]
  RUN_DIR            generated configs, logs, raw output [/tmp/legate-bench]
  LEGATE_CMD         command starting Legate in the foreground, run from the repo root
                     [env DOTNET_TieredPGO_InstrumentOnlyHotCode=0 dotnet src/Legate.Cli/bin/Release/net10.0/legate.dll -c bench/legate-bench.yaml --log-level warn]
                     (the variable makes tiered PGO profile from the first call, so code that
                     runs once per connection finishes tiering in the warm-up: see
                     docs/performance.md, "JIT tiering and the tail"; scripts/run.sh sets it too)
                     (build first: dotnet build src/Legate.Cli -c Release)
  LEGATE_PORT        Legate h1 port (must match the config) [18083]
  LEGATE_B_DLL       legate.dll of the build the legate-b target runs (copy a Release
                     output folder aside first: cp -r src/Legate.Cli/bin/Release/net10.0 /tmp/a) []
  LEGATE_B_PORT / LEGATE_B_ADMIN_PORT   [18093 / 19911]
  LEGATE_H2C_PORT    Legate h2c port; empty = no h2c run  []
  TRAJECTORY         N > 0: instead of warm-up + one measurement, measure a freshly
                     started Legate (h1) in N back-to-back windows of WINDOW s and
                     print one TRAJECTORY line per window: how long the JIT takes to
                     reach steady throughput (compare a JIT and a ReadyToRun build) [0]
  WINDOW             seconds per trajectory window          [5]
  PAIRED             N > 0: instead of rounds of start/warm-up/measure/stop, start every
                     target at once (all on PROXY_CPU; an idle proxy uses no CPU), warm each
                     up once, then measure them alternately N times (order reversed every
                     other time), DURATION s each. Two targets measured a few seconds apart
                     see the same machine, so their ratio is far less noisy on a VM whose speed
                     drifts between minutes; prints one PAIR line per round (rps / nginx's rps)
                     and their median. ROUNDS is ignored. [0]
  CONCURRENT         N > 0: exactly two TARGETS (e.g. "nginx legate"), both started on
                     PROXY_CPU, then loaded AT THE SAME TIME, WRK_CONNS/2 connections each:
                     a warm-up of the longer warm-up, then N rounds of DURATION s. The two
                     proxies share one saturated core, so drift of the VM's speed hits both
                     alike; each round prints one CONCURRENT line: both rps, the ratio
                     (second / first), and each proxy's CPU µs (user, system) per request,
                     then the medians. This compares CPU cost per request (within ~1% here),
                     not the latency-bound throughput of one proxy alone. ROUNDS is ignored. [0]
  LEGATE_ADMIN_PORT  checked to be free before starting Legate [19901]
  UPSTREAM_PORT      [18080]
  NGINX_PORT / NGINX_H2C_PORT        [18081 / 18181]
  HAPROXY_PORT / HAPROXY_H2C_PORT    [18082 / 18182]  (empty h2c port = skip h2c)
  WRK_CONNS          wrk connections                     [64]
  H2_CLIENTS         h2load clients                      [16]
  H2_STREAMS         h2load max concurrent streams per client [10]
  LOAD_CPU           CPU of load generator and upstream  [0]
  PROXY_CPU          CPU of the proxy under test         [1]
  READY_TIMEOUT      max seconds to wait for a port to listen [60]

Output:
  BENCH name=NAME proto=h1|h2c rps=F p50_ms=F p99_ms=F errors=N proxy_cpu_pct=N
        upstream_cpu_pct=N upstream_us_per_req=F upstream_sleeps_per_req=F load1=F round=N
        warmup_s=N duration_s=N
    upstream_us_per_req, upstream_sleeps_per_req (h1): the upstream nginx's CPU µs and
            voluntary context switches per request; it shares the load generator's core, so
            what a proxy makes it pay comes out of everyone's rate.
    errors: wrk = socket errors (connect+read+write+timeout) + responses >= 400;
            h2load = max(failed, 4xx+5xx) (h2load's "failed" already includes
            4xx/5xx); if no request completed at all, every started request.
    proxy_cpu_pct: CPU time of the proxy (all its processes) / wall time of the
            measured run (100 = its core is saturated); "-" for direct.
    A run that produced no parsable output gives rps=0 errors=-1.
  BENCH lines are also appended to $RUN_DIR/results.txt (new file per invocation).
  Final markdown table per target+proto: median rps, median p50/p99, summed
  errors, rps / nginx rps and p99 / nginx p99 (same proto; "-" without nginx).

Safety: refuses to start when a needed port is already listening; waits for
ports by bounded polling; stops only processes it started, by PID (SIGTERM,
SIGKILL after 10 s), also on Ctrl-C.

Example:
  TARGETS="direct nginx haproxy" DURATION=5 WARMUP=2 bench/proxy-bench.sh
  ROUNDS=3 bench/proxy-bench.sh            # full comparison incl. legate (60 s warm-ups)
  TARGETS="nginx legate" PAIRED=10 DURATION=5 bench/proxy-bench.sh   # paired, 10 x 5 s each
  TARGETS="nginx legate" NGINX_H2C_PORT= CONCURRENT=6 DURATION=8 bench/proxy-bench.sh   # at once, 6 x 8 s
  TARGETS="legate legate-b" LEGATE_B_DLL=/tmp/a/legate.dll CONCURRENT=8 DURATION=8 bench/proxy-bench.sh
                                           # A/B of two builds (run the same build as both first: the A/A ratio is the bias)
EOF
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

TARGETS=${TARGETS:-"direct nginx haproxy legate"}
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
LEGATE_WARMUP=${LEGATE_WARMUP:-60}
RUN_DIR=${RUN_DIR:-/tmp/legate-bench}
LEGATE_CMD=${LEGATE_CMD:-"env DOTNET_TieredPGO_InstrumentOnlyHotCode=0 dotnet src/Legate.Cli/bin/Release/net10.0/legate.dll -c bench/legate-bench.yaml --log-level warn"}
LEGATE_PORT=${LEGATE_PORT:-18083}
LEGATE_H2C_PORT=${LEGATE_H2C_PORT:-}
LEGATE_B_DLL=${LEGATE_B_DLL:-}
LEGATE_B_PORT=${LEGATE_B_PORT:-18093}
LEGATE_B_ADMIN_PORT=${LEGATE_B_ADMIN_PORT:-19911}
LEGATE_ADMIN_PORT=${LEGATE_ADMIN_PORT:-19901}
UPSTREAM_PORT=${UPSTREAM_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}
NGINX_H2C_PORT=${NGINX_H2C_PORT-18181}
HAPROXY_PORT=${HAPROXY_PORT:-18082}
HAPROXY_H2C_PORT=${HAPROXY_H2C_PORT-18182}
WRK_CONNS=${WRK_CONNS:-64}
H2_CLIENTS=${H2_CLIENTS:-16}
H2_STREAMS=${H2_STREAMS:-10}
LOAD_CPU=${LOAD_CPU:-0}
PROXY_CPU=${PROXY_CPU:-1}
READY_TIMEOUT=${READY_TIMEOUT:-60}
TRAJECTORY=${TRAJECTORY:-0}
WINDOW=${WINDOW:-5}
PAIRED=${PAIRED:-0}
CONCURRENT=${CONCURRENT:-0}

WRK_LUA="$SCRIPT_DIR/wrk-report.lua"
RESULTS="$RUN_DIR/results.txt"
CLK_TCK=$(getconf CLK_TCK)

log() { echo "# $*" >&2; }
die() { echo "proxy-bench: $*" >&2; exit 1; }

for n in ROUNDS DURATION WARMUP LEGATE_WARMUP WRK_CONNS H2_CLIENTS H2_STREAMS READY_TIMEOUT TRAJECTORY WINDOW; do
  [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer (got '${!n}')"
done
(( DURATION > 0 )) || die "DURATION must be > 0"
for t in $TARGETS; do
  case $t in direct|nginx|haproxy|legate|legate-b) ;; *) die "unknown target '$t' (direct nginx haproxy legate legate-b)";; esac
done
if [[ " $TARGETS " == *" legate-b "* ]]; then
  [[ -n $LEGATE_B_DLL && -f $LEGATE_B_DLL ]] || die "legate-b needs LEGATE_B_DLL, the legate.dll of the other build (got '$LEGATE_B_DLL')"
fi

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found; $2"; }
need taskset "apt-get install -y util-linux"
need timeout "apt-get install -y coreutils"
need ss "apt-get install -y iproute2"
need nginx "apt-get install -y nginx-light"
need wrk "apt-get install -y wrk"
[[ " $TARGETS " == *" haproxy "* ]] && need haproxy "apt-get install -y haproxy"
if [[ " $TARGETS " == *" nginx "* && -n $NGINX_H2C_PORT ]] || [[ " $TARGETS " == *" haproxy "* && -n $HAPROXY_H2C_PORT ]] \
   || [[ " $TARGETS " == *" legate "* && -n $LEGATE_H2C_PORT ]]; then
  need h2load "apt-get install -y nghttp2-client"
fi
[[ -f $WRK_LUA ]] || die "missing $WRK_LUA"

# ---------------------------------------------------------------- processes

STARTED_PIDS=()   # every PID this script started and has not stopped yet

descendants() {   # all descendant PIDs of $1 (recursive)
  local kid
  for kid in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
    echo "$kid"
    descendants "$kid"
  done
}

alive() { kill -0 "$1" 2>/dev/null; }

stop_pid() {      # SIGTERM the PID we started (and its descendants), SIGKILL after 10 s
  local pid=$1 tree i
  alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
  tree="$pid $(descendants "$pid" | tr '\n' ' ')"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  # SIGKILL whatever is left of the tree that existed when we started stopping it
  for p in $tree; do alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
  local keep=() s
  for s in "${STARTED_PIDS[@]}"; do [[ $s == "$pid" ]] || keep+=("$s"); done
  STARTED_PIDS=("${keep[@]}")
}

LOAD_PID=""      # the load run in progress (timeout wrapping wrk/h2load), if any

cleanup() {
  local p
  if [[ -n $LOAD_PID ]] && alive "$LOAD_PID"; then
    kill -TERM "$LOAD_PID" 2>/dev/null || true   # timeout forwards it to wrk/h2load
    wait "$LOAD_PID" 2>/dev/null || true
  fi
  if [[ -n $SIDE_LOAD_PID ]] && alive "$SIDE_LOAD_PID"; then
    # the subshell of both_load, and under it timeout and wrk
    for p in $(descendants "$SIDE_LOAD_PID") "$SIDE_LOAD_PID"; do kill -TERM "$p" 2>/dev/null || true; done
    wait "$SIDE_LOAD_PID" 2>/dev/null || true
  fi
  for p in "${STARTED_PIDS[@]}"; do stop_pid "$p"; done
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

port_listening() { [[ -n $(ss -Htln "sport = :$1" 2>/dev/null) ]]; }

require_free() {
  local p
  for p in "$@"; do
    [[ -z $p ]] && continue
    if port_listening "$p"; then
      die "port $p is already in use (ss -tlnp 'sport = :$p'); refusing to start"
    fi
  done
}

wait_listen() {   # wait_listen PID NAME LOGFILE PORT... : bounded polling
  local pid=$1 name=$2 logf=$3 p deadline
  shift 3
  deadline=$((SECONDS + READY_TIMEOUT))
  for p in "$@"; do
    [[ -z $p ]] && continue
    until port_listening "$p"; do
      if ! alive "$pid"; then
        echo "---- last lines of $logf" >&2; tail -n 20 "$logf" >&2 || true
        die "$name exited before listening on port $p"
      fi
      (( SECONDS < deadline )) || { tail -n 20 "$logf" >&2 || true; die "$name did not listen on port $p within ${READY_TIMEOUT}s"; }
      sleep 0.1
    done
  done
}

START_PID=""
start_bg() {      # start_bg NAME CPU LOGFILE CMD... : run CMD in the background pinned to CPU
  local name=$1 cpu=$2 logf=$3
  shift 3
  taskset -c "$cpu" "$@" >"$logf" 2>&1 &
  START_PID=$!
  STARTED_PIDS+=("$START_PID")
  log "started $name pid=$START_PID on CPU $cpu: $*"
}

sleeps() {        # voluntary context switches (times it went to sleep) of the given PIDs, summed
  local p n=0 v
  for p in "$@"; do
    v=$(awk '/^voluntary_ctxt_switches:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
    n=$(( n + ${v:-0} ))
  done
  echo "$n"
}

cpu_ticks() {     # utime+stime of the given PIDs (threads included)
  local u s
  read -r u s <<<"$(cpu_split "$@")"
  echo $((u + s))
}

# user and system ticks (two numbers) of the given PIDs (threads included)
cpu_split() {
  local u=0 s=0 p stat rest f
  for p in "$@"; do
    stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    rest=${stat##*) }                    # fields from 3 on (comm may contain spaces)
    read -r -a f <<<"$rest"
    u=$((u + f[11])) s=$((s + f[12]))    # fields 14, 15
  done
  echo "$u $s"
}

# ---------------------------------------------------------------- configs

BODY=$(printf 'x%.0s' $(seq 1 99))       # 99 'x' + "\n" = 100 bytes

nginx_common() {  # nginx_common NAME : main-context directives, all files in RUN_DIR
  cat <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $RUN_DIR/$1.pid;
error_log $RUN_DIR/$1.error.log warn;
events { worker_connections 4096; }
EOF
}

nginx_http_common() {
  local d="$RUN_DIR/$1-tmp"
  cat <<EOF
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
EOF
}

write_configs() {
  mkdir -p "$RUN_DIR/upstream-tmp" "$RUN_DIR/nginx-proxy-tmp"
  {
    nginx_common upstream
    echo "http {"
    nginx_http_common upstream
    cat <<EOF
    server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        location / {
            default_type text/plain;
            return 200 "$BODY\n";
        }
    }
}
EOF
  } >"$RUN_DIR/upstream.conf"

  local h2listen=""
  [[ -n $NGINX_H2C_PORT ]] && h2listen="        listen 127.0.0.1:$NGINX_H2C_PORT http2;"
  {
    nginx_common nginx-proxy
    echo "http {"
    nginx_http_common nginx-proxy
    cat <<EOF
    upstream bench_upstream {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 256;
        keepalive_requests 10000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
$h2listen
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
  } >"$RUN_DIR/nginx-proxy.conf"

  local h2bind=""
  [[ -n $HAPROXY_H2C_PORT ]] && h2bind="    bind 127.0.0.1:$HAPROXY_H2C_PORT proto h2"
  cat >"$RUN_DIR/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096

defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    http-reuse always

frontend bench
    bind 127.0.0.1:$HAPROXY_PORT
$h2bind
    default_backend upstream

backend upstream
    server up1 127.0.0.1:$UPSTREAM_PORT
EOF
}

# ---------------------------------------------------------------- load runs

BENCH_LINES=()

load1() { cut -d' ' -f1 /proc/loadavg; }

# run_load PROTO PORT SECONDS OUTFILE : one load run (wrk or h2load), bounded by timeout
run_load() {
  local proto=$1 port=$2 secs=$3 out=$4 rc=0
  local url="http://127.0.0.1:$port/"
  if [[ $proto == h1 ]]; then
    timeout --kill-after=5 $((secs + 30)) taskset -c "$LOAD_CPU" \
      wrk -t1 -c"$WRK_CONNS" -d"${secs}s" --latency -s "$WRK_LUA" "$url" >"$out" 2>&1 </dev/null &
  else
    timeout --kill-after=5 $((secs + 30)) taskset -c "$LOAD_CPU" \
      h2load -t1 -c"$H2_CLIENTS" -m"$H2_STREAMS" -D "$secs" --log-file="$out.reqlog" "$url" >"$out" 2>&1 </dev/null &
  fi
  # in the background + wait, so that Ctrl-C interrupts at once and cleanup() can stop it
  LOAD_PID=$!
  wait "$LOAD_PID" || rc=$?
  LOAD_PID=""
  (( rc == 0 )) || log "load run exited with status $rc (see $out)"
  return 0
}

# percentile_ms FILE P : P-th percentile (nearest rank) of column 3 (µs) of an h2load log, in ms
percentile_ms() {
  local n
  n=$(awk -F'\t' '$2 != -1' "$1" | wc -l)
  (( n > 0 )) || { echo 0; return; }
  awk -F'\t' '$2 != -1 {print $3}' "$1" | sort -n | awk -v n="$n" -v p="$2" '
    BEGIN { k = int((p * n + 99) / 100); if (k < 1) k = 1 }
    NR == k { v = $1 }
    END { printf "%.3f\n", v / 1000 }'   # no early exit: that would SIGPIPE sort under pipefail
}

# measure NAME PROTO PORT WARMUP_S ROUND PROXY_PID(or "")
measure() {
  local name=$1 proto=$2 port=$3 warm=$4 round=$5 ppid=$6
  local tag="$RUN_DIR/r${round}-${name}-${proto}"
  local rps=0 p50=0 p99=0 errors=-1 pcpu="-" ucpu l1 t0 t1 pt0=0 pt1 ut0 ut1 us0 us1 pids="" upids
  local up_us="-" up_sleeps="-"

  if (( warm > 0 )); then
    log "$name $proto: warm-up ${warm}s"
    run_load "$proto" "$port" "$warm" "$tag.warmup.out"
  fi
  l1=$(load1)
  if [[ -n $ppid ]]; then
    pids="$ppid $(descendants "$ppid" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    pt0=$(cpu_ticks $pids)
  fi
  upids="$UPSTREAM_PID $(descendants "$UPSTREAM_PID" | tr '\n' ' ')"
  # shellcheck disable=SC2086
  ut0=$(cpu_ticks $upids); us0=$(sleeps $upids)
  log "$name $proto: measuring ${DURATION}s on port $port"
  t0=$(date +%s%N)
  run_load "$proto" "$port" "$DURATION" "$tag.out"
  t1=$(date +%s%N)
  # shellcheck disable=SC2086
  ut1=$(cpu_ticks $upids); us1=$(sleeps $upids)
  local wall_ms=$(( (t1 - t0) / 1000000 ))
  (( wall_ms > 0 )) || wall_ms=1
  if [[ -n $ppid ]]; then
    # shellcheck disable=SC2086
    pt1=$(cpu_ticks $pids)
    pcpu=$(( (pt1 - pt0) * 100000 / CLK_TCK / wall_ms ))
  fi
  ucpu=$(( (ut1 - ut0) * 100000 / CLK_TCK / wall_ms ))

  if [[ $proto == h1 ]]; then
    local line
    line=$(grep -m1 '^WRK ' "$tag.out" || true)
    if [[ -n $line ]]; then
      local -A w=()
      local kv
      for kv in ${line#WRK }; do w[${kv%%=*}]=${kv#*=}; done
      rps=${w[rps]}
      p50=$(awk -v u="${w[p50_us]}" 'BEGIN { printf "%.3f", u / 1000 }')
      p99=$(awk -v u="${w[p99_us]}" 'BEGIN { printf "%.3f", u / 1000 }')
      errors=$(( w[socket_errors] + w[non2xx3xx] ))
      # What the upstream (on the load generator's core) pays per request, and how often it
      # went to sleep: how a proxy delivers its requests changes both (docs/performance.md,
      # "Coalescing events under load").
      if (( ${w[requests]:-0} > 0 )); then
        up_us=$(awk -v t=$((ut1 - ut0)) -v k="$CLK_TCK" -v n="${w[requests]}" 'BEGIN { printf "%.2f", t * 1e6 / k / n }')
        up_sleeps=$(awk -v s=$((us1 - us0)) -v n="${w[requests]}" 'BEGIN { printf "%.3f", s / n }')
      fi
    fi
  else
    local fin req codes failed bad
    fin=$(grep -m1 '^finished in' "$tag.out" || true)
    req=$(grep -m1 '^requests:' "$tag.out" || true)
    codes=$(grep -m1 '^status codes:' "$tag.out" || true)
    if [[ -n $fin && -n $req && -f $tag.out.reqlog ]]; then
      rps=$(sed -E 's/.*, ([0-9.]+) req\/s.*/\1/' <<<"$fin")
      failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$req")
      bad=$(awk '{ for (i = 1; i <= NF; i++) if ($(i) ~ /^[45]xx,?$/) s += $(i-1) } END { print s + 0 }' <<<"$codes")
      # h2load counts non-2xx/3xx responses as "failed" too: take the larger, never the sum
      errors=$(( failed > bad ? failed : bad ))
      # nothing completed at all (e.g. the target does not speak h2c): count every started request
      local done_n started_n
      done_n=$(sed -E 's/.* ([0-9]+) done.*/\1/' <<<"$req")
      started_n=$(sed -E 's/.* ([0-9]+) started.*/\1/' <<<"$req")
      (( done_n == 0 && started_n > errors )) && errors=$started_n
      p50=$(percentile_ms "$tag.out.reqlog" 50)
      p99=$(percentile_ms "$tag.out.reqlog" 99)
      rm -f "$tag.out.reqlog"
    fi
  fi
  rm -f "$tag.warmup.out.reqlog"

  local b="BENCH name=$name proto=$proto rps=$rps p50_ms=$p50 p99_ms=$p99 errors=$errors proxy_cpu_pct=$pcpu upstream_cpu_pct=$ucpu upstream_us_per_req=$up_us upstream_sleeps_per_req=$up_sleeps load1=$l1 round=$round warmup_s=$warm duration_s=$DURATION"
  echo "$b"
  echo "$b" >>"$RESULTS"
  BENCH_LINES+=("$b")
}

trajectory() {    # trajectory NAME PORT ROUND: back-to-back windows from a cold start
  local name=$1 port=$2 round=$3 i line rps
  for ((i = 1; i <= TRAJECTORY; i++)); do
    run_load h1 "$port" "$WINDOW" "$RUN_DIR/r$round-$name-trajectory-$i.out"
    line=$(grep -m1 '^WRK ' "$RUN_DIR/r$round-$name-trajectory-$i.out" || true)
    rps=$(sed -E 's/.* rps=([0-9.]+).*/\1/' <<<"$line")
    local t="TRAJECTORY name=$name round=$round window=$i end_s=$((i * WINDOW)) rps=${rps:-0}"
    echo "$t"
    echo "$t" >>"$RESULTS"
  done
}

probe() {         # one request, to show what the target answers
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/" 2>/dev/null || true)
  log "$2: GET / on port $1 -> HTTP ${code:-?}"
}

run_target() {    # run_target NAME ROUND
  local name=$1 round=$2 pid h1 h2 warm=$WARMUP logf="$RUN_DIR/r$2-$1.log"
  case $name in
    direct)
      command -v curl >/dev/null && probe "$UPSTREAM_PORT" direct
      measure direct h1 "$UPSTREAM_PORT" "$WARMUP" "$round" ""
      return ;;
    nginx)
      h1=$NGINX_PORT h2=$NGINX_H2C_PORT
      require_free "$h1" "$h2"
      start_bg nginx "$PROXY_CPU" "$logf" nginx -p "$RUN_DIR" -c "$RUN_DIR/nginx-proxy.conf" ;;
    haproxy)
      h1=$HAPROXY_PORT h2=$HAPROXY_H2C_PORT
      require_free "$h1" "$h2"
      start_bg haproxy "$PROXY_CPU" "$logf" haproxy -db -f "$RUN_DIR/haproxy.cfg" ;;
    legate)
      h1=$LEGATE_PORT h2=$LEGATE_H2C_PORT warm=$LEGATE_WARMUP
      require_free "$h1" "$h2" "$LEGATE_ADMIN_PORT"
      # LEGATE_CMD is a command line given by the user: word-split it with bash, from the repo root
      start_bg legate "$PROXY_CPU" "$logf" bash -c "cd \"\$1\" && exec $LEGATE_CMD" legate-start "$REPO_ROOT" ;;
    legate-b)
      h1=$LEGATE_B_PORT h2="" warm=$LEGATE_WARMUP
      require_free "$h1" "$LEGATE_B_ADMIN_PORT"
      start_legate_b "$logf" ;;
  esac
  pid=$START_PID
  wait_listen "$pid" "$name" "$logf" "$h1" "$h2"
  command -v curl >/dev/null && probe "$h1" "$name"
  if [[ $name == legate ]] && (( TRAJECTORY > 0 )); then
    trajectory "$name" "$h1" "$round"
    stop_pid "$pid"
    log "stopped $name pid=$pid"
    return
  fi
  measure "$name" h1 "$h1" "$warm" "$round" "$pid"
  [[ -n $h2 ]] && measure "$name" h2c "$h2" "$warm" "$round" "$pid"
  stop_pid "$pid"
  log "stopped $name pid=$pid"
}

# start_legate_b LOG: the other build, on bench/legate-bench.yaml with its own listener and admin ports
start_legate_b() {
  sed -e "s/port_value: $LEGATE_PORT\b/port_value: $LEGATE_B_PORT/; s/port_value: $LEGATE_ADMIN_PORT\b/port_value: $LEGATE_B_ADMIN_PORT/" \
    "$REPO_ROOT/bench/legate-bench.yaml" >"$RUN_DIR/legate-b.yaml"
  start_bg legate-b "$PROXY_CPU" "$1" env DOTNET_TieredPGO_InstrumentOnlyHotCode=0 \
    dotnet "$LEGATE_B_DLL" -c "$RUN_DIR/legate-b.yaml" --log-level warn
}

# awk helpers shared by the paired and concurrent summaries: fields(): the key=value fields of a
# result line into f[]; median(a, n): the median of a[1..n] (sorts a in place)
AWK_LIB='
  function fields(    i, k, v) { delete f; for (i = 2; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v } }
  function median(a, n,    i, j, x) { for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j+1] = a[j]; a[j+1] = x }
                                      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
'

# ---------------------------------------------------------------- paired

declare -A T_PID T_H1 T_H2 T_WARM
start_target() {  # start_target NAME: starts it (not direct) and records its pid, ports and warm-up
  local name=$1 logf="$RUN_DIR/paired-$1.log"
  T_PID[$name]="" T_H2[$name]="" T_WARM[$name]=$WARMUP
  case $name in
    direct)
      T_H1[$name]=$UPSTREAM_PORT
      return ;;
    nginx)
      T_H1[$name]=$NGINX_PORT T_H2[$name]=$NGINX_H2C_PORT
      require_free "$NGINX_PORT" "$NGINX_H2C_PORT"
      start_bg nginx "$PROXY_CPU" "$logf" nginx -p "$RUN_DIR" -c "$RUN_DIR/nginx-proxy.conf" ;;
    haproxy)
      T_H1[$name]=$HAPROXY_PORT T_H2[$name]=$HAPROXY_H2C_PORT
      require_free "$HAPROXY_PORT" "$HAPROXY_H2C_PORT"
      start_bg haproxy "$PROXY_CPU" "$logf" haproxy -db -f "$RUN_DIR/haproxy.cfg" ;;
    legate)
      T_H1[$name]=$LEGATE_PORT T_H2[$name]=$LEGATE_H2C_PORT T_WARM[$name]=$LEGATE_WARMUP
      require_free "$LEGATE_PORT" "$LEGATE_H2C_PORT" "$LEGATE_ADMIN_PORT"
      start_bg legate "$PROXY_CPU" "$logf" bash -c "cd \"\$1\" && exec $LEGATE_CMD" legate-start "$REPO_ROOT" ;;
    legate-b)
      T_H1[$name]=$LEGATE_B_PORT T_WARM[$name]=$LEGATE_WARMUP
      require_free "$LEGATE_B_PORT" "$LEGATE_B_ADMIN_PORT"
      start_legate_b "$logf" ;;
    *) die "unknown target $name" ;;
  esac
  T_PID[$name]=$START_PID
  wait_listen "$START_PID" "$name" "$logf" "${T_H1[$name]}" "${T_H2[$name]}"
  command -v curl >/dev/null && probe "${T_H1[$name]}" "$name"
}

run_paired() {
  local t proto r order=() names=()
  read -r -a names <<<"$TARGETS"
  for t in "${names[@]}"; do start_target "$t"; done
  for t in "${names[@]}"; do
    for proto in h1 h2c; do
      [[ $proto == h2c && -z ${T_H2[$t]} ]] && continue
      [[ $proto == h2c && $t == direct ]] && continue
      log "$t $proto: warm-up ${T_WARM[$t]}s"
      run_load "$proto" "$([[ $proto == h1 ]] && echo "${T_H1[$t]}" || echo "${T_H2[$t]}")" "${T_WARM[$t]}" "$RUN_DIR/paired-$t-$proto.warmup.out"
    done
  done
  for ((r = 1; r <= PAIRED; r++)); do
    if (( r % 2 )); then order=("${names[@]}"); else order=(); for t in "${names[@]}"; do order=("$t" "${order[@]}"); done; fi
    for t in "${order[@]}"; do
      measure "$t" h1 "${T_H1[$t]}" 0 "$r" "${T_PID[$t]}"
      if [[ -n ${T_H2[$t]} && $t != direct ]]; then measure "$t" h2c "${T_H2[$t]}" 0 "$r" "${T_PID[$t]}"; fi
    done
  done
  for t in "${names[@]}"; do [[ -n ${T_PID[$t]} ]] && stop_pid "${T_PID[$t]}"; done
  printf '%s\n' "${BENCH_LINES[@]}" | awk "$AWK_LIB"'
    { fields()
      if (f["proto"] == "h1" && f["upstream_us_per_req"] != "-") { nu[f["name"]]++; uus[f["name"], nu[f["name"]]] = f["upstream_us_per_req"]; usl[f["name"], nu[f["name"]]] = f["upstream_sleeps_per_req"] }
      rps[f["name"], f["proto"], f["round"]] = f["rps"]; names[f["name"]] = 1; protos[f["proto"]] = 1; if (f["round"] + 0 > rounds) rounds = f["round"] + 0 }
    END {
      for (n in names) for (p in protos) {
        if (n == "nginx" || !((n, p, 1) in rps) || !(("nginx", p, 1) in rps)) continue
        m = 0; line = ""
        for (r = 1; r <= rounds; r++) if (rps["nginx", p, r] > 0 && ((n, p, r) in rps)) { ratio[++m] = rps[n, p, r] / rps["nginx", p, r]; line = line sprintf(" %.3f", ratio[m]) }
        med = median(ratio, m)
        printf "PAIR name=%s proto=%s rounds=%d ratio_to_nginx=%s median=%.3f\n", n, p, m, substr(line, 2), med
      }
      for (n in nu) {
        for (i = 1; i <= nu[n]; i++) { a[i] = uus[n, i]; b[i] = usl[n, i] }
        printf "UPSTREAM name=%s proto=h1 rounds=%d us_per_req_median=%.2f sleeps_per_req_median=%.3f\n", n, nu[n], median(a, nu[n]), median(b, nu[n])
      }
    }
  ' | tee -a "$RESULTS"
}

# ---------------------------------------------------------------- concurrent

SIDE_LOAD_PID=""
# both_load SECS OUT_A OUT_B: wrk at both targets at once, WRK_CONNS/2 connections each
both_load() {
  local secs=$1
  WRK_CONNS=$(( WRK_CONNS / 2 )) run_load h1 "${T_H1[$CA]}" "$secs" "$2" &
  SIDE_LOAD_PID=$!
  WRK_CONNS=$(( WRK_CONNS / 2 )) run_load h1 "${T_H1[$CB]}" "$secs" "$3"
  wait "$SIDE_LOAD_PID" || true
  SIDE_LOAD_PID=""
}

wrk_field() { sed -nE "s/^WRK (.* )?$2=([0-9.]+).*/\2/p" "$1" | head -n1; }


run_concurrent() {
  local names=() t r warm pa pb
  read -r -a names <<<"$TARGETS"
  (( ${#names[@]} == 2 )) || die "CONCURRENT needs exactly two targets, e.g. TARGETS=\"nginx legate\""
  [[ " $TARGETS " != *" direct "* ]] || die "CONCURRENT compares two proxies (direct has no process on the proxy core)"
  CA=${names[0]} CB=${names[1]}
  for t in "$CA" "$CB"; do start_target "$t"; done
  warm=$(( T_WARM[$CA] > T_WARM[$CB] ? T_WARM[$CA] : T_WARM[$CB] ))
  log "$CA + $CB: warm-up ${warm}s, loaded together"
  both_load "$warm" "$RUN_DIR/conc-warmup-$CA.out" "$RUN_DIR/conc-warmup-$CB.out"
  pa="${T_PID[$CA]} $(descendants "${T_PID[$CA]}" | tr '\n' ' ')"
  pb="${T_PID[$CB]} $(descendants "${T_PID[$CB]}" | tr '\n' ' ')"
  for ((r = 1; r <= CONCURRENT; r++)); do
    local a0 b0 a1 b1 oa="$RUN_DIR/conc-r$r-$CA.out" ob="$RUN_DIR/conc-r$r-$CB.out"
    # shellcheck disable=SC2086
    read -r -a a0 <<<"$(cpu_split $pa)"; read -r -a b0 <<<"$(cpu_split $pb)"
    log "$CA + $CB: round $r/$CONCURRENT, ${DURATION}s"
    both_load "$DURATION" "$oa" "$ob"
    # shellcheck disable=SC2086
    read -r -a a1 <<<"$(cpu_split $pa)"; read -r -a b1 <<<"$(cpu_split $pb)"
    local na nb ra rb ea eb
    na=$(wrk_field "$oa" requests); nb=$(wrk_field "$ob" requests)
    ra=$(wrk_field "$oa" rps); rb=$(wrk_field "$ob" rps)
    ea=$(( $(wrk_field "$oa" socket_errors) + $(wrk_field "$oa" non2xx3xx) ))
    eb=$(( $(wrk_field "$ob" socket_errors) + $(wrk_field "$ob" non2xx3xx) ))
    local c
    c=$(awk -v A="$CA" -v B="$CB" -v na="$na" -v nb="$nb" -v ra="$ra" -v rb="$rb" -v tck="$CLK_TCK" \
          -v au=$((a1[0] - a0[0])) -v as=$((a1[1] - a0[1])) -v bu=$((b1[0] - b0[0])) -v bs=$((b1[1] - b0[1])) '
      BEGIN { k = 1e6 / tck
              printf "rps_%s=%.1f rps_%s=%.1f ratio=%.3f", A, ra, B, rb, (ra > 0 ? rb / ra : 0)
              printf " cpu_us_%s=%.2f+%.2f cpu_us_%s=%.2f+%.2f", A, (na > 0 ? au * k / na : 0), (na > 0 ? as * k / na : 0), B, (nb > 0 ? bu * k / nb : 0), (nb > 0 ? bs * k / nb : 0) }')
    local line="CONCURRENT round=$r $c errors_$CA=$ea errors_$CB=$eb duration_s=$DURATION"
    echo "$line"
    echo "$line" >>"$RESULTS"
  done
  for t in "$CA" "$CB"; do stop_pid "${T_PID[$t]}"; done
  grep '^CONCURRENT ' "$RESULTS" | awk -v A="$CA" -v B="$CB" "$AWK_LIB"'
    { fields()
      n++; ratio[n] = f["ratio"]; ra[n] = f["rps_" A]; rb[n] = f["rps_" B]
      split(f["cpu_us_" A], x, "+"); ua[n] = x[1]; sa[n] = x[2]; split(f["cpu_us_" B], y, "+"); ub[n] = y[1]; sb[n] = y[2]
      e += f["errors_" A] + f["errors_" B] }
    END { printf "CONCURRENT median rounds=%d rps_%s=%.1f rps_%s=%.1f ratio=%.3f cpu_us_%s=%.2f+%.2f cpu_us_%s=%.2f+%.2f errors=%d\n",
                 n, A, median(ra, n), B, median(rb, n), median(ratio, n), A, median(ua, n), median(sa, n), B, median(ub, n), median(sb, n), e }' | tee -a "$RESULTS"
}

# ---------------------------------------------------------------- summary

summary() {
  echo
  echo "## Results (${ROUNDS} round(s), ${DURATION}s per run, warm-up ${WARMUP}s / legate ${LEGATE_WARMUP}s)"
  echo
  echo "| target | proto | rps (median) | p50 ms | p99 ms | errors | rps / nginx | p99 / nginx |"
  echo "|--------|-------|-------------:|-------:|-------:|-------:|------------:|------------:|"
  printf '%s\n' "${BENCH_LINES[@]}" | awk -v order="$TARGETS" '
    function median(key, m,    n, i, j, t, a) {
      n = split(vals[key, m], a, " ")
      for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j+1] = a[j]; a[j+1] = t }
      if (n == 0) return 0
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
      delete f
      for (i = 2; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
      key = f["name"] SUBSEP f["proto"]
      if (!(key in seen)) { seen[key] = 1 }
      vals[key, "rps"] = vals[key, "rps"] " " f["rps"]
      vals[key, "p50"] = vals[key, "p50"] " " f["p50_ms"]
      vals[key, "p99"] = vals[key, "p99"] " " f["p99_ms"]
      if (f["errors"] + 0 < 0) failed[key]++; else err[key] += f["errors"]
    }
    END {
      nt = split(order, names, " ")
      split("h1 h2c", protos, " ")
      for (pi = 1; pi <= 2; pi++) {
        pr = protos[pi]; nk = "nginx" SUBSEP pr
        nrps = (nk in seen) ? median(nk, "rps") : 0
        np99 = (nk in seen) ? median(nk, "p99") : 0
        for (ti = 1; ti <= nt; ti++) {
          key = names[ti] SUBSEP pr
          if (!(key in seen)) continue
          r = median(key, "rps"); p50 = median(key, "p50"); p99 = median(key, "p99")
          e = err[key] + 0; if (key in failed) e = e " (+" failed[key] " failed runs)"
          rr = (nrps > 0) ? sprintf("%.2f", r / nrps) : "-"
          pp = (np99 > 0) ? sprintf("%.2f", p99 / np99) : "-"
          printf "| %s | %s | %.0f | %.3f | %.3f | %s | %s | %s |\n", names[ti], pr, r, p50, p99, e, rr, pp
        }
      }
    }'
  echo
  echo "Raw lines: $RESULTS"
}

# ---------------------------------------------------------------- main

machine() {
  echo "## Machine"
  echo "nproc:   $(nproc)"
  echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  echo "kernel:  $(uname -srm)"
  echo "nginx:   $(nginx -v 2>&1 | sed 's/.*version: //')"
  echo "haproxy: $(command -v haproxy >/dev/null && haproxy -v 2>/dev/null | head -n1 | awk '{print $3}' || echo none)"
  echo "wrk:     $(wrk -v 2>&1 | head -n1 | awk '{print $2}' || true)"
  echo "h2load:  $(command -v h2load >/dev/null && h2load --version 2>/dev/null | awk '{print $2}' || echo none)"
  echo "dotnet:  $(command -v dotnet >/dev/null && dotnet --version 2>/dev/null || echo none)"
  echo "load1:   $(load1)"
  echo "targets: $TARGETS  rounds=$ROUNDS paired=$PAIRED concurrent=$CONCURRENT duration=${DURATION}s warmup=${WARMUP}s legate_warmup=${LEGATE_WARMUP}s"
  echo "cpus:    load+upstream on CPU $LOAD_CPU, proxy on CPU $PROXY_CPU; run dir $RUN_DIR"
  echo
}

if [[ " $TARGETS " == *" legate "* && $LEGATE_CMD == *"src/Legate.Cli/bin/Release/net10.0/legate.dll"* \
      && ! -f $REPO_ROOT/src/Legate.Cli/bin/Release/net10.0/legate.dll ]]; then
  die "legate.dll not found; build it first: (cd $REPO_ROOT && dotnet build src/Legate.Cli -c Release)"
fi

mkdir -p "$RUN_DIR"
: >"$RESULTS"
machine
write_configs

require_free "$UPSTREAM_PORT"
# In a session of its own, as a daemonized nginx (../shared/bench's upstream.sh) is: with the
# kernel's autogroup scheduling on (Debian's default), a new session is a new scheduling group,
# and core 0 is then shared between the load generator's group and the upstream's, not between
# two tasks of one group. It changes how often the upstream sleeps, and so what a proxy's way of
# delivering requests costs core 0 (docs/performance.md, "Coalescing events under load").
start_bg upstream "$LOAD_CPU" "$RUN_DIR/upstream.log" setsid nginx -p "$RUN_DIR" -c "$RUN_DIR/upstream.conf"
UPSTREAM_PID=$START_PID
wait_listen "$UPSTREAM_PID" upstream "$RUN_DIR/upstream.log" "$UPSTREAM_PORT"

if (( CONCURRENT > 0 )); then
  run_concurrent
  stop_pid "$UPSTREAM_PID"
  exit 0
elif (( PAIRED > 0 )); then
  ROUNDS=$PAIRED
  run_paired
else
  for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round/$ROUNDS"
    for t in $TARGETS; do
      run_target "$t" "$round"
    done
  done
fi

stop_pid "$UPSTREAM_PID"
summary
