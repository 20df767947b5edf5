import type { Server } from '../model/server.js';
import type { AccessLog } from './access-log.js';
import type { HttpHead } from './http-head.js';
import type { HttpExchange } from './http-exchange.js';

// How an HTTP exchange is recorded once it ends: response counters (frontend, backend,
// server), passive health, and the access log line.

/** A response from `server` went to the client: counted, and observed for passive health. */
export function recordResponse(x: HttpExchange, server: Server | null, log: AccessLog | null, clientIp: string, head: HttpHead): void {
  const ms = Date.now() - x.start;
  const status = x.status;
  x.frontend.counters.response(status, ms);
  const backend = x.backend!;
  backend.counters.response(status, ms);
  if (server !== null) {
    server.counters.response(status, ms);
    const observer = backend.observer;
    if (observer !== null) {
      if (status >= 500) observer.failure(server, '5xx');
      else observer.success(server);
    }
  }
  logExchange(log, x, server, clientIp, head, '');
}

/** The access log line of the exchange (`why`: the error, '' when none); nothing without a log. */
export function logExchange(log: AccessLog | null, x: HttpExchange, server: Server | null, clientIp: string, head: HttpHead, why: string): void {
  if (log === null) return;
  log.http({
    frontend: x.frontend.name,
    backend: x.backend?.name ?? null,
    server: server?.name ?? null,
    client: clientIp,
    // Empty until the connection's first exchange began (a first request refused 400, 408).
    method: x.method || head.method,
    target: x.target || head.target,
    status: x.status,
    bytesIn: x.bytesIn,
    bytesOut: x.bytesOut,
    connectMs: x.connectedAt > 0 ? x.connectedAt - x.start : -1,
    totalMs: x.start > 0 ? Date.now() - x.start : 0,
    error: why,
  });
}
