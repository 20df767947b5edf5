import t from 'tap';
import { formatDuration, parseDuration } from '../src/config/duration.js';
import { substituteEnv } from '../src/config/env.js';
import { parseConfig } from '../src/config/load.js';
import { parseHostPort } from '../src/config/schema.js';
import { ConfigError } from '../src/errors.js';

t.test('durations', async (t) => {
  const ok: [unknown, number][] = [
    ['250ms', 250],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1.5s', 1500],
    ['0.5m', 30_000],
    [' 2s ', 2000],
    ['100', 100],
    [100, 100],
    [0, 0],
    ['0s', 0],
    ['10 s', 10_000],
  ];
  for (const [input, ms] of ok) t.equal(parseDuration(input), ms, JSON.stringify(input));
  for (const bad of ['', 's', '10 seconds', '-1s', -5, '1e3s', '10S', 'ten', NaN, Infinity, null, true, [], {}]) {
    t.equal(parseDuration(bad), null, `rejects ${JSON.stringify(bad)}`);
  }
  t.equal(formatDuration(1500), '1500ms');
  t.equal(formatDuration(60_000), '1m');
  t.equal(formatDuration(2000), '2s');
  t.equal(formatDuration(0), '0ms');
});

t.test('host:port', async (t) => {
  t.same(parseHostPort('127.0.0.1:80', false), { host: '127.0.0.1', port: 80 });
  t.same(parseHostPort('api.internal:8080', false), { host: 'api.internal', port: 8080 });
  t.same(parseHostPort('[::1]:80', false), { host: '::1', port: 80 });
  t.same(parseHostPort('[fe80::1%eth0]:80', false), { host: 'fe80::1%eth0', port: 80 });
  t.same(parseHostPort(':80', true), { host: '0.0.0.0', port: 80 });
  t.same(parseHostPort('80', true), { host: '0.0.0.0', port: 80 });
  t.same(parseHostPort(80, true), { host: '0.0.0.0', port: 80 });
  t.same(parseHostPort('127.0.0.1:0', true), { host: '127.0.0.1', port: 0 });
  for (const bad of [':80', '80', 80, '127.0.0.1:0', 'host', 'host:', ':', 'a b:80', '127.0.0.1:65536', '::1:80', '[]:80', 'h:8x']) {
    t.type(parseHostPort(bad, false), 'string', `server rejects ${JSON.stringify(bad)}`);
  }
  t.type(parseHostPort('0.0.0.0:65536', true), 'string');
  t.type(parseHostPort(-1, true), 'string');
});

t.test('substituteEnv', async (t) => {
  const env = { A: 'alpha', EMPTY: '', PORT: '8080' };
  t.same(substituteEnv('${A}', env), { value: 'alpha', missing: [], malformed: [] });
  t.same(substituteEnv('x-${A}-${PORT}', env).value, 'x-alpha-8080');
  t.same(substituteEnv('${NOPE:-fallback}', env).value, 'fallback');
  t.same(substituteEnv('${EMPTY:-fallback}', env).value, 'fallback', ':- also covers set-but-empty, as in the shell');
  t.same(substituteEnv('${EMPTY}', env).value, '');
  t.same(substituteEnv('${A:-fallback}', env).value, 'alpha');
  t.same(substituteEnv('${NOPE:-}', env).value, '');
  t.same(substituteEnv('$${A} costs $5', env).value, '${A} costs $5', '$${ escapes');
  t.same(substituteEnv('${NOPE}', env), { value: '', missing: ['NOPE'], malformed: [] });
  t.same(substituteEnv('${1X}', env).malformed, ['${1X}']);
  t.same(substituteEnv('${A', env).malformed, ['${A']);
});

