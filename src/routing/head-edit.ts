import type { HttpHead } from '../balancer/http-head.js';
import { rewriteHead, rewriteHeadWithStartLine } from '../balancer/head-rewrite.js';
import { latin1 } from '../balancer/latin1.js';
import type { RequestView } from './request-view.js';
import type { Backend } from '../model/backend.js';
import type { Server } from '../model/server.js';

// The request head as a routed exchange sends it: header rules, user edits and the request id
// applied through the same drop-marks and added lines as the hop-by-hop rewrite, and, when the
// path is rewritten, a new request line in front of the kept fields. Still one Buffer and one
// write per head.

/** The head for the server; `extra`: the proxy's own lines (forwarding, Connection). */
export function routedRequestHead(head: HttpHead, buf: Buffer, offset: number, extra: string, v: RequestView): Buffer {
  const plan = v.plan;
  let lines = extra;
  if (plan !== null) lines += plan.requestLines(head, buf, v);
  if (v.edits !== null) lines += v.edits.applyTo(head, buf);
  const rewrite = plan === null ? null : plan.rewrite;
  if (rewrite === null) {
    if (plan !== null && plan.captureForResponse) v.capture();
    return rewriteHead(head, buf, offset, lines, buf.length);
  }
  const path = v.path;
  const next = rewrite.apply(path);
  if (plan!.captureForResponse) v.capture();
  if (next === path) return rewriteHead(head, buf, offset, lines, buf.length);
  const query = v.query;
  // absolute-form keeps its scheme://authority (RFC 9112 §3.2.2); the path part is replaced.
  const start = head.targetStart;
  const prefixEnd = buf[start] === 47 ? start : pathStartOf(buf, start, head.targetEnd);
  const target = (prefixEnd > start ? latin1(buf, start, prefixEnd) : '') + next + (query === '' ? '' : `?${query}`);
  const line = `${head.method} ${target} HTTP/1.${head.minor}\r\n`;
  return rewriteHeadWithStartLine(head, buf, line, lines);
}

function pathStartOf(buf: Buffer, start: number, end: number): number {
  let p = buf.indexOf(47, start) + 2;
  while (p < end && buf[p] !== 47 && buf[p] !== 63) p++;
  return p;
}

/** Response rules and user edits for the response head: drops marked, lines returned. */
export function routedResponseLines(head: HttpHead, buf: Buffer, v: RequestView, backend: Backend, server: Server): string {
  let lines = '';
  const plan = v.plan;
  if (plan !== null && (plan.response !== null || plan.requestId !== null))
    lines = plan.responseLines(head, buf, v, { backend: backend.name, server: server.name });
  if (v.responseEdits !== null) lines += v.responseEdits.applyTo(head, buf);
  return lines;
}
