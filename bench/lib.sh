# Set-up shared by the side-by-side shell benchmarks (before-after.sh, new-connection-profile.sh,
# workers-new-connections.sh): sourced, not run. Each script owns a block of ports on 127.0.0.1.

# bench_workdir NAME PORT_PATTERN: stop when a port of the script's block (a grep -E pattern of
# port numbers) is taken; make the work directory $W (readable by nginx's worker), removed on exit
# together with every process whose PID the script adds to PIDS.
bench_workdir() {
  local busy
  busy=$(ss -ltnH 2>/dev/null | awk '{print $4}' | grep -E ":($2)\$" | tr '\n' ' ')
  [ -z "$busy" ] || { echo "ports already in use: $busy- stop what holds them first" >&2; exit 2; }
  W=$(mktemp -d "/tmp/$1.XXXX"); chmod 755 "$W"
  PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$W"; }

# bench_configs PORT NBTHREAD: $W/ng.conf, nginx answering GET /hello (12 bytes) on PORT, and
# $W/ha.cfg, HAProxy 2.6 with NBTHREAD threads in http mode on PORT+1 (server connections
# reused, as switchyard pools them) and tcp mode on PORT+2, both in front of that nginx.
bench_configs() {
  cat > "$W/ng.conf" <<NG
worker_processes 1; daemon off; pid $W/ng.pid; error_log $W/ng.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$1; location = /hello { default_type text/plain; return 200 "hello world\n"; } } }
NG
  cat > "$W/ha.cfg" <<HA
global
  nbthread $2
  maxconn 8000
defaults
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fh
  mode http
  bind 127.0.0.1:$(($1 + 1))
  default_backend bh
backend bh
  mode http
  http-reuse always
  server s1 127.0.0.1:$1
frontend ft
  mode tcp
  bind 127.0.0.1:$(($1 + 2))
  default_backend bt
backend bt
  mode tcp
  server s1 127.0.0.1:$1
HA
}

# bench_pipe: $W/pipe.mjs, the bare node:net pipe as the anchor benchmark writes it
# (../shared/bench/node-floor-tcp.mjs); run as `node "$W/pipe.mjs" LISTEN_PORT TARGET_PORT`.
bench_pipe() {
  cat > "$W/pipe.mjs" <<'JS'
import net from 'node:net';
const [listenPort, targetPort] = process.argv.slice(2).map(Number);
net.createServer({ noDelay: true }, (c) => {
  const u = net.connect({ port: targetPort, host: '127.0.0.1', noDelay: true });
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
}).listen(listenPort, '127.0.0.1');
JS
}
