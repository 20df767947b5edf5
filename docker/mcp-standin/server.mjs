// A stand-in for one MCP service of the MCP network (docker/compose.mcp-network.yml), so the
// network can be brought up and load-balanced without the real services. No dependencies: runs
// on any Node >= 18 (the compose file mounts it into node:26-slim; test/mcp-standin.test.ts
// runs it on the host against the Consul test server).
//
//   MODE=http (default): GET /health -> 200 {"status":"ok",...}, GET /info -> service,
//     instance, uptime, GET /metrics -> Prometheus text; anything else -> 200 JSON echo of the
//     request (method, path, body bytes, X-Forwarded-For).
//   MODE=tcp (stands in for mcp-postgres): a TCP echo server, except that a connection opening
//     with an HTTP request line gets the same /health, /info, /metrics answers (and is closed),
//     so `curl http://localhost:11100/health` works through switchyard's TCP frontend too.
// Registers itself in Consul (CONSUL_HTTP_ADDR, default http://consul:8500) with an HTTP or TCP
// check, retrying until Consul answers, and deregisters on SIGTERM/SIGINT.
//
// Environment: SERVICE_NAME (required), PORT (default 8080), MODE, CONSUL_HTTP_ADDR,
// CONSUL_HTTP_TOKEN, SERVICE_TAGS (comma-separated), SERVICE_ID (default NAME-HOSTNAME),
// SERVICE_ADDRESS (advertised; default the first non-loopback IPv4 address),
// CHECK_INTERVAL (Consul check interval, default 10s), CONSUL_REGISTER=0 to skip registration.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';

const name = process.env.SERVICE_NAME;
if (!name) {
  console.error('SERVICE_NAME is required');
  process.exit(2);
}
const port = Number(process.env.PORT ?? 8080);
const mode = process.env.MODE === 'tcp' ? 'tcp' : 'http';
const consul = (process.env.CONSUL_HTTP_ADDR ?? 'http://consul:8500').replace(/\/$/, '');
const token = process.env.CONSUL_HTTP_TOKEN;
const tags = (process.env.SERVICE_TAGS ?? 'mcp')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const instance = process.env.SERVICE_ID || `${name}-${hostname()}`;
const checkInterval = process.env.CHECK_INTERVAL || '10s';
const registering = process.env.CONSUL_REGISTER !== '0';
const started = Date.now();
let requests = 0;
let connections = 0;

function address() {
  if (process.env.SERVICE_ADDRESS) return process.env.SERVICE_ADDRESS;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function log(msg, extra = {}) {
  console.log(JSON.stringify({ time: new Date().toISOString(), service: name, instance, msg, ...extra }));
}

/** The answers both modes give to GET /health, /info, /metrics: [status, content-type, body]. */
function known(path) {
  if (path === '/health') return [200, 'application/json', JSON.stringify({ status: 'ok', service: name, instance })];
  if (path === '/info') {
    return [
      200,
      'application/json',
      JSON.stringify({ service: name, instance, mode, version: 'stand-in', uptime_s: Math.round((Date.now() - started) / 1000), tags }),
    ];
  }
  if (path === '/metrics') {
    return [
      200,
      'text/plain; version=0.0.4',
      `# HELP mcp_standin_requests_total Requests served.\n# TYPE mcp_standin_requests_total counter\n` +
        `mcp_standin_requests_total{service="${name}",instance="${instance}"} ${requests}\n` +
        `# HELP mcp_standin_connections_total Connections accepted.\n# TYPE mcp_standin_connections_total counter\n` +
        `mcp_standin_connections_total{service="${name}",instance="${instance}"} ${connections}\n` +
        `# HELP mcp_standin_uptime_seconds Seconds since start.\n# TYPE mcp_standin_uptime_seconds gauge\n` +
        `mcp_standin_uptime_seconds{service="${name}",instance="${instance}"} ${(Date.now() - started) / 1000}\n`,
    ];
  }
  return null;
}

function httpMode() {
  const server = createHttpServer((req, res) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    const answer = req.method === 'GET' ? known(url.pathname) : null;
    if (answer) {
      res.writeHead(answer[0], { 'content-type': answer[1] });
      return res.end(answer[2]);
    }
    let bytes = 0;
    req.on('data', (d) => {
      bytes += d.length;
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ service: name, instance, method: req.method, path: url.pathname, bytes, forwarded_for: req.headers['x-forwarded-for'] ?? null }),
      );
    });
  });
  server.on('connection', () => {
    connections++;
  });
  return server;
}

const HTTP_REQUEST_LINE = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) (\S+) HTTP\/1\.[01]\r?\n/;
const METHODS = ['GET ', 'HEAD ', 'POST ', 'PUT ', 'DELETE ', 'OPTIONS ', 'PATCH '];

/** Could these first bytes still become an HTTP request line? */
function mayBeHttp(s) {
  return METHODS.some((m) => (s.length < m.length ? m.startsWith(s) : s.startsWith(m))) && (!s.includes('\n') || HTTP_REQUEST_LINE.test(s));
}

function tcpMode() {
  return createTcpServer((socket) => {
    connections++;
    socket.on('error', () => {});
    let head = '';
    const first = (chunk) => {
      head += chunk.toString('latin1');
      if (!mayBeHttp(head) || head.length > 8192) {
        // Not HTTP: from here on, an echo server.
        socket.off('data', first);
        socket.write(head, 'latin1');
        socket.pipe(socket);
        return;
      }
      if (!/\r?\n\r?\n/.test(head)) return; // the rest of the head is coming
      socket.off('data', first);
      requests++;
      const m = HTTP_REQUEST_LINE.exec(head);
      const answer = known(new URL(m[2], 'http://x').pathname) ?? [404, 'text/plain', 'not found\n'];
      const body = Buffer.from(answer[2]);
      socket.end(
        `HTTP/1.1 ${answer[0]} ${answer[0] === 200 ? 'OK' : 'Not Found'}\r\ncontent-type: ${answer[1]}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${m[1] === 'HEAD' ? '' : answer[2]}`,
      );
    };
    socket.on('data', first);
  });
}

async function consulPut(path, body) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers['x-consul-token'] = token;
  const res = await fetch(`${consul}${path}`, { method: 'PUT', headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
}

async function register() {
  if (!registering) return;
  const ip = address();
  const check =
    mode === 'http'
      ? { HTTP: `http://${ip}:${port}/health`, Interval: checkInterval, Timeout: '2s' }
      : { TCP: `${ip}:${port}`, Interval: checkInterval, Timeout: '2s' };
  const body = {
    ID: instance,
    Name: name,
    Address: ip,
    Port: port,
    Tags: tags,
    Meta: { standin: 'true', mode },
    Check: { ...check, DeregisterCriticalServiceAfter: '1m' },
  };
  for (let attempt = 1; !stopping; attempt++) {
    try {
      await consulPut('/v1/agent/service/register', body);
      log('registered in consul', { consul, address: ip, port });
      return;
    } catch (error) {
      const wait = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
      log('consul registration failed, retrying', { error: String(error), retry_in_ms: wait });
      await new Promise((r) => setTimeout(r, wait).unref());
    }
  }
}

const server = mode === 'http' ? httpMode() : tcpMode();
server.listen(port, '0.0.0.0', () => {
  log('listening', { mode, port });
  void register();
});

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  log('stopping', { signal });
  if (registering) {
    await consulPut(`/v1/agent/service/deregister/${encodeURIComponent(instance)}`).catch((e) => log('deregister failed', { error: String(e) }));
  }
  server.close(() => process.exit(0));
  server.closeIdleConnections?.();
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
