// Helpers for the hostile-input, fault and fuzz tests: a strict reference HTTP/1.1 request
// parser, independent of the proxy's (regular expressions over lines, not a byte scanner:
// the fuzz test's differential checks compare the two); a raw backend that parses what it
// receives with it (so a test can count exactly what got through, notice anything malformed
// and tell which client it came from); raw client exchanges that report whether the proxy
// closed; a strict response-stream checker; a seeded PRNG and a logger that keeps its lines.
import { createServer, connect, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** uri-host [":" port] (RFC 3986 §3.2.2), no userinfo. */
const AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:[\]%]*$/;
/** origin-form, OPTIONS *, or absolute http(s) form (RFC 9112 §3.2); no fragment. */
const ORIGIN_FORM = /^\/[\x21-\x22\x24-\x7e]*$/;
const ABSOLUTE_FORM = /^https?:\/\/([^/?]+)[\x21-\x22\x24-\x7e]*$/i;
/** Fields that may not be sent as trailers (RFC 9110 §6.5.1). */
const FORBIDDEN_TRAILERS = new Set(['content-length', 'transfer-encoding', 'host']);
/** The forwarding line switchyard appends last to every head it forwards. */
export const PROXY_MARK = /\r\nForwarded: for=([^\r\n;]*);proto=http\r\n(?:Connection: upgrade\r\n)?\r\n$/;

export interface BackendRequest {
  /** The head exactly as received, CRLFCRLF included. */
  head: string;
  method: string;
  target: string;
  headers: [string, string][];
  /** The body as received on the wire (chunked framing included). */
  rawBody: string;
  /** The decoded body. */
  body: string;
  /** The head ends with the proxy's own forwarding lines (it went through the proxy's parser). */
  marked: boolean;
  /** The client address the proxy named in its own Forwarded line (null when unmarked). */
  client: string | null;
  id: number;
}

export interface StrictBackend {
  port: number;
  address: string;
  /** Complete requests received, in order, over all connections. */
  requests: BackendRequest[];
  /** Anything received that a strict HTTP/1.1 parser rejects (should stay empty). */
  violations: string[];
  /** Bytes received in total. */
  bytes: number;
  /** Connections accepted. */
  connections: number;
  /** Connections that closed with an incomplete request buffered. */
  incomplete: number;
  /** Sockets currently open. */
  sockets: Set<Socket>;
  close(): Promise<void>;
}

type Reply = (req: BackendRequest, socket: Socket) => void;

