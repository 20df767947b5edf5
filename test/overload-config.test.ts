// Overload keys in the config file: normalised values and defaults, and bad values named by
// their key path (docs/overload.md, docs/config.md).
import t from 'tap';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';

const config = (backend: string, frontend = '') => `
frontends:
  web:
    bind: 127.0.0.1:0
    backend: api
${frontend
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
backends:
  api:
    servers: [ { address: 127.0.0.1:9001, maxconn: 10 } ]
${backend
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
`;

function issues(text: string): string[] {
  try {
    parseConfig(text, null);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

t.test('defaults: everything off, timeouts.queue follows timeouts.connect', async (t) => {
  const c = parseConfig(config('timeouts: { connect: 3s }'), null);
  const be = c.backends[0]!;
  t.equal(be.maxQueue, 0, 'no queue');
  t.equal(be.queueTimeoutMs, 3000, 'HAProxy: timeout queue defaults to timeout connect');
  t.equal(be.redispatch, true);
  t.equal(be.slowStart, null);
  t.equal(be.circuitBreaker, null);
  t.equal(c.frontends[0]!.rateLimit, null);
});

t.test('the contract keys, normalised', async (t) => {
  const c = parseConfig(
    config(
      'max_queue: 1000\ntimeouts: { queue: 5s }\nslow_start: 30s\nredispatch: false\n' +
        'circuit_breaker: { max_connections: 1000, max_pending: 500, max_requests: 800, max_retries: 3, retry_budget: { percent: 25 } }',
      'rate_limit: { requests_per_second: 100, burst: 200, connections: 50 }',
    ),
    null,
  );
  const be = c.backends[0]!;
  t.equal(be.maxQueue, 1000);
  t.equal(be.queueTimeoutMs, 5000);
  t.equal(be.redispatch, false);
  t.same(be.slowStart, { durationMs: 30_000, minWeightPercent: 10 });
  t.same(be.circuitBreaker, { maxConnections: 1000, maxPending: 500, maxRequests: 800, maxRetries: 3, retryBudget: { percent: 25, minRetryConcurrency: 3 } });
  t.same(c.frontends[0]!.rateLimit, { requestsPerSecond: 100, burst: 200, connections: 50, tableSize: 100_000 });

  const long = parseConfig(
    config('slow_start: { duration: 1m, min_weight_percent: 25 }\ncircuit_breaker: { max_requests: 5 }', 'rate_limit: { requests_per_second: 2.5 }'),
    null,
  );
  t.same(long.backends[0]!.slowStart, { durationMs: 60_000, minWeightPercent: 25 });
  t.same(
    long.backends[0]!.circuitBreaker,
    { maxConnections: 0, maxPending: 0, maxRequests: 5, maxRetries: -1, retryBudget: null },
    'absent thresholds are not applied',
  );
  t.same(long.frontends[0]!.rateLimit, { requestsPerSecond: 2.5, burst: 3, connections: 0, tableSize: 100_000 }, 'burst defaults to one second of requests');
});

t.test('bad values are named by their key path', async (t) => {
  t.same(issues(config('max_queue: -1')), ['backends.api.max_queue: must be at least 0']);
  t.same(issues(config('max_queue: lots')), ['backends.api.max_queue: expected a number, got "lots"']);
  t.match(issues(config('timeouts: { queue: soon }')), [/^backends\.api\.timeouts\.queue: /]);
  t.match(issues(config('slow_start: quickly')), [/^backends\.api\.slow_start: expected a duration/]);
  t.match(issues(config('slow_start: { duration: 10s, min_weight_percent: 150 }')), [/^backends\.api\.slow_start/]);
  t.same(issues(config('circuit_breaker: { max_requests: 0 }')), ['backends.api.circuit_breaker.max_requests: must be at least 1']);
  t.match(issues(config('circuit_breaker: { max_request: 10 }')), [
    /^backends\.api\.circuit_breaker\.max_request: unknown key "max_request" \(did you mean "max_requests"\?\)/,
  ]);
  t.same(issues(config('circuit_breaker: { retry_budget: { percent: 101 } }')), ['backends.api.circuit_breaker.retry_budget.percent: must be at most 100']);
  t.same(issues(config('redispatch: sometimes')), ['backends.api.redispatch: expected true or false, got "sometimes"']);
  t.same(issues(config('', 'rate_limit: { requests_per_second: 0 }')), ['frontends.web.rate_limit.requests_per_second: expected a number greater than 0']);
  t.same(issues(config('', 'rate_limit: { burst: 10 }')), [
    'frontends.web.rate_limit: expected requests_per_second and/or connections',
    'frontends.web.rate_limit.burst: a burst needs requests_per_second',
  ]);
  t.same(issues(config('', 'rate_limit: { connections: 1.5 }')), ['frontends.web.rate_limit.connections: expected an integer, got 1.5']);
});
