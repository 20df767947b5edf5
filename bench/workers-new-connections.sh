#!/usr/bin/env bash
# New-connection rate with two processes' worth of proxy: switchyard `workers: auto` against
# HAProxy `nbthread 2`, side by side in one run (docs/performance.md). Every request on a new
# connection (wrk, Connection: close); http vs http and tcp vs tcp; medians of the rounds.
# On a 2-core machine the load client (wrk) and the nginx backend share the cores with the
# proxy: the figures compare the proxies under the same squeeze, not their ceilings.
#
# Usage: bench/workers-new-connections.sh [--rounds N] [--seconds S] [--conns C]
# Needs wrk, haproxy, nginx (Debian packages); listens on 127.0.0.1:19300-19311 only.
set -u
ROUNDS=3; SECS=5; CONNS=32
while [ $# -gt 0 ]; do case "$1" in
  --rounds) ROUNDS=$2; shift 2;; --seconds) SECS=$2; shift 2;; --conns) CONNS=$2; shift 2;;
  *) echo "unknown argument $1" >&2; exit 2;; esac; done
for t in wrk haproxy nginx; do command -v $t >/dev/null || { echo "needs $t (apt-get install $t)" >&2; exit 2; }; done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/sy-workers-bench.XXXX); chmod 755 "$W"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
cat > "$W/nginx.conf" <<NG
worker_processes 1; daemon off; pid $W/ng.pid; error_log $W/ng.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:19300; location = /hello { default_type text/plain; return 200 "hello world\n"; } } }
NG
cat > "$W/haproxy.cfg" <<HA
global
  nbthread 2
  maxconn 8000
defaults
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fh
  mode http
  bind 127.0.0.1:19301
  default_backend bh
backend bh
  mode http
  http-reuse always
  server s1 127.0.0.1:19300
frontend ft
  mode tcp
  bind 127.0.0.1:19302
  default_backend bt
backend bt
  mode tcp
  server s1 127.0.0.1:19300
HA
cat > "$W/switchyard.yaml" <<SY
workers: auto
logging: { level: warn }
frontends:
  h: { mode: http, bind: 127.0.0.1:19310, backend: bh }
  t: { mode: tcp, bind: 127.0.0.1:19311, backend: bt }
backends:
  bh: { mode: http, health: { type: none }, servers: [ { address: 127.0.0.1:19300 } ] }
  bt: { mode: tcp, health: { type: none }, servers: [ { address: 127.0.0.1:19300 } ] }
SY
nginx -c "$W/nginx.conf" & PIDS+=($!)
haproxy -f "$W/haproxy.cfg" -db >"$W/haproxy.log" 2>&1 & PIDS+=($!)
node "$ROOT/bin/switchyard.js" --config "$W/switchyard.yaml" >"$W/switchyard.log" 2>&1 & PIDS+=($!)
declare -A NAME=( [19301]=haproxy-http-nbthread2 [19302]=haproxy-tcp-nbthread2 [19310]=switchyard-http-workers2 [19311]=switchyard-tcp-workers2 )
PORTS=(19301 19302 19310 19311)
for p in "${PORTS[@]}"; do
  ok=""; for i in $(seq 1 60); do curl -fsS -m 1 -o /dev/null "http://127.0.0.1:$p/hello" 2>/dev/null && { ok=1; break; }; sleep 0.25; done
  [ -n "$ok" ] || { echo "${NAME[$p]} did not answer"; tail -5 "$W/switchyard.log"; exit 1; }
done
declare -A RES P99
for r in $(seq 1 "$ROUNDS"); do
  for p in "${PORTS[@]}"; do
    out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -H "Connection: close" "http://127.0.0.1:$p/hello" 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}'); p99=$(echo "$out" | awk '/ 99%/ {print $2}')
    RES[$p]="${RES[$p]:-} ${rps:-0}"; P99[$p]="${P99[$p]:-} $p99"
    echo "round $r ${NAME[$p]} rps=${rps:-0} p99=$p99"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
H=$(echo "${RES[19301]}" | median); T=$(echo "${RES[19302]}" | median)
printf "%-26s %12s %14s\n" target median_rps vs_haproxy_same_mode
for p in "${PORTS[@]}"; do
  m=$(echo "${RES[$p]}" | median); base=$H; [[ $p == 19302 || $p == 19311 ]] && base=$T
  printf "%-26s %12.0f %14.3f\n" "${NAME[$p]}" "$m" "$(echo "$m/$base" | bc -l)"
done
