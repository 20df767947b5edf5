import { connect, isIP, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Client, type buildConnector } from 'undici';
import type { BackendTlsConfig, HealthConfig, StatusRanges } from '../config/types.js';
import { checkProxyHeader } from '../proxy-protocol/header.js';

// One active check of one server: a TCP connect or an HTTP request, bounded by `timeout`.
// Results carry HAProxy's check codes (the `check_status` column of `show stat`) and a short
// human reason that the stats page and the transition log show as is.

export type CheckCode = 'L4OK' | 'L4TOUT' | 'L4CON' | 'L6OK' | 'L6TOUT' | 'L6RSP' | 'L7OK' | 'L7STS' | 'L7TOUT' | 'L7RSP';

export interface ProbeResult {
  readonly ok: boolean;
  readonly code: CheckCode;
  /** `connected`, `status 200`, `connection refused`, `timeout after 2s`, `status 503`, `body mismatch` */
  readonly reason: string;
  readonly durationMs: number;
}

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  /** host:port (the server's address; an IPv6 host is not bracketed here). */
  readonly address: string;
  /** PROXY protocol version its traffic carries (0 none): checks follow it (check_send_proxy). */
  readonly sendProxy?: number;
}

/**
 * The PROXY header a check sends, or null (HAProxy: checks send one when the server's traffic
 * does, or always with `check-send-proxy`; it speaks for the balancer: UNKNOWN / LOCAL).
 */
function checkHeader(target: ProbeTarget, health: HealthConfig): Buffer | null {
  const own = target.sendProxy === 1 || target.sendProxy === 2 ? target.sendProxy : 0;
  const version = health.sendProxy === 'auto' ? own : health.sendProxy ? own || 1 : 0;
  return version === 0 ? null : checkProxyHeader(version);
}

/** A running probe: `done` always resolves (never rejects); `cancel()` aborts it quietly. */
export interface Probe {
  readonly done: Promise<ProbeResult>;
  cancel(): void;
}

/** The body is read up to this many bytes for `body` matching: a health page, not a download. */
const MAX_BODY = 64 * 1024;

/**
 * `tls`: the backend's TLS settings, used by the check as by traffic (CA, servername, verify,
 * client certificate): a tcp check then passes when the TLS handshake completes (HAProxy
 * `check-ssl`: L6OK), an http check speaks https.
 */
export function startProbe(target: ProbeTarget, health: HealthConfig, tls: BackendTlsConfig | null = null): Probe {
  if (health.type === 'http') return httpProbe(target, health, tls);
  return tls === null ? tcpProbe(target, health) : tlsProbe(target, health, tls);
}

/** `2s`, `250ms`, `1.5s`: how durations read in reasons (`timeout after 2s`). */
export function formatDuration(ms: number): string {
  if (ms >= 1000 && ms % 100 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export function statusExpected(status: number, ranges: StatusRanges): boolean {
  for (const [lo, hi] of ranges) if (status >= lo && status <= hi) return true;
  return false;
}

/** Connect errors as people say them. */
export function describeConnectError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'EPIPE':
      return 'connection closed';
    default: {
      const message = (error as { message?: unknown } | null)?.message;
      return typeof code === 'string' ? code.toLowerCase() : typeof message === 'string' ? message : 'connection failed';
    }
  }
}

function tcpProbe(target: ProbeTarget, health: HealthConfig): Probe {
  const started = performance.now();
  let socket: Socket | null = null;
  let timer: NodeJS.Timeout | null = null;
  let settle: (r: ProbeResult) => void = () => {};
  const done = new Promise<ProbeResult>((resolve) => {
    settle = resolve;
  });
  const finish = (ok: boolean, code: CheckCode, reason: string): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (socket !== null) socket.destroy();
    socket = null;
    settle({ ok, code, reason, durationMs: Math.round(performance.now() - started) });
    settle = () => {};
  };
  socket = connect({ host: target.host, port: target.port });
  socket.setNoDelay(true);
  const header = checkHeader(target, health);
  if (header !== null) socket.write(header);
  socket.once('connect', () => finish(true, 'L4OK', 'connected'));
  socket.once('error', (error) => finish(false, 'L4CON', describeConnectError(error)));
  timer = setTimeout(() => finish(false, 'L4TOUT', `timeout after ${formatDuration(health.timeoutMs)}`), health.timeoutMs);
  return {
    done,
    cancel: () => finish(false, 'L4CON', 'cancelled'),
  };
}

/** A TLS handshake with the backend's settings: L6OK when it completes. */
function tlsProbe(target: ProbeTarget, health: HealthConfig, tls: BackendTlsConfig): Probe {
  const started = performance.now();
  let socket: TLSSocket | null = null;
  let connected = false;
  let settle: (r: ProbeResult) => void = () => {};
  const done = new Promise<ProbeResult>((resolve) => {
    settle = resolve;
  });
  const finish = (ok: boolean, code: CheckCode, reason: string): void => {
    clearTimeout(timer);
    if (socket !== null) socket.destroy();
    socket = null;
    settle({ ok, code, reason, durationMs: Math.round(performance.now() - started) });
    settle = () => {};
  };
  const timer = setTimeout(() => finish(false, connected ? 'L6TOUT' : 'L4TOUT', `timeout after ${formatDuration(health.timeoutMs)}`), health.timeoutMs);
  const header = checkHeader(target, health);
  if (header === null) {
    socket = tlsConnect({ host: target.host, port: target.port, ...probeTlsOptions(tls, target.host) });
  } else {
    // check_send_proxy: the PROXY header goes first, in clear, then TLS on the same connection.
    const plain = connect({ host: target.host, port: target.port });
    plain.write(header);
    plain.once('connect', () => {
      connected = true;
    });
    socket = tlsConnect({ socket: plain, ...probeTlsOptions(tls, target.host) });
  }
  socket.once('connect', () => {
    connected = true;
  });
  socket.once('secureConnect', () => finish(true, 'L6OK', `TLS ${socket?.getProtocol() ?? ''} handshake ok`.replace('  ', ' ')));
  socket.once('error', (error) => (connected ? finish(false, 'L6RSP', describeTlsError(error)) : finish(false, 'L4CON', describeConnectError(error))));
  return {
    done,
    cancel: () => finish(false, 'L4CON', 'cancelled'),
  };
}

