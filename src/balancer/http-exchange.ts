import type { Backend } from '../model/backend.js';
import type { Frontend } from '../model/frontend.js';
import type { RequestView } from '../routing/request-view.js';

// One client connection in HTTP mode is three parts that call one way, each owning one side:
//   http-session.ts      the client side, on top: the client socket, request heads parsed with
//                        our own strict HTTP/1.1 framing, the rewritten request, pipelining,
//                        answers of our own (400, 408, 429, 502/503/504, redirects), timeouts,
//                        the access log, and how an exchange ends (client-input.ts carries
//                        request bodies on and holds pipelined bytes for it);
//   http-server-side.ts  the server side, below it: the server picked for a request, a pooled
//                        or a new connection, connect failures and retries (server-connect.ts,
//                        shared with TCP), the request bytes kept for a re-send; it reports
//                        back through the narrow ExchangeEnds interface, never by calling up
//                        into a class it imports;
//   http-response.ts     under the server side: the response head parsed and rewritten, its
//                        body relayed to the client with backpressure, a 101 into a tunnel; it
//                        returns what happened (RELAY_*) and the server side acts on it.
// This file is the record they share: where the connection is and what its current exchange
// is, one object per connection reused for each request (fields, no logic). Each part writes
// the fields of its own side and reads the rest.
// One request is in flight at a time; pipelined requests wait in `pending` (RFC 9112 §9.3.2).
// Hot path rules: socket events go to module-level functions; state lives in fields declared
// in constructors (fixed object shapes); canned responses are prebuilt Buffers.

// Where the connection is (`phase`).
/** Waiting for (the rest of) a request head. */
export const PHASE_HEAD = 0;
/** Request head forwarded (or held while connecting); request body and/or response under way. */
export const PHASE_EXCHANGE = 1;
/** 101 Switching Protocols: bytes both ways. */
export const PHASE_TUNNEL = 2;
/** Closing: ignore further input. */
export const PHASE_CLOSED = 3;

// How a message body is delimited (`reqBody`, the relay's `body`).
export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
/** Response body delimited by the server closing the connection. */
export const BODY_CLOSE = 3;

/** Methods safe to send again after a connection dropped without a response (RFC 9110 §9.2.2). */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * Request body bytes kept for a re-send after they went to a server (`retry_on` beyond
 * conn-failure, and the keep-alive race): a bigger body is not sent twice. HAProxy's bound is
 * its buffer size (`tune.bufsize`, 16 KiB); one of our largest reads is kept here.
 */
export const MAX_REPLAY_BODY = 65536;

/** What every part reads from the listener that accepted the connection. */
export interface ListenerState {
  /** The current config generation's frontend (a reload assigns a new one). */
  readonly frontend: Frontend;
  /** True once a graceful stop began: finish the current exchange, then close. */
  readonly stopping: boolean;
}

export class HttpExchange {
  phase = PHASE_HEAD;
  /** When the sweeper looks at this connection next (ms since epoch, 0: never; sweeper.ts). */
  deadline = 0;
  /** The frontend generation the current request started under. */
  frontend: Frontend;
  /** The backend of the current request; null when answered here (redirect, route answer, 429). */
  backend: Backend | null = null;
  /** The request view when the current request was routed; null on a frontend with nothing to decide. */
  routed: RequestView | null = null;
  method = '';
  /** The request target, kept only when there is an access log (a string per request). */
  target = '';
  /** The client's HTTP minor version: 1xx and keep-alive lines depend on it. */
  clientMinor = 1;
  isHeadRequest = false;
  /** An Upgrade request: a 101 from the server turns the connection into a tunnel. */
  wantsTunnel = false;
  /** The client may keep the connection after this exchange. */
  keepAlive = true;
  reqBody = BODY_NONE;
  /** BODY_LENGTH: request body bytes still to forward. */
  reqRemaining = 0;
  /** The whole request went to the server (or was consumed). */
  reqDone = false;
  /** The client got the first byte of the response: no answer of ours, no re-send any more. */
  resStarted = false;
  resDone = false;
  /** The server connection may be pooled after this exchange. */
  upstreamReusable = false;
  start = 0;
  connectedAt = 0;
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** The sticky cookie of this exchange's backend ('' when cookie stickiness is off). */
  stickyCookieName = '';
  /**
   * Inactivity clocks (coarseNow): the last byte from or to the client, and the last byte sent
   * to or received from the server. Timeouts blame the side we were waiting on (http-timeouts.ts).
   */
  clientActive = 0;
  serverActive = 0;
  /** Unconsumed client bytes: a partial head, or pipelined requests waiting their turn. */
  pending: Buffer | null = null;

  constructor(readonly listener: ListenerState) {
    this.frontend = listener.frontend;
  }
}
