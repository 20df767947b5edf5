import type { HttpHead } from './http-head.js';
import { writeLatin1 } from './latin1.js';

// Message heads as they leave the proxy: the parsed head's bytes with the dropped (hop-by-hop)
// lines cut out and our own lines added before the blank line, in one new Buffer so that each
// head costs one write. Kept lines are copied in runs between dropped ones, not line by line:
// each Buffer#copy call costs ~200 ns of fixed overhead on Node 20 (a typed-array view plus
// TypedArray.prototype.set), more than copying the bytes of a whole head.

/**
 * The head in buf[offset..head.headEnd) with dropped lines removed and `extra` (CRLF-terminated
 * lines) added, followed by buf[tailFrom..] (pass buf.length for the head alone).
 */
export function rewriteHead(head: HttpHead, buf: Buffer, offset: number, extra: string, tailFrom: number): Buffer {
  return assembleHead(head, buf, '', offset, extra, tailFrom);
}

/** Like rewriteHead for the head alone, with `startLine` (CRLF-terminated) in place of its own. */
export function rewriteHeadWithStartLine(head: HttpHead, buf: Buffer, startLine: string, extra: string): Buffer {
  return assembleHead(head, buf, startLine, head.startLineEnd, extra, buf.length);
}

/** `startLine`, then buf[from..blank line) less the dropped lines, `extra`, CRLF, buf[tailFrom..]. */
function assembleHead(head: HttpHead, buf: Buffer, startLine: string, from: number, extra: string, tailFrom: number): Buffer {
  const fieldsEnd = head.headEnd - 2; // the blank line
  let size = startLine.length + fieldsEnd - from + extra.length + 2 + (buf.length - tailFrom);
  if (head.dropCount > 0) {
    for (let i = 0; i < head.count; i++) if (head.drop[i] === 1) size -= head.lineEnd[i]! - head.lineStart[i]!;
  }
  const out = Buffer.allocUnsafe(size);
  let p = startLine.length > 0 ? writeLatin1(out, startLine, 0) : 0;
  let run = from;
  if (head.dropCount > 0) {
    for (let i = 0; i < head.count; i++) {
      if (head.drop[i] === 0) continue;
      const start = head.lineStart[i]!;
      if (start > run) p += buf.copy(out, p, run, start);
      run = head.lineEnd[i]!;
    }
  }
  if (fieldsEnd > run) p += buf.copy(out, p, run, fieldsEnd);
  if (extra.length > 0) p += writeLatin1(out, extra, p);
  out[p] = 13;
  out[p + 1] = 10;
  if (tailFrom < buf.length) buf.copy(out, p + 2, tailFrom);
  return out;
}

/** `::ffff:10.0.0.1` → `10.0.0.1` (IPv4 clients on a dual-stack listener). */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

/** RFC 7239 §6: IPv6 nodes are quoted and bracketed. */
function forwardedNode(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip;
}

/**
 * X-Forwarded-For / X-Forwarded-Proto / Forwarded lines for a request from `clientIp`;
 * `priorXff` / `priorForwarded` are the values the request arrived with when its peer is a
 * trusted proxy (their lines are dropped and the values extended, as HAProxy's `option
 * forwardfor` and nginx's $proxy_add_x_forwarded_for do), null otherwise (replaced).
 */
export function forwardingLines(clientIp: string, priorXff: string | null, proto: 'http' | 'https' = 'http', priorForwarded: string | null = null): string {
  const xff = priorXff === null ? clientIp : `${priorXff}, ${clientIp}`;
  // proto is the transport the client used to reach us (TLS-terminating frontend: https).
  const forwarded = `for=${forwardedNode(clientIp)};proto=${proto}`;
  return `X-Forwarded-For: ${xff}\r\nX-Forwarded-Proto: ${proto}\r\nForwarded: ${priorForwarded === null ? forwarded : `${priorForwarded}, ${forwarded}`}\r\n`;
}

/** The value of cookie `name` in a Cookie header, or null. */
export function readCookie(header: string, name: string): string | null {
  let i = 0;
  while (i < header.length) {
    while (header.charCodeAt(i) === 32) i++;
    const eq = header.indexOf('=', i);
    if (eq === -1) return null;
    let end = header.indexOf(';', eq);
    if (end === -1) end = header.length;
    if (eq - i === name.length && header.startsWith(name, i)) return header.slice(eq + 1, end).trim();
    i = end + 1;
  }
  return null;
}
