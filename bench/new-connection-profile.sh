#!/usr/bin/env bash
# Where a new connection's CPU goes (docs/performance.md): HAProxy (nbthread 1, http and tcp),
# a bare node:net pipe and switchyard (http and tcp, one process each) behind one nginx backend,
# each loaded in turn by wrk with a new connection per request. Prints requests/s, p50/p99 and
# user and system CPU per request from /proc (HAProxy's kernel work is the same connect, write
# and close a Node proxy pays, so system time compares like for like and user time is the
# difference); the Node processes run with --cpu-prof and --trace-gc, so their figures include
# the profiler's cost. Summarize a profile with bench/cpuprofile-summary.js.
#
# Usage: bench/new-connection-profile.sh OUTDIR [SECONDS]   (run under the machine lock)
# Needs wrk, haproxy, nginx; listens on 127.0.0.1:19780-19797 only.
set -u
PROJECT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd); SECS=${2:-8}
. "$(dirname "$0")/lib.sh"
bench_workdir sy-conn-profile '197[89][0-9]'
bench_configs 19780 1
cat > "$W/h.yaml" <<SY
stats: { bind: 127.0.0.1:19796 }
frontends:
  h: { mode: http, bind: 127.0.0.1:19790, backend: bh }
backends:
  bh: { mode: http, strategy: round-robin, health: { type: none }, servers: [ { address: 127.0.0.1:19780 } ] }
SY
cat > "$W/t.yaml" <<SY
stats: { bind: 127.0.0.1:19797 }
frontends:
  t: { mode: tcp, bind: 127.0.0.1:19791, backend: bt }
backends:
  bt: { mode: tcp, strategy: round-robin, health: { type: none }, servers: [ { address: 127.0.0.1:19780 } ] }
SY
nginx -c "$W/ng.conf" & PIDS+=($!)
haproxy -f "$W/ha.cfg" -db >"$W/ha.log" 2>&1 & HAPID=$!
start() { # name port cmd...
  local name=$1 port=$2; shift 2
  (cd "$OUT" && exec node --import "$W/exit-on-sigint.mjs" --cpu-prof --cpu-prof-dir="$OUT/$name" --trace-gc "$@") >"$OUT/$name.log" 2>&1 &
  PIDS+=($!)
  for i in $(seq 1 60); do curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$port/hello" 2>/dev/null && break; sleep 0.25; done
}
bench_pipe
# --cpu-prof writes its profile on a normal exit: SIGINT ends the pipe with one.
echo "process.on('SIGINT', () => process.exit(0));" > "$W/exit-on-sigint.mjs"
start pipe 19792 "$W/pipe.mjs" 19792 19780
start http 19790 "$PROJECT/bin/switchyard.js" --config "$W/h.yaml"
start tcp 19791 "$PROJECT/bin/switchyard.js" --config "$W/t.yaml"
for name in haproxy-http haproxy-tcp pipe http tcp; do
  case $name in pipe) port=19792; pid=${PIDS[1]};; http) port=19790; pid=${PIDS[2]};; tcp) port=19791; pid=${PIDS[3]};; haproxy-http) port=19781; pid=$HAPID;; haproxy-tcp) port=19782; pid=$HAPID;; esac
  read u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
  out=$(wrk -t1 -c32 -d${SECS}s --latency -H "Connection: close" "http://127.0.0.1:$port/hello" 2>&1)
  read u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  echo "$name rps=$rps p50=$(echo "$out" | awk '/ 50%/ {print $2}') p99=$(echo "$out" | awk '/ 99%/ {print $2}') user_ticks=$((u1-u0)) sys_ticks=$((s1-s0)) user_us_per_req=$(echo "($u1-$u0)*10000/($rps*$SECS)" | bc -l | cut -c1-5) sys_us_per_req=$(echo "($s1-$s0)*10000/($rps*$SECS)" | bc -l | cut -c1-5)"
done
kill $HAPID
# SIGINT so --cpu-prof writes its profiles
for p in "${PIDS[@]:1}"; do pkill -INT -P "$p" 2>/dev/null; kill -INT "$p" 2>/dev/null; done
for i in $(seq 1 40); do [ "$(ls "$OUT"/{pipe,http,tcp}/*.cpuprofile 2>/dev/null | wc -l)" -ge 3 ] && break; sleep 0.25; done
echo "profiles: $(ls "$OUT"/{pipe,http,tcp}/*.cpuprofile 2>/dev/null | tr '\n' ' ')"
