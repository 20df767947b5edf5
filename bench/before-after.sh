#!/usr/bin/env bash
# Two builds of switchyard side by side with HAProxy and the bare node:net pipe, in one run
# (docs/performance.md): rounds interleave the targets, so load elsewhere on the machine hits
# them alike. Per target: median requests/s, median p50 and p99 (wrk), CPU per request (user +
# system from /proc, median), and the ratios to HAProxy and to the pipe in the same run.
#
# Usage: bench/before-after.sh BEFORE_DIR [AFTER_DIR] [--close] [--mode tcp|http|both]
#                              [--rounds N] [--seconds S] [--conns C]   (run under the machine lock)
#   BEFORE_DIR, AFTER_DIR: switchyard checkouts with dist/ built (AFTER_DIR defaults to this one),
#   e.g. `git worktree add /tmp/sy-before <commit> && (cd /tmp/sy-before && npm ci)`.
#   --close: every request on a new connection (Connection: close).
# Needs wrk, haproxy, nginx; listens on 127.0.0.1:19880-19899 only.
set -u
PROJECT=$(cd "$(dirname "$0")/.." && pwd)
BEFORE=""; AFTER=$PROJECT; MODE=tcp; ROUNDS=3; SECS=5; CONNS=32; WRKH=()
while [ $# -gt 0 ]; do case "$1" in
  --close) WRKH=(-H "Connection: close"); shift;;
  --mode) MODE=$2; shift 2;; --rounds) ROUNDS=$2; shift 2;; --seconds) SECS=$2; shift 2;; --conns) CONNS=$2; shift 2;;
  -*) echo "unknown option $1" >&2; exit 2;;
  *) if [ -z "$BEFORE" ]; then BEFORE=$(cd "$1" && pwd); else AFTER=$(cd "$1" && pwd); fi; shift;; esac; done
[ -n "$BEFORE" ] || { sed -n 2,12p "$0"; exit 2; }
. "$(dirname "$0")/lib.sh"
bench_workdir sy-before-after '198[89][0-9]'
bench_configs 19880 1
bench_pipe
syconf() { # file stats-port http-port tcp-port
  cat > "$1" <<SY
stats: { bind: 127.0.0.1:$2 }
frontends:
  h: { mode: http, bind: 127.0.0.1:$3, backend: bh }
  t: { mode: tcp, bind: 127.0.0.1:$4, backend: bt }
backends:
  bh: { mode: http, strategy: round-robin, health: { type: none }, servers: [ { address: 127.0.0.1:19880 } ] }
  bt: { mode: tcp, strategy: round-robin, health: { type: none }, servers: [ { address: 127.0.0.1:19880 } ] }
SY
}
syconf "$W/before.yaml" 19896 19890 19891
syconf "$W/after.yaml" 19897 19892 19893
nginx -c "$W/ng.conf" & PIDS+=($!)
haproxy -f "$W/ha.cfg" -db >"$W/ha.log" 2>&1 & HA=$!; PIDS+=($HA)
node "$W/pipe.mjs" 19884 19880 & PIPE=$!; PIDS+=($PIPE)
node "$BEFORE/bin/switchyard.js" --config "$W/before.yaml" >"$W/before.log" 2>&1 & SB=$!; PIDS+=($SB)
node "$AFTER/bin/switchyard.js" --config "$W/after.yaml" >"$W/after.log" 2>&1 & SA=$!; PIDS+=($SA)
declare -A PORT=( [haproxy-http]=19881 [haproxy-tcp]=19882 [pipe]=19884 [before-http]=19890 [before-tcp]=19891 [after-http]=19892 [after-tcp]=19893 )
declare -A PID=( [haproxy-http]=$HA [haproxy-tcp]=$HA [pipe]=$PIPE [before-http]=$SB [before-tcp]=$SB [after-http]=$SA [after-tcp]=$SA )
case $MODE in
  tcp) TARGETS=(haproxy-tcp pipe before-tcp after-tcp);;
  http) TARGETS=(haproxy-http pipe before-http after-http);;
  *) TARGETS=(haproxy-http haproxy-tcp pipe before-http after-http before-tcp after-tcp);;
esac
for t in "${TARGETS[@]}"; do
  ok=""; for i in $(seq 1 60); do curl -fsS -m 1 -o /dev/null "http://127.0.0.1:${PORT[$t]}/hello" 2>/dev/null && { ok=1; break; }; sleep 0.25; done
  [ -n "$ok" ] || { echo "$t did not answer on 127.0.0.1:${PORT[$t]}" >&2; tail -5 "$W"/*.log >&2; exit 1; }
done
echo "before: $BEFORE ($(git -C "$BEFORE" rev-parse --short HEAD 2>/dev/null)), after: $AFTER ($(git -C "$AFTER" rev-parse --short HEAD 2>/dev/null))"
echo "rounds=$ROUNDS seconds=$SECS conns=$CONNS ${WRKH[*]:-keep-alive}"
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.2f", v}'; }
declare -A RPS P50 P99 CPU
for r in $(seq 1 "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    pid=${PID[$t]}
    read u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
    out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "${WRKH[@]}" "http://127.0.0.1:${PORT[$t]}/hello" 2>&1)
    read u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}'); rps=${rps:-0}
    p50=$(echo "$out" | awk '/ 50%/ {print $2}' | ms); p99=$(echo "$out" | awk '/ 99%/ {print $2}' | ms)
    cpu=$(echo "if ($rps>0) ($u1-$u0+$s1-$s0)*10000/($rps*$SECS) else 0" | bc -l)
    RPS[$t]="${RPS[$t]:-} $rps"; P50[$t]="${P50[$t]:-} $p50"; P99[$t]="${P99[$t]:-} $p99"; CPU[$t]="${CPU[$t]:-} $cpu"
    printf "round %d %-13s rps=%-9s p50=%-7s p99=%-8s cpu/req=%.0f us\n" "$r" "$t" "$rps" "$p50" "$p99" "$cpu"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
HAT=$(echo "${RPS[haproxy-tcp]:-0}" | median); HAH=$(echo "${RPS[haproxy-http]:-0}" | median)
HAT50=$(echo "${P50[haproxy-tcp]:-0}" | median); HAH50=$(echo "${P50[haproxy-http]:-0}" | median)
HAT99=$(echo "${P99[haproxy-tcp]:-0}" | median); HAH99=$(echo "${P99[haproxy-http]:-0}" | median)
PR=$(echo "${RPS[pipe]}" | median); PC=$(echo "${CPU[pipe]}" | median)
printf "\n%-13s %9s %8s %8s %8s %8s %8s %8s %9s %9s\n" target req/s xHAProxy xPipe p50_ms p99_ms p50xHA p99xHA cpu/req_us cpu_xPipe
for t in "${TARGETS[@]}"; do
  m=$(echo "${RPS[$t]}" | median); p50=$(echo "${P50[$t]}" | median); p99=$(echo "${P99[$t]}" | median); c=$(echo "${CPU[$t]}" | median)
  if [[ $t == *http ]]; then H=$HAH; H50=$HAH50; H99=$HAH99; else H=$HAT; H50=$HAT50; H99=$HAT99; fi
  r() { echo "if ($2>0) $1/$2 else 0" | bc -l; }
  printf "%-13s %9.0f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %9.0f %9.2f\n" "$t" "$m" "$(r "$m" "$H")" "$(r "$m" "$PR")" "$p50" "$p99" "$(r "$p50" "$H50")" "$(r "$p99" "$H99")" "$c" "$(r "$c" "$PC")"
done
echo "(p50/p99: median over rounds; xHAProxy against HAProxy in the same mode; the pipe is TCP)"
