import type { Backend } from '../model/backend.js';
import type { Server } from '../model/server.js';
import type { BalanceContext } from '../strategies/sticky.js';
import type { QueueWaiter } from '../overload/wait-list.js';
import { countRefusal, LIMIT_MAX_PENDING, LIMIT_MAX_QUEUE, LIMIT_TIMEOUT_QUEUE, NO_SERVER } from '../overload/refusals.js';
import { describeError, type Upstream } from './upstream.js';

// Getting a server for a client, the one implementation both modes use (tcp-session.ts per
// connection, http-server-side.ts per request): the backend's queue when every server is full,
// a connect that fails or times out, and a retry on another server within `retries` and the
// circuit breaker, with the counters, passive health and the connect-failed flag they move.
// What a mode does with the outcome (a 502/503 answer, a closed connection) stays with it.
// Plain functions over the session's own fields: nothing is allocated per attempt.

/** The fields a session keeps for its server attempt (it also waits in the queue with them). */
export interface ServerAttempt extends QueueWaiter {
  readonly ctx: BalanceContext;
  /** The server picked for this attempt, counted open on its backend (backend.opened). */
  server: Server | null;
  /** Retries left for this request (TCP: connection), from the backend's `retries`. */
  retriesLeft: number;
  /** Counts as an open retry of its backend (circuit breaker: max_retries, retry_budget). */
  retrying: boolean;
}

/** waitOrRefuse: the attempt waits in the backend's queue. */
export const QUEUED = 'queued';
/** retryElsewhere: no retry left. */
export const NO_RETRY_LEFT = 'no retry left';

/**
 * No server may take the attempt now (backend.pick returned null). It waits in the backend's
 * queue when `mayWait` and the limit that refused it allows waiting: QUEUED (its deadline is the
 * caller's: now + overload.queueTimeoutMs). Else the limit that refuses it, counted (NO_SERVER
 * when no server is available at all); refusalWhy() says it in words.
 */
export function waitOrRefuse(a: ServerAttempt, backend: Backend, now: number, mayWait: boolean): string {
  const limit = backend.refusal;
  const overload = backend.overload;
  if (mayWait && overload.canWait(limit)) {
    if (overload.enqueue(a, backend.refusedServer, now)) return QUEUED;
    return overload.capacityLimit; // counted by enqueue
  }
  countRefusal(backend.counters, limit);
  return limit;
}

/** The reason for a refusal (waitOrRefuse, or a queue left without a server) in logs and errors. */
export function refusalWhy(limit: string): string {
  switch (limit) {
    case NO_SERVER:
      return 'no server available';
    case LIMIT_TIMEOUT_QUEUE:
      return 'queue timeout';
    case LIMIT_MAX_QUEUE:
    case LIMIT_MAX_PENDING:
      return `queue full (${limit})`;
    default:
      return `limit reached: ${limit}`;
  }
}

/**
 * A connect to `server` failed (refused, reset, timed out): counted against it (`econ`, passive
 * health) and, when nothing else watches its health, flagged on it for the stats page. Returns
 * the reason for the log and the error answer.
 */
export function connectFailed(backend: Backend, server: Server, error: Error | null): string {
  server.counters.econ++;
  backend.counters.econ++;
  backend.observer?.failure(server, 'connect');
  if (backend.config.health.type === 'none' && backend.observer === null && !server.connectFailed) {
    server.connectFailed = true;
    server.noteChange(`connect failed: ${describeError(error)}`);
  }
  return `connect to ${server.address} failed: ${describeError(error)}`;
}

/** A connect to `server` succeeded: its connect time, passive health, the failed flag cleared. */
export function connectSucceeded(backend: Backend, server: Server, up: Upstream, now: number): void {
  server.counters.observeConnect(now - up.connectStarted);
  backend.observer?.success(server);
  if (server.connectFailed) {
    server.connectFailed = false;
    server.noteChange('connection succeeded');
  }
}

/**
 * `failed` did not serve the attempt: let go of it and pick another server, within `retries`
 * and the circuit breaker (counted `wretr`, and `wredis` when the pick is another server). Returns
 * the server to use (opened on the backend by the caller), or why there is none: NO_RETRY_LEFT,
 * the breaker's limit (max_retries, retry_budget), or NO_SERVER when the pick found none
 * (backend.refusal says which limit).
 */
export function retryElsewhere(a: ServerAttempt, backend: Backend, failed: Server): Server | string {
  backend.closed(failed);
  a.server = null;
  if (a.retriesLeft <= 0) return NO_RETRY_LEFT;
  if (!a.retrying && backend.overload.limitsRetries) {
    const limit = backend.overload.startRetry();
    if (limit !== NO_SERVER) return limit;
    a.retrying = true;
  }
  a.retriesLeft--;
  failed.counters.wretr++;
  backend.counters.wretr++;
  a.ctx.avoid = failed;
  const server = backend.pick(a.ctx);
  if (server === null) return NO_SERVER;
  if (server !== failed) backend.counters.wredis++;
  return server;
}

/** The attempt no longer counts as an open retry of its backend (circuit breaker). */
export function endRetry(a: ServerAttempt, backend: Backend): void {
  if (a.retrying) {
    a.retrying = false;
    backend.overload.retries--;
  }
}

/** Let go of the server (close its connection first): out of the queue, retry and slot released. */
export function releaseAttempt(a: ServerAttempt, backend: Backend): void {
  if (a.waitList !== null) backend.overload.leave(a);
  endRetry(a, backend);
  const server = a.server;
  if (server !== null) {
    a.server = null;
    backend.closed(server);
  }
}

/**
 * A connect that outlived `timeouts.connect`: destroyed with an ETIMEDOUT error, so that it
 * ends the way a refused connection does (connectFailed, then a retry on another server).
 * False when there is no connect under way.
 */
export function abortConnectOnTimeout(up: Upstream | null): boolean {
  if (up === null || up.connected) return false;
  up.lastError = Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' });
  up.socket.destroy();
  return true;
}
