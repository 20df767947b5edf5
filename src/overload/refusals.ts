import type { Counters } from '../model/counters.js';

// The limits that may refuse a request, by the name the 503's `x-switchyard-limit` header and
// the docs use (the config key that tripped). One place maps each to its counter.

/** Every server that may take it is at its maxconn, and there is no queue. */
export const LIMIT_MAXCONN = 'maxconn';
/** The queue is full (`max_queue`, or `circuit_breaker.max_pending` when it is the smaller). */
export const LIMIT_MAX_QUEUE = 'max_queue';
export const LIMIT_MAX_PENDING = 'max_pending';
/** Waited `timeouts.queue` without getting a server. */
export const LIMIT_TIMEOUT_QUEUE = 'timeout_queue';
export const LIMIT_MAX_REQUESTS = 'max_requests';
export const LIMIT_MAX_CONNECTIONS = 'max_connections';
export const LIMIT_MAX_RETRIES = 'max_retries';
export const LIMIT_RETRY_BUDGET = 'retry_budget';
/** Frontend `rate_limit` (429): the request rate of a client address, its concurrent connections. */
export const LIMIT_RATE_REQUESTS = 'rate_limit.requests_per_second';
export const LIMIT_RATE_CONNECTIONS = 'rate_limit.connections';
/** Not a limit: no server is available at all (the plain 503). */
export const NO_SERVER = '';

/** Count one refusal on a backend's counters. */
export function countRefusal(c: Counters, limit: string): void {
  switch (limit) {
    case LIMIT_MAXCONN:
      c.overMaxconn++;
      return;
    case LIMIT_MAX_QUEUE:
    case LIMIT_MAX_PENDING:
      c.overQueue++;
      return;
    case LIMIT_TIMEOUT_QUEUE:
      c.overQueueTimeout++;
      return;
    case LIMIT_MAX_REQUESTS:
      c.overMaxRequests++;
      return;
    case LIMIT_MAX_CONNECTIONS:
      c.overMaxConnections++;
      return;
    case LIMIT_MAX_RETRIES:
      c.overMaxRetries++;
      return;
    case LIMIT_RETRY_BUDGET:
      c.overRetryBudget++;
      return;
    default:
      return;
  }
}

/** Refusals by limit, for stats (JSON, metrics, the page): [limit name, count]. */
export function refusalCounts(c: Counters): [string, number][] {
  return [
    [LIMIT_MAXCONN, c.overMaxconn],
    [LIMIT_MAX_QUEUE, c.overQueue],
    [LIMIT_TIMEOUT_QUEUE, c.overQueueTimeout],
    [LIMIT_MAX_REQUESTS, c.overMaxRequests],
    [LIMIT_MAX_CONNECTIONS, c.overMaxConnections],
    [LIMIT_MAX_RETRIES, c.overMaxRetries],
    [LIMIT_RETRY_BUDGET, c.overRetryBudget],
  ];
}
