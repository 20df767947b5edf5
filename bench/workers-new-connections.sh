#!/usr/bin/env bash
# New-connection rate with two processes' worth of proxy: switchyard `workers: auto` against
# HAProxy `nbthread 2`, side by side in one run (docs/performance.md). Every request on a new
# connection (wrk, Connection: close); http vs http and tcp vs tcp; medians of the rounds.
# On a 2-core machine the load client (wrk) and the nginx backend share the cores with the
# proxy: the figures compare the proxies under the same squeeze, not their ceilings.
#
# On Node 20 the workers share a port through node:cluster, whose default (round-robin) has the
# primary accept every connection and pass it to a worker over IPC: a third process and an IPC
# message per connection. The same config also runs with NODE_CLUSTER_SCHED_POLICY=none (Node's
# documented switch: the workers accept from the shared socket themselves), so both are shown.
# On Node >= 22.12 the workers bind with SO_REUSEPORT instead and neither applies.
#
# Usage: bench/workers-new-connections.sh [--rounds N] [--seconds S] [--conns C]
# Needs wrk, haproxy, nginx (Debian packages); listens on 127.0.0.1:19300-19323 only.
set -u
ROUNDS=3; SECS=5; CONNS=32
while [ $# -gt 0 ]; do case "$1" in
  --rounds) ROUNDS=$2; shift 2;; --seconds) SECS=$2; shift 2;; --conns) CONNS=$2; shift 2;;
  *) echo "unknown argument $1" >&2; exit 2;; esac; done
for t in wrk haproxy nginx; do command -v $t >/dev/null || { echo "needs $t (apt-get install $t)" >&2; exit 2; }; done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$(dirname "$0")/lib.sh"
bench_workdir sy-workers-bench '193[0-2][0-9]'
bench_configs 19300 2
# $1: first port (http; tcp is the next), $2: stats port.
config() {
  cat <<SY
workers: auto
logging: { level: warn }
stats: { bind: 127.0.0.1:$2 }
frontends:
  h: { mode: http, bind: 127.0.0.1:$1, backend: bh }
  t: { mode: tcp, bind: 127.0.0.1:$(($1 + 1)), backend: bt }
backends:
  bh: { mode: http, health: { type: none }, servers: [ { address: 127.0.0.1:19300 } ] }
  bt: { mode: tcp, health: { type: none }, servers: [ { address: 127.0.0.1:19300 } ] }
SY
}
config 19310 19320 > "$W/switchyard.yaml"
config 19312 19321 > "$W/switchyard-sched-none.yaml"
nginx -c "$W/ng.conf" & PIDS+=($!)
haproxy -f "$W/ha.cfg" -db >"$W/ha.log" 2>&1 & PIDS+=($!)
node "$ROOT/bin/switchyard.js" --config "$W/switchyard.yaml" >"$W/switchyard.log" 2>&1 & PIDS+=($!)
NODE_CLUSTER_SCHED_POLICY=none node "$ROOT/bin/switchyard.js" --config "$W/switchyard-sched-none.yaml" >"$W/switchyard-sched-none.log" 2>&1 & PIDS+=($!)
declare -A NAME=( [19301]=haproxy-http-nbthread2 [19302]=haproxy-tcp-nbthread2 [19310]=switchyard-http-workers2 [19311]=switchyard-tcp-workers2 [19312]=sy-http-workers2-schednone [19313]=sy-tcp-workers2-schednone )
PORTS=(19301 19302 19310 19311 19312 19313)
for p in "${PORTS[@]}"; do
  ok=""; for i in $(seq 1 60); do curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$p/hello" 2>/dev/null && { ok=1; break; }; sleep 0.25; done
  [ -n "$ok" ] || { echo "${NAME[$p]} did not answer"; tail -5 "$W"/switchyard*.log; exit 1; }
done
declare -A RES P99
for r in $(seq 1 "$ROUNDS"); do
  for p in "${PORTS[@]}"; do
    out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -H "Connection: close" "http://127.0.0.1:$p/hello" 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}'); p99=$(echo "$out" | awk '/ 99%/ {print $2}')
    RES[$p]="${RES[$p]:-} ${rps:-0}"; P99[$p]="${P99[$p]:-} $p99"
    echo "round $r ${NAME[$p]} rps=${rps:-0} p50=$(echo "$out" | awk '/ 50%/ {print $2}') p99=$p99"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
H=$(echo "${RES[19301]}" | median); T=$(echo "${RES[19302]}" | median)
printf "%-28s %12s %14s\n" target median_rps vs_haproxy_same_mode
for p in "${PORTS[@]}"; do
  m=$(echo "${RES[$p]}" | median); base=$H; [[ $p == 19302 || $p == 19311 || $p == 19313 ]] && base=$T
  printf "%-28s %12.0f %14.3f\n" "${NAME[$p]}" "$m" "$(echo "$m/$base" | bc -l)"
done