/** The default reply: 200 with a body naming the request's sequence number. */
export const replyOk: Reply = (req, socket) => {
  const body = `req#${req.id}`;
  socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nx-seq: ${req.id}\r\n\r\n${body}`);
};

export interface StrictHead {
  /** The head, CRLFCRLF included. */
  head: string;
  method: string;
  target: string;
  minor: 0 | 1;
  /** Lowercased names, trimmed values, in order. */
  headers: [string, string][];
  /** Content-Length, -1 when absent. */
  contentLength: number;
  chunked: boolean;
  host: string | null;
}

/**
 * Parse a request head from the start of `buf` (latin1) strictly, as an independent reference
 * for the proxy's parser: regular expressions over whole lines instead of a byte scanner.
 * Returns the head, null when the head is incomplete, or a string saying what is wrong.
 */
export function strictParseHead(buf: string): StrictHead | null | string {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd === -1) return buf.length > 1 << 20 ? 'head too large' : null;
  const head = buf.slice(0, headEnd + 4);
  const lines = head.slice(0, -4).split('\r\n');
  const m = /^([^ ]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/.exec(lines[0]!);
  if (m === null || !TCHAR.test(m[1]!)) return `bad request line ${JSON.stringify(lines[0])}`;
  const target = m[2]!;
  const absolute = ABSOLUTE_FORM.exec(target);
  if (!ORIGIN_FORM.test(target) && !(target === '*' && m[1] === 'OPTIONS') && absolute === null) return `bad request-target ${JSON.stringify(target)}`;
  if (absolute !== null && !AUTHORITY.test(absolute[1]!)) return `bad authority ${JSON.stringify(absolute[1])}`;
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return `bad header line ${JSON.stringify(line)}`;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!TCHAR.test(name)) return `bad header name ${JSON.stringify(name)}`;
    if (!FIELD_VALUE.test(value) || value.includes('\r') || value.includes('\n')) return `bad header value ${JSON.stringify(value)}`;
    headers.push([name.toLowerCase(), value]);
  }
  const get = (n: string) => headers.filter(([k]) => k === n).map(([, v]) => v);
  const cl = get('content-length');
  const te = get('transfer-encoding');
  const host = get('host');
  if (m[3] === '1' && host.length !== 1) return 'not exactly one Host';
  if (host.length > 1) return 'more than one Host';
  if (host.length === 1 && !AUTHORITY.test(host[0]!)) return `bad Host ${JSON.stringify(host[0])}`;
  if (absolute !== null && host.length === 1 && absolute[1]!.toLowerCase() !== host[0]!.toLowerCase()) return 'absolute-form authority is not the Host';
  if (cl.length > 0 && te.length > 0) return 'both Content-Length and Transfer-Encoding';
  if (te.length > 0 && m[3] === '0') return 'Transfer-Encoding in HTTP/1.0';
  if (cl.length > 0 && (!cl.every((v) => /^\d{1,15}$/.test(v)) || new Set(cl.map(Number)).size !== 1)) return `bad Content-Length ${JSON.stringify(cl)}`;
  if (te.length > 1 || (te.length === 1 && te[0]!.toLowerCase() !== 'chunked')) return `bad Transfer-Encoding ${JSON.stringify(te)}`;
  return {
    head,
    method: m[1]!,
    target,
    minor: m[3] === '1' ? 1 : 0,
    headers,
    contentLength: cl.length > 0 ? Number(cl[0]) : -1,
    chunked: te.length === 1,
    host: host[0] ?? null,
  };
}

/**
 * Parse one request from `buf` (latin1) strictly. Returns the request and the bytes used,
 * null when more bytes are needed, or a string saying what is wrong.
 */
export function strictParseRequest(buf: string, id: number): { req: BackendRequest; used: number } | null | string {
  const h = strictParseHead(buf);
  if (h === null || typeof h === 'string') return h;
  const { head } = h;
  const headEnd = head.length - 4;
  const mark = PROXY_MARK.exec(head);
  const req: BackendRequest = {
    head,
    method: h.method,
    target: h.target,
    headers: h.headers,
    rawBody: '',
    body: '',
    marked: mark !== null,
    client: mark?.[1] ?? null,
    id,
  };
  let p = headEnd + 4;
  if (h.chunked) {
    const body: string[] = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', p);
      if (eol === -1) return buf.length - p > 4096 ? 'chunk size line too long' : null;
      // eslint-disable-next-line no-control-regex -- chunk-ext may hold no control bytes (RFC 9112 §7.1.1): the class names them
      const sm = /^([0-9a-fA-F]{1,12})[ \t]*(?:;[^\x00-\x08\x0a-\x1f\x7f]*)?$/.exec(buf.slice(p, eol));
      if (sm === null || eol - p > 4096) return `bad chunk size line ${JSON.stringify(buf.slice(p, Math.min(eol, p + 80)))}`;
      const size = parseInt(sm[1]!, 16);
      p = eol + 2;
      if (size === 0) {
        // trailers: field lines up to an empty line; 16 KiB at most, counting each line and its CR
        let trailerBytes = 0;
        for (;;) {
          const tl = buf.indexOf('\r\n', p);
          if (tl === -1) return trailerBytes + buf.length - p > 16384 ? 'trailers too large' : null;
          const line = buf.slice(p, tl);
          p = tl + 2;
          if (line === '') break;
          trailerBytes += line.length + 1;
          if (trailerBytes > 16384) return 'trailers too large';
          const c = line.indexOf(':');
          if (c <= 0 || !TCHAR.test(line.slice(0, c)) || !FIELD_VALUE.test(line.slice(c + 1))) return `bad trailer ${JSON.stringify(line)}`;
          if (FORBIDDEN_TRAILERS.has(line.slice(0, c).toLowerCase())) return `forbidden trailer ${JSON.stringify(line)}`;
        }
        break;
      }
      if (buf.length < p + size + 2) return null;
      body.push(buf.slice(p, p + size));
      if (buf.slice(p + size, p + size + 2) !== '\r\n') return 'no CRLF after chunk data';
      p += size + 2;
    }
    req.body = body.join('');
  } else if (h.contentLength >= 0) {
    const n = h.contentLength;
    if (buf.length < p + n) return null;
    req.body = buf.slice(p, p + n);
    p += n;
  }
  req.rawBody = buf.slice(headEnd + 4, p);
  return { req, used: p };
}

/**
 * Every request a strict parser finds in `data`, in order, up to the first malformed or
 * incomplete one: what a correct proxy may forward of these bytes, and nothing else.
 */
export function strictParseAll(data: string): BackendRequest[] {
  const out: BackendRequest[] = [];
  let rest = data;
  for (;;) {
    const r = strictParseRequest(rest, out.length + 1);
    if (r === null || typeof r === 'string') return out;
    out.push(r.req);
    rest = rest.slice(r.used);
  }
}

/** A backend speaking HTTP/1.1 keep-alive over raw TCP, parsing strictly what it receives. */
export async function strictBackend(reply: Reply = replyOk): Promise<StrictBackend> {
  const sockets = new Set<Socket>();
  const state: StrictBackend = {
    port: 0,
    address: '',
    requests: [],
    violations: [],
    bytes: 0,
    connections: 0,
    incomplete: 0,
    sockets,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  const server: NetServer = createServer((socket) => {
    sockets.add(socket);
    state.connections++;
    let pending = '';
    let broken = false;
    socket.on('data', (d: Buffer) => {
      state.bytes += d.length;
      if (broken) return;
      pending += d.toString('latin1');
      for (;;) {
        const r = strictParseRequest(pending, state.requests.length + 1);
        if (r === null) return;
        if (typeof r === 'string') {
          state.violations.push(r);
          broken = true;
          socket.destroy();
          return;
        }
        pending = pending.slice(r.used);
        state.requests.push(r.req);
        reply(r.req, socket);
      }
    });
    socket.on('close', () => {
      sockets.delete(socket);
      if (pending !== '' && !broken) state.incomplete++;
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as AddressInfo).port;
  state.address = `127.0.0.1:${state.port}`;
  return state;
}

export interface Exchange {
  /** Everything received, latin1. */
  data: string;
  /** The proxy closed (FIN or reset) before our idle timer fired. */
  closed: boolean;
  /** ms from the first write to the close (or to the idle timeout). */
  ms: number;
  /** ms from the first write to the first byte received (-1: none). */
  firstMs: number;
}

export interface ExchangeOptions {
  /** Give up (and destroy) after this long without data. */
  idleMs?: number;
  /** Half-close after writing. */
  end?: boolean;
  /** Write these pieces with `gapMs` between them instead of all at once. */
  gapMs?: number;
  /** Connect from this loopback address (127.x.y.z), to tell clients apart at the backend. */
  localAddress?: string;
}

/** Connect, send `data` (a string is latin1, or pieces), collect until the proxy closes. */
export function exchange(port: number, data: string | Buffer | (string | Buffer)[], opts: ExchangeOptions = {}): Promise<Exchange> {
  const idleMs = opts.idleMs ?? 1000;
  const pieces = (Array.isArray(data) ? data : [data]).map((d) => (typeof d === 'string' ? Buffer.from(d, 'latin1') : d));
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true, ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }) });
    const chunks: Buffer[] = [];
    let closed = false;
    let done = false;
    let firstMs = -1;
    const t0 = Date.now();
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(writer);
      s.destroy();
      resolve({ data: Buffer.concat(chunks).toString('latin1'), closed, ms: Date.now() - t0, firstMs });
    };
    let timer = setTimeout(finish, idleMs);
    let writer: NodeJS.Timeout | undefined;
    s.on('data', (d) => {
      if (firstMs === -1) firstMs = Date.now() - t0;
      chunks.push(d);
      clearTimeout(timer);
      timer = setTimeout(finish, idleMs);
    });
    s.on('end', () => {
      closed = true;
      finish();
    });
    s.on('close', () => {
      closed = true;
      finish();
    });
    s.on('error', () => {
      closed = true;
      finish();
    });
    let i = 0;
    const writeNext = () => {
      if (done || s.destroyed) return;
      if (i < pieces.length) s.write(pieces[i++]!);
      if (i < pieces.length) writer = setTimeout(writeNext, opts.gapMs ?? 0);
      else if (opts.end) s.end();
    };
    s.on('connect', writeNext);
  });
}

export interface ParsedResponse {
  status: number;
  headers: [string, string][];
  body: string;
}

/**
 * Parse a stream of HTTP/1.1 responses strictly. Returns the responses and the unparsed tail,
 * or a string saying what is malformed. `headOnly` marks responses to HEAD (no body).
 */
export function parseResponses(data: string): { responses: ParsedResponse[]; rest: string } | string {
  const responses: ParsedResponse[] = [];
  let p = 0;
  while (p < data.length) {
    const headEnd = data.indexOf('\r\n\r\n', p);
    if (headEnd === -1) break;
    const lines = data.slice(p, headEnd).split('\r\n');
    const m = /^HTTP\/1\.1 ([1-5]\d\d) [\t\x20-\x7e\x80-\xff]*$/.exec(lines[0]!);
    if (m === null) return `bad status line ${JSON.stringify(lines[0]!.slice(0, 80))}`;
    const headers: [string, string][] = [];
    for (const line of lines.slice(1)) {
      const c = line.indexOf(':');
      if (c <= 0 || !TCHAR.test(line.slice(0, c))) return `bad response header ${JSON.stringify(line.slice(0, 80))}`;
      const v = line.slice(c + 1).trim();
      if (!FIELD_VALUE.test(v)) return `bad response header value ${JSON.stringify(line.slice(0, 80))}`;
      headers.push([line.slice(0, c).toLowerCase(), v]);
    }
    const status = Number(m[1]);
    const cl = headers.filter(([k]) => k === 'content-length').map(([, v]) => v);
    const te = headers.filter(([k]) => k === 'transfer-encoding');
    if (te.length > 0) return 'unexpected Transfer-Encoding in test response';
    let body = '';
    let q = headEnd + 4;
    if (status >= 200 && status !== 204 && status !== 304) {
      if (cl.length !== 1 || !/^\d+$/.test(cl[0]!)) return `response without one valid Content-Length (${status})`;
      const n = Number(cl[0]);
      if (data.length < q + n) break;
      body = data.slice(q, q + n);
      q += n;
    }
    responses.push({ status, headers, body });
    p = q;
  }
  return { responses, rest: data.slice(p) };
}

/** mulberry32: a small seeded PRNG so a failing fuzz case can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A pino logger whose lines are kept (parsed) for assertions. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

/** Resolve after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `cond` every 20 ms until true or `ms` passed; returns the last value. */
export async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(20);
  return cond();
}
