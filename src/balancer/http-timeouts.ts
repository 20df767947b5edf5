import type { ClientSocket } from '../model/proxy-socket.js';
import type { Upstream } from './upstream.js';
import type { HttpExchange } from './http-exchange.js';

// Who is late in an exchange under way, for the client side's timeout handling (http-session.ts).
//
// HAProxy's timeout model: `timeouts.client` is the client's inactivity while we wait on it
// (its request body, or its reading of our response); `timeouts.server` is the server's
// inactivity while we wait on it (its response, or its reading of the request body), counted
// from the last byte sent to or received from it. Only the side we waited on is blamed: a slow
// client never counts against a server (passive ejection, `eresp`). The deadline is only when
// to look again: the clocks move per byte as plain field writes, and a wait that starts later
// (the body finished, a write got queued) is seen at the next look, at most the shorter
// timeout away (the server side arms it so), so it is never late by more than the sweep.

export const LATE_NONE = 0;
export const LATE_CLIENT = 1;
export const LATE_SERVER = 2;

/**
 * LATE_CLIENT or LATE_SERVER: that side went quiet past its timeout while we waited on it.
 * LATE_NONE: nobody is; exchange.deadline is set to the next look.
 */
export function whoIsLate(x: HttpExchange, client: ClientSocket, up: Upstream | null, now: number): number {
  const clientMs = x.frontend.config.timeouts.clientMs;
  const serverMs = x.backend!.config.timeouts.serverMs;
  const toClient = client.writableLength > 0;
  const toServer = up !== null && up.socket.writableLength > 0;
  let next = now + Math.min(clientMs, serverMs);
  if (toClient || (!x.reqDone && !toServer)) {
    const due = x.clientActive + clientMs;
    if (due <= now) return LATE_CLIENT;
    if (due < next) next = due;
  }
  if (up !== null && !x.resDone && !toClient && (x.reqDone || toServer)) {
    const due = x.serverActive + serverMs;
    if (due <= now) return LATE_SERVER;
    if (due < next) next = due;
  }
  x.deadline = next;
  return LATE_NONE;
}