t.test('env substitution in a config file', async (t) => {
  const env = process.env;
  env.SY_TEST_PORT = '18080';
  env.SY_TEST_HOST = '127.0.0.9';
  env.SY_TEST_PASSWORD = 'p@ss: "word" # not a comment';
  env.SY_TEST_WEIGHT = '7';
  t.teardown(() => {
    for (const k of ['SY_TEST_PORT', 'SY_TEST_HOST', 'SY_TEST_PASSWORD', 'SY_TEST_WEIGHT']) delete env[k];
  });
  const yaml = `
stats:
  auth: { username: admin, password: \${SY_TEST_PASSWORD} }
  bind: "\${SY_TEST_HOST}:\${SY_TEST_STATS_PORT:-19099}"
frontends:
  web:
    bind: \${SY_TEST_HOST}:\${SY_TEST_PORT}
    backend: api
backends:
  api:
    servers:
      - address: 127.0.0.1:9001
        weight: \${SY_TEST_WEIGHT}
        name: "\${SY_TEST_WEIGHT}"
`;
  const c = parseConfig(yaml, null);
  t.equal(c.stats.auth?.password, 'p@ss: "word" # not a comment', 'a value is never parsed as YAML');
  t.same(c.stats.bind, { host: '127.0.0.9', port: 19099 }, 'default used');
  t.same(c.frontends[0]!.bind, { host: '127.0.0.9', port: 18080 });
  t.equal(c.backends[0]!.servers[0]!.weight, 7, 'an unquoted reference reads as a number');
  t.equal(c.backends[0]!.servers[0]!.name, '7', 'a quoted reference stays a string');

  delete env.SY_TEST_PASSWORD;
  delete env.SY_TEST_PORT;
  const error = (() => {
    try {
      parseConfig(yaml + '    retries: lots\n', 'env.yaml');
    } catch (e) {
      return e as ConfigError;
    }
    return null;
  })();
  t.type(error, ConfigError);
  t.same(
    error!.issues.map((i) => [i.path, i.message, i.line]),
    [
      ['stats.auth.password', 'environment variable SY_TEST_PASSWORD is not set (use ${SY_TEST_PASSWORD:-default} for a default)', 3],
      ['frontends.web.bind', 'environment variable SY_TEST_PORT is not set (use ${SY_TEST_PORT:-default} for a default)', 7],
      ['backends.api.retries', 'expected a number, got "lots"', 15],
    ],
    'unset variables are reported with the other errors, each at its key path',
  );
});

t.test('YAML niceties: anchors and merge keys', async (t) => {
  const c = parseConfig(
    `
frontends:
  web: { bind: 127.0.0.1:0, backend: a }
backends:
  a: &base
    health: { type: http, path: /ping, interval: 3s }
    servers: [{ address: 127.0.0.1:9001 }]
  b:
    <<: *base
    retries: 0
`,
    null,
  );
  t.equal(c.backends[1]!.health.path, '/ping');
  t.equal(c.backends[1]!.retries, 0);
  t.equal(c.backends[1]!.servers[0]!.address.port, 9001);
});

t.test('references inside flow mappings, defaults with commas and braces-free text', async (t) => {
  delete process.env.SY_TEST_UNSET;
  const c = parseConfig(
    `
stats: { bind: 127.0.0.1:0, auth: { username: \${SY_TEST_UNSET:-admin}, password: \${SY_TEST_UNSET:-a, b and c} } }
frontends: { web: { bind: "127.0.0.1:\${SY_TEST_UNSET:-0}", backend: api } }
backends: { api: { servers: [{ address: 127.0.0.1:9001 }], sticky: , discovery: } }
`,
    null,
  );
  t.same(c.stats.auth, { username: 'admin', password: 'a, b and c' });
  t.equal(c.frontends[0]!.bind.port, 0);
  t.equal(c.backends[0]!.sticky, null, 'an empty sticky means none');
  t.equal(c.backends[0]!.discovery, null);
  t.throws(() => parseConfig('frontends: { web: { bind: 1, backend: api } }\nbackends: { api: { servers: [], discovery: } }\n', null), {
    name: 'ConfigError',
    issues: [{ path: 'backends.api.servers', message: 'a backend needs servers or discovery', line: 2 }],
  });
  t.throws(() => parseConfig('frontends: { web: { bind: 1, backend: "${SY_TEST_UNSET" } }\nbackends: {}\n', null), {
    name: 'ConfigError',
    issues: [{ path: 'frontends.web.backend', message: 'invalid reference ${SY_TEST_UNSET: expected ${NAME} or ${NAME:-default}', line: 1 }],
  });
});

t.test('limits.obs_fold: reject by default, unfold on request, anything else an error with its path', async (t) => {
  const yaml = (limits: string) =>
    `frontends:\n  web: { mode: http, bind: 127.0.0.1:18080, backend: api${limits} }\nbackends:\n  api: { mode: http, servers: [ { address: 127.0.0.1:9001 } ] }\n`;
  t.equal(parseConfig(yaml(''), null).frontends[0]!.limits.obsFold, 'reject');
  t.equal(parseConfig(yaml(', limits: { obs_fold: unfold }'), null).frontends[0]!.limits.obsFold, 'unfold');
  const error = (() => {
    try {
      parseConfig(yaml(', limits: { obs_fold: fold }'), 'f.yaml');
    } catch (e) {
      return e as ConfigError;
    }
    return null;
  })();
  t.ok(error instanceof ConfigError, 'rejected');
  t.equal(error?.issues[0]?.path, 'frontends.web.limits.obs_fold');
});