/** node:tls options from a backend's tls settings (for checks; traffic uses balancer/upstream-tls.ts). */
function probeTlsOptions(tls: BackendTlsConfig, host: string) {
  return {
    ca: tls.ca ?? undefined,
    cert: tls.clientCert?.cert,
    key: tls.clientCert?.key,
    servername: tls.servername ?? (isIP(host) === 0 ? host : undefined),
    rejectUnauthorized: tls.verify,
    minVersion: tls.minVersion,
    ciphers: tls.ciphers ?? undefined,
  };
}

/** A failed handshake as people say it: the verification error, else OpenSSL's reason. */
function describeTlsError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ECONNRESET') return 'TLS handshake: connection reset';
  if (typeof code === 'string') return `TLS handshake: ${code.replace(/^ERR_SSL_/, '').toLowerCase()}`;
  return 'TLS handshake failed';
}

function httpProbe(target: ProbeTarget, health: HealthConfig, tls: BackendTlsConfig | null): Probe {
  const started = performance.now();
  // An IPv6 literal goes in brackets, in the URL and in the default Host header (RFC 3986 §3.2.2).
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  // A fresh connection per check with `Connection: close`, as HAProxy does: a pooled socket
  // would keep answering after the server stopped accepting new connections.
  const header = checkHeader(target, health);
  const client = new Client(`${tls === null ? 'http' : 'https'}://${host}:${target.port}`, {
    connect:
      header !== null
        ? proxiedConnector(target, header, tls)
        : tls === null
          ? { timeout: health.timeoutMs + 1000 }
          : { timeout: health.timeoutMs + 1000, ...probeTlsOptions(tls, target.host) },
    headersTimeout: health.timeoutMs + 1000,
    bodyTimeout: health.timeoutMs + 1000,
    pipelining: 1,
  });
  let connected = false;
  let finished = false;
  let settle: (r: ProbeResult) => void = () => {};
  const done = new Promise<ProbeResult>((resolve) => {
    settle = resolve;
  });
  const finish = (ok: boolean, code: CheckCode, reason: string): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    client.destroy().catch(() => {});
    settle({ ok, code, reason, durationMs: Math.round(performance.now() - started) });
  };
  const timer = setTimeout(() => {
    finish(false, connected ? 'L7TOUT' : 'L4TOUT', `timeout after ${formatDuration(health.timeoutMs)}`);
  }, health.timeoutMs);
  client.on('connect', () => {
    connected = true;
  });
  client.on('connectionError', () => {});
  client.on('disconnect', () => {});

  void (async () => {
    try {
      const res = await client.request({
        path: health.path,
        method: health.method,
        headers: { host: health.host ?? `${host}:${target.port}`, connection: 'close', 'user-agent': 'switchyard-health' },
      });
      if (finished) {
        discard(res.body);
        return;
      }
      const status = res.statusCode;
      if (!statusExpected(status, health.expect)) {
        discard(res.body);
        finish(false, 'L7STS', `status ${status}`);
        return;
      }
      if (health.body === null) {
        discard(res.body);
        finish(true, 'L7OK', `status ${status}`);
        return;
      }
      let text = '';
      for await (const chunk of res.body) {
        text += (chunk as Buffer).toString('latin1');
        if (text.includes(health.body) || text.length >= MAX_BODY) break;
      }
      discard(res.body);
      if (text.includes(health.body)) finish(true, 'L7OK', `status ${status}`);
      else finish(false, 'L7RSP', 'body mismatch');
    } catch (error) {
      if (finished) return;
      if (!connected) finish(false, 'L4CON', describeConnectError(rootCause(error)));
      else finish(false, 'L7RSP', describeResponseError(rootCause(error)));
    }
  })();
  return {
    done,
    cancel: () => finish(false, 'L4CON', 'cancelled'),
  };
}

/** An undici connector that sends the PROXY header first on the check's connection. */
function proxiedConnector(target: ProbeTarget, header: Buffer, tls: BackendTlsConfig | null): buildConnector.connector {
  return (_options, callback): void => {
    const socket = connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    socket.write(header);
    let settled = false;
    socket.once('connect', () => {
      if (settled) return;
      if (tls === null) {
        settled = true;
        callback(null, socket);
        return;
      }
      const secure = tlsConnect({ socket, ...probeTlsOptions(tls, target.host) });
      secure.once('secureConnect', () => {
        if (settled) return;
        settled = true;
        callback(null, secure);
      });
      secure.once('error', (error: Error) => {
        if (settled) return;
        settled = true;
        callback(error, null);
      });
    });
    socket.once('error', (error) => {
      if (settled) return;
      settled = true;
      callback(error, null);
    });
  };
}

/** Drop a response body: destroying an unread undici body emits an abort error, expected here. */
function discard(body: Readable): void {
  body.on('error', noop);
  body.destroy();
}

function noop(): void {}

function rootCause(error: unknown): unknown {
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause ?? error;
}

function describeResponseError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'connection closed';
  if (code === 'HPE_INVALID_CONSTANT' || (typeof code === 'string' && code.startsWith('HPE_'))) return 'invalid response';
  return describeConnectError(error);
}
