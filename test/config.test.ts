import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfigFile, normalizeConfig, parseConfig } from '../src/config/load.js';
import { demoConfig } from '../src/config/demo.js';
import { summarizeConfig } from '../src/config/summary.js';
import { ConfigError, SwitchyardError, type ConfigIssue } from '../src/errors.js';

type Test = Pick<typeof t, 'type' | 'fail'>;

const FIXTURES = resolve(import.meta.dirname, 'fixtures/config');
const fixture = (name: string) => resolve(FIXTURES, name);

/** The issues a config text produces (fails the test when it parses). */
function issuesOf(t: Test, text: string, file: string | null = null): ConfigIssue[] {
  try {
    parseConfig(text, file);
  } catch (error) {
    t.type(error, ConfigError);
    return [...(error as ConfigError).issues];
  }
  t.fail('expected a ConfigError');
  return [];
}

const issueLines = (issues: readonly ConfigIssue[]) => issues.map((i) => `${i.path}: ${i.message}${i.line ? ` @${i.line}` : ''}`);

// A minimal valid config, to which each error case adds one mistake.
const base = (extra = '') => `
frontends:
  web: { bind: 127.0.0.1:0, backend: api }
backends:
  api:
    servers:
      - address: 127.0.0.1:9001
${extra}`;

t.test('the contract example parses with the right normalised values', async (t) => {
  process.env.SWITCHYARD_ADMIN_PASSWORD = 'hunter2';
  process.env.CONSUL_HTTP_TOKEN = 'consul-token';
  t.teardown(() => {
    delete process.env.SWITCHYARD_ADMIN_PASSWORD;
    delete process.env.CONSUL_HTTP_TOKEN;
  });
  const config = await loadConfigFile(fixture('contract.yaml'));
  t.equal(config.source, fixture('contract.yaml'));
  t.same(config.stats, {
    bind: { host: '0.0.0.0', port: 11099 },
    auth: { username: 'admin', password: 'hunter2' },
    read: 'public',
    allowedHosts: [],
    sockets: [],
  });
  t.equal(config.consul?.address, 'http://127.0.0.1:8500');
  t.equal(config.consul?.token, 'consul-token');
  t.equal(config.consul?.waitMs, 30_000);
  t.match(config.consul?.register, { name: 'switchyard', address: '10.0.0.2', port: 11099, tags: [], checkIntervalMs: 10_000 });
  t.match(config.consul?.register?.id, /^switchyard-/);
  t.equal(config.workers, 1);
  t.equal(config.shutdownTimeoutMs, 10_000);
  t.same(config.logging, { level: 'info', access: { enabled: false, sample: 1 } });

  t.equal(config.frontends.length, 1);
  t.same(config.frontends[0], {
    name: 'files',
    mode: 'http',
    bind: { host: '0.0.0.0', port: 11101 },
    backend: 'mcp-files',
    timeouts: { clientMs: 30_000, httpRequestMs: 10_000, keepAliveMs: 60_000, handshakeMs: 10_000 },
    maxconn: 0,
    maxconnPerSource: 0,
    limits: { maxRequestLine: 8192, maxHeaderBytes: 32768, maxHeaders: 100, obsFold: 'reject' },
    routing: { routes: [], requestHeaders: null, responseHeaders: null, requestId: null },
    rateLimit: null,
    tls: null,
    redirectHttps: null,
    sniRoutes: null,
    trustedProxies: [],
    acceptProxy: false,
    trustedSources: [],
  });

  t.equal(config.backends.length, 1);
  const be = config.backends[0]!;
  t.equal(be.name, 'mcp-files');
  t.equal(be.mode, 'http');
  t.equal(be.strategy, 'round-robin');
  t.same(be.strategyOptions, {});
  t.same(be.sticky, { type: 'cookie', name: 'SY_SERVER' });
  t.same(be.health, {
    type: 'http',
    method: 'GET',
    path: '/health',
    host: null,
    expect: [[200, 200]],
    body: null,
    intervalMs: 10_000,
    fastIntervalMs: 10_000,
    downIntervalMs: 10_000,
    timeoutMs: 2_000,
    rise: 2,
    fall: 3,
    onMarkedDown: 'none',
    sendProxy: 'auto',
  });
  t.same(be.passive, { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectedPercent: 50 });
  t.same(be.timeouts, { connectMs: 5_000, serverMs: 30_000, serverKeepAliveMs: 4_000 });
  t.equal(be.retries, 2);
  t.same(be.servers, [
    { name: 's1', address: { host: '127.0.0.1', port: 9001 }, weight: 1, backup: false, maxconn: 0, sendProxy: null },
    { name: '127.0.0.1:9002', address: { host: '127.0.0.1', port: 9002 }, weight: 2, backup: true, maxconn: 0, sendProxy: null },
  ]);
  t.same(be.discovery, { consul: { service: 'mcp-files', tag: 'v1', passing: true, dc: 'dc1' } });
  t.equal(summarizeConfig(config), 'ok: 1 frontend (http 1, tcp 0), 1 backend, 2 servers, 1 backend from consul, stats on 0.0.0.0:11099');
});

t.test('the output is deep-frozen', async (t) => {
  const config = parseConfig(base(), null);
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.frontends));
  t.ok(Object.isFrozen(config.frontends[0]!.bind));
  t.ok(Object.isFrozen(config.backends[0]!.servers[0]!.address));
  t.ok(Object.isFrozen(config.backends[0]!.health.expect[0]));
  t.throws(() => {
    (config.backends[0]!.servers as unknown as unknown[]).push({});
  });
});

t.test('defaults for a minimal config', async (t) => {
  const config = parseConfig(base(), 'relative/switchyard.yaml');
  t.equal(config.source, resolve('relative/switchyard.yaml'));
  t.same(config.stats, { bind: { host: '0.0.0.0', port: 11099 }, auth: null, read: 'public', allowedHosts: [], sockets: [] });
  t.equal(config.consul, null);
  const be = config.backends[0]!;
  t.equal(be.mode, 'http');
  t.equal(be.sticky, null);
  t.equal(be.health.type, 'none', 'no health block: no active checks');
  t.same(be.health.expect, [[200, 399]]);
  t.equal(be.discovery, null);
  t.equal(be.retries, 2);
  t.equal(config.frontends[0]!.mode, 'http');
});

t.test('JSON input, bind forms, IPv6, user strategy resolved against the config folder', async (t) => {
  const config = await loadConfigFile(fixture('contract.json'));
  t.equal(config.workers, 'auto');
  t.equal(config.stats.read, 'private');
  const [web, db] = config.frontends;
  t.same(web!.bind, { host: '0.0.0.0', port: 8080 }, ':port means all addresses');
  t.equal(web!.timeouts.clientMs, 60_000);
  t.same(db!.bind, { host: '::1', port: 5432 });
  const [api, pg] = config.backends;
  t.equal(api!.strategy, fixture('strategies/first.js'), 'stored absolute');
  t.same(api!.strategyOptions, { x: 1 });
  t.equal(api!.servers[1]!.weight, 0);
  t.same(pg!.sticky, { type: 'source', ttlMs: 30 * 60_000, size: 100_000 });
  t.equal(pg!.health.type, 'tcp', 'a health block without type is a tcp check');
  t.same(pg!.servers[0], { name: 'primary', address: { host: '::1', port: 15432 }, weight: 1, backup: false, maxconn: 10, sendProxy: null });
  t.equal(summarizeConfig(config), 'ok: 2 frontends (http 1, tcp 1), 2 backends, 3 servers, stats on 127.0.0.1:11099');

  const bare = parseConfig(base().replace('127.0.0.1:0', '8081'), null);
  t.same(bare.frontends[0]!.bind, { host: '0.0.0.0', port: 8081 }, 'a bare port means all addresses');
});

t.test('every error in a file at once, each with its path and line', async (t) => {
  const error = await loadConfigFile(fixture('errors.yaml')).then(
    () => null,
    (e: unknown) => e,
  );
  t.type(error, ConfigError);
  const issues = (error as ConfigError).issues;
  t.same(issueLines(issues), [
    'stats.read: read: private needs stats.auth (username and password) @3',
    'frontends.files.backend: unknown backend "nope" @8',
    'frontends.files.timeouts.client: expected a duration like 250ms, 10s, 5m @9',
    'frontends.raw.mode: mode tcp does not match backend "api" (mode http) @11',
    'frontends.raw.bind: 0.0.0.0:11101 clashes with frontend "files" on 0.0.0.0:11101 @12',
    `backends.api.strategy: strategy module not found: ${fixture('strategies/missing.js')} @16`,
    'backends.api.healthcheck: unknown key "healthcheck" (known keys: mode, strategy, strategy_options, sticky, health, passive, timeouts, retries, retry_on, servers, discovery, request_headers, response_headers, max_queue, redispatch, slow_start, circuit_breaker, tls, send_proxy, check_send_proxy) @17',
    'backends.api.servers[1].address: expected host:port @20',
    'backends.api.servers[2].weight: must be at most 256 @21',
    'backends.api.servers[2].name: duplicate server name "s1" (also servers[0]) @21',
  ]);
  t.equal((error as ConfigError).code, 'SY_ERR_CONFIG_INVALID');
  t.match((error as ConfigError).message, /backends\.api\.servers\[1\]\.address: expected host:port \(line 20\)/);
});

t.test('error shapes: one mistake each, exact path and line', async (t) => {
  const cases: [string, string, string][] = [
    // [yaml, path, message (substring)]
    [base('        extra: 1'), 'backends.api.servers[0].extra', 'unknown key "extra" (known keys: name, address, weight, backup, maxconn, send_proxy)'],
    [base('    extra: 1'), 'backends.api.extra', 'unknown key "extra" (known keys: mode, strategy, strategy_options'],
    [base().replace('backend: api', 'backend: api, bakend: x'), 'frontends.web.bakend', 'did you mean "backend"?'],
    [base('workers: 0'), 'workers', 'expected an integer of at least 1, or "auto"'],
    [base('workers: 2.5'), 'workers', 'expected an integer'],
    [base('shutdown_timeout: 10 seconds'), 'shutdown_timeout', 'expected a duration like 250ms, 10s, 5m'],
    [base('logging: { level: loud }'), 'logging.level', 'expected one of trace, debug, info'],
    [base('logging: { access: { sample: 0 } }'), 'logging.access.sample', 'greater than 0'],
    [base('logging: { access: { sample: 1.5 } }'), 'logging.access.sample', 'must be at most 1'],
    [base('stats: { bind: "localhost" }'), 'stats.bind', 'expected host:port'],
    [base('stats: { auth: { username: a } }'), 'stats.auth.password', 'required'],
    [base('consul: { address: "ftp://x" }'), 'consul.address', 'http:// or https://'],
    [base().replace('127.0.0.1:9001', '127.0.0.1:0'), 'backends.api.servers[0].address', 'port from 1 to 65535'],
    [base().replace('127.0.0.1:9001', '127.0.0.1:70000'), 'backends.api.servers[0].address', 'port from 1 to 65535'],
    [base().replace('127.0.0.1:9001', '::1:80'), 'backends.api.servers[0].address', 'brackets'],
    [base().replace('127.0.0.1:0', '127.0.0.1:99999'), 'frontends.web.bind', 'port from 0 to 65535'],
    [base().replace('web: { bind: 127.0.0.1:0, backend: api }', 'web: { backend: api }'), 'frontends.web.bind', 'required'],
    [base().replace('web: { bind: 127.0.0.1:0, backend: api }', 'web: { bind: 127.0.0.1:0 }'), 'frontends.web.backend', 'required'],
    [base().replace('backend: api', 'backend: nope'), 'frontends.web.backend', 'unknown backend "nope"'],
    [base().replace('backend: api', 'backend: api, mode: udp'), 'frontends.web.mode', 'expected http or tcp'],
    [base().replace('backend: api', 'backend: api, maxconn: -1'), 'frontends.web.maxconn', 'must be at least 0'],
    [base('    mode: tcp'), 'frontends.web.mode', 'does not match backend "api" (mode tcp)'],
    [base('    strategy: fastest'), 'backends.api.strategy', 'unknown strategy "fastest"'],
    [base('    strategy: ./strategies/first.txt'), 'backends.api.strategy', '.js, .mjs, .cjs or .ts'],
    [base('    retries: 11'), 'backends.api.retries', 'must be at most 10'],
    [base('    sticky: { type: magic }'), 'backends.api.sticky.type', 'expected { type: cookie } or { type: source }'],
    [base('    sticky: { type: cookie, ttl: 5m }'), 'backends.api.sticky.ttl', 'unknown key "ttl"'],
    [base('    sticky: { type: source, ttl: forever }'), 'backends.api.sticky.ttl', 'expected a duration'],
    [base('    mode: tcp\n    sticky: { type: cookie }').replace('backend: api', 'backend: api, mode: tcp'), 'backends.api.sticky', 'needs mode http'],
    [base('    health: { type: grpc }'), 'backends.api.health.type', 'expected one of tcp, http, none'],
    [base('    health: { expect: "2000" }'), 'backends.api.health.expect', 'a range ("200-399")'],
    [base('    health: { expect: "399-200" }'), 'backends.api.health.expect', 'a range ("200-399")'],
    [base('    health: { interval: 1s, timeout: 3s }'), 'backends.api.health.timeout', 'must not exceed interval (1s)'],
    [base('    health: { interval: 0 }'), 'backends.api.health.interval', 'must be greater than 0'],
    [base('    health: { rise: 0 }'), 'backends.api.health.rise', 'must be at least 1'],
    [base('    health: { path: health }'), 'backends.api.health.path', 'starting with /'],
    [base('    health: { on_marked_down: kill }'), 'backends.api.health.on_marked_down', 'expected none or shutdown_sessions'],
    [base('    passive: { base_ejection: 1m, max_ejection: 10s }'), 'backends.api.passive.max_ejection', 'must be at least base_ejection (1m)'],
    [base('    passive: { max_ejected_percent: 101 }'), 'backends.api.passive.max_ejected_percent', 'must be at most 100'],
    [base('    timeouts: { connect: -5s }'), 'backends.api.timeouts.connect', 'expected a duration'],
    [base('    discovery: { consul: { service: api } }'), 'backends.api.discovery', 'needs a top-level consul block'],
    [base('    discovery: { consul: { tag: v1 } }\nconsul: {}'), 'backends.api.discovery.consul.service', 'required'],
    [base('  empty: { mode: http }'), 'backends.empty.servers', 'a backend needs servers or discovery'],
    [base('    servers: 5').replace(/ {4}servers:\n {6}- address: 127.0.0.1:9001\n/, ''), 'backends.api.servers', 'expected a list, got 5'],
    [
      base().replace('- address: 127.0.0.1:9001', '- address: 127.0.0.1:9001\n      - { address: 127.0.0.1:9001, weight: 2 }'),
      'backends.api.servers[1].address',
      'duplicate server name "127.0.0.1:9001" (also servers[0])',
    ],
    [base().replace('- address: 127.0.0.1:9001', '- { name: "a b", address: 127.0.0.1:9001 }'), 'backends.api.servers[0].name', 'invalid server name'],
    [base('frontends2: {}'), 'frontends2', 'unknown key "frontends2" (did you mean "frontends"?)'],
    ['frontends: {}\nbackends: {}\n', 'frontends', 'at least one frontend is required'],
    ['backends: {}\n', 'frontends', 'required'],
  ];
  for (const [yaml, path, message] of cases) {
    const issues = issuesOf(t, yaml);
    const hit = issues.find((i) => i.path === path);
    t.ok(hit, `${path} reported (got: ${issueLines(issues).join(' | ')})`);
    t.ok(hit?.message.includes(message), `${path}: "${hit?.message}" includes "${message}"`);
    if (path !== 'frontends' || !yaml.startsWith('backends')) t.type(hit?.line, 'number', `${path} has a line`);
  }
});

t.test('line numbers point at the key', async (t) => {
  const yaml = [
    'frontends:', // 1
    '  web:', // 2
    '    bind: 127.0.0.1:0', // 3
    '    backend: api', // 4
    'backends:', // 5
    '  api:', // 6
    '    servers:', // 7
    '      - name: a', // 8
    '        address: x', // 9
    '      - name: b', // 10
    '        address: 127.0.0.1:1', // 11
    '        weight: heavy', // 12
  ].join('\n');
  t.same(issueLines(issuesOf(t, yaml)), [
    'backends.api.servers[0].address: expected host:port @9',
    'backends.api.servers[1].weight: expected a number, got "heavy" @12',
  ]);
});

t.test('two frontends may not share an address; wildcard overlaps; port 0 never clashes', async (t) => {
  const two = (a: string, b: string) => `
frontends:
  one: { bind: "${a}", backend: api }
  two: { bind: "${b}", backend: api }
backends:
  api: { servers: [{ address: 127.0.0.1:9001 }] }
`;
  t.same(issueLines(issuesOf(t, two('127.0.0.1:8080', '127.0.0.1:8080'))), [
    'frontends.two.bind: 127.0.0.1:8080 clashes with frontend "one" on 127.0.0.1:8080 @4',
  ]);
  t.same(issueLines(issuesOf(t, two('0.0.0.0:8080', '127.0.0.1:8080'))), ['frontends.two.bind: 127.0.0.1:8080 clashes with frontend "one" on 0.0.0.0:8080 @4']);
  t.same(issueLines(issuesOf(t, two('8080', '[::1]:8080'))), ['frontends.two.bind: [::1]:8080 clashes with frontend "one" on 0.0.0.0:8080 @4']);
  t.same(issueLines(issuesOf(t, two('127.0.0.1:11099', '127.0.0.1:8081'))), [
    'frontends.one.bind: 127.0.0.1:11099 clashes with the stats listener on 0.0.0.0:11099 @3',
  ]);
  t.doesNotThrow(() => parseConfig(two('127.0.0.1:8080', '127.0.0.2:8080'), null), 'different hosts');
  t.doesNotThrow(() => parseConfig(two('127.0.0.1:0', '127.0.0.1:0'), null), 'ephemeral ports');
});

t.test('strategy: built-ins by name; module paths must exist, resolved against the config folder', async (t) => {
  const withStrategy = (s: string) => base(`    strategy: ${s}`);
  for (const name of ['round-robin', 'least-connections', 'ip-hash', 'random']) {
    t.equal(parseConfig(withStrategy(name), null).backends[0]!.strategy, name, name);
  }
  const file = fixture('switchyard.yaml'); // need not exist: only its folder matters
  t.equal(parseConfig(withStrategy('./strategies/first.js'), file).backends[0]!.strategy, fixture('strategies/first.js'));
  t.equal(parseConfig(withStrategy(fixture('strategies/first.js')), null).backends[0]!.strategy, fixture('strategies/first.js'), 'absolute path');
  const missing = issuesOf(t, withStrategy('./strategies/nope.js'), file);
  t.same(issueLines(missing), [`backends.api.strategy: strategy module not found: ${fixture('strategies/nope.js')} @8`]);
  // Without a file, relative paths resolve against the cwd.
  t.match(issuesOf(t, withStrategy('./strategies/first.js'))[0]?.message, `not found: ${resolve('strategies/first.js')}`);
});

t.test('health: HAProxy-like derived defaults and expect forms', async (t) => {
  const health = (h: string) => parseConfig(base(`    health: ${h}`), null).backends[0]!.health;
  t.match(
    health('{ type: http, interval: 1s }'),
    { type: 'http', intervalMs: 1000, fastIntervalMs: 1000, downIntervalMs: 1000, timeoutMs: 1000 },
    'timeout capped at interval',
  );
  t.match(health('{ interval: 5s, fast_interval: 500ms, down_interval: 1m, timeout: 3s }'), {
    type: 'tcp',
    intervalMs: 5000,
    fastIntervalMs: 500,
    downIntervalMs: 60_000,
    timeoutMs: 3000,
  });
  t.equal(health('{ type: http, method: head }').method, 'HEAD');
  t.same(health('{ expect: 204 }').expect, [[204, 204]]);
  t.same(health('{ expect: [200, 204] }').expect, [
    [200, 200],
    [204, 204],
  ]);
  t.same(health('{ expect: "200-299" }').expect, [[200, 299]]);
  t.same(health('{ expect: [200, "300-302", 2xx] }').expect, [
    [200, 200],
    [300, 302],
    [200, 299],
  ]);
  t.match(health('{ type: http, host: example.com, body: ok, on_marked_down: shutdown_sessions }'), {
    host: 'example.com',
    body: 'ok',
    onMarkedDown: 'shutdown_sessions',
  });
  t.equal(health('').type, 'tcp', 'an empty health block is a tcp check');
  t.equal(health('{ type: none }').type, 'none');
});

t.test('other sections: consul, logging, stats, sticky, passive', async (t) => {
  const c = parseConfig(
    base(`
consul:
  address: https://consul.local:8501/
  register: { id: sy-1, port: 8080, tags: [lb, edge] }
  wait: 5m
logging: { level: debug, access: true }
stats: { bind: "[::]:9000", auth: { username: u, password: p }, read: private }
shutdown_timeout: 1500ms
workers: 4
`),
    null,
  );
  t.same(c.consul, {
    address: 'https://consul.local:8501',
    token: null,
    waitMs: 300_000,
    register: { name: 'switchyard', id: 'sy-1', address: null, port: 8080, tags: ['lb', 'edge'], checkIntervalMs: 10_000 },
  });
  t.same(c.logging, { level: 'debug', access: { enabled: true, sample: 1 } });
  t.same(c.stats, { bind: { host: '::', port: 9000 }, auth: { username: 'u', password: 'p' }, read: 'private', allowedHosts: [], sockets: [] });
  t.equal(c.shutdownTimeoutMs, 1500);
  t.equal(c.workers, 4);
  const c2 = parseConfig(base(`consul:\nlogging: { access: { enabled: true, sample: 0.25 } }`), null);
  t.same(c2.consul, { address: 'http://127.0.0.1:8500', token: null, register: null, waitMs: 30_000 }, 'an empty consul block: defaults');
  t.same(c2.logging.access, { enabled: true, sample: 0.25 });
  const be = parseConfig(
    base(`    sticky: { type: source, ttl: 1h, size: 10 }\n    passive: { consecutive_failures: 0 }\n    timeouts: { connect: 250ms }`),
    null,
  ).backends[0]!;
  t.same(be.sticky, { type: 'source', ttlMs: 3_600_000, size: 10 });
  t.equal(be.passive.consecutiveFailures, 0);
  t.same(be.timeouts, { connectMs: 250, serverMs: 30_000, serverKeepAliveMs: 4_000 });
  t.same(parseConfig(base('    sticky: { type: cookie }'), null).backends[0]!.sticky, { type: 'cookie', name: 'SY_SERVER' });
});

t.test('YAML syntax errors are reported with a line', async (t) => {
  const issues = issuesOf(t, 'frontends:\n  web: { bind: 1\nbackends: [\n');
  t.ok(issues.length >= 1);
  t.ok(
    issues.every((i) => typeof i.line === 'number'),
    issueLines(issues).join(' | '),
  );
  const dup = issuesOf(t, base('  api:\n    servers: []'));
  t.match(issueLines(dup), [/unique/]);
  t.same(issuesOf(t, '# nothing\n'), [{ path: '', message: 'the config is empty' }]);
});

t.test('loadConfigFile: a read error is SY_ERR_CONFIG_READ', async (t) => {
  const error = await loadConfigFile(fixture('no-such.yaml')).then(
    () => null,
    (e: unknown) => e,
  );
  t.type(error, SwitchyardError);
  t.notOk(error instanceof ConfigError);
  t.equal((error as SwitchyardError).code, 'SY_ERR_CONFIG_READ');
  t.match((error as Error).message, `cannot read config file ${fixture('no-such.yaml')}: no such file`);
});

t.test('normalizeConfig takes the raw shape from code and validates it the same way', async (t) => {
  const c = normalizeConfig(
    {
      frontends: { web: { bind: '127.0.0.1:0', backend: 'api' } },
      backends: { api: { servers: [{ address: '127.0.0.1:9001' }], timeouts: { server: 2500 } } },
    },
    null,
  );
  t.equal(c.source, null);
  t.equal(c.backends[0]!.timeouts.serverMs, 2500, 'plain numbers are ms');
  const error = (() => {
    try {
      normalizeConfig({ frontends: { web: { bind: 1, backend: 'x' } }, backends: {} }, null);
    } catch (e) {
      return e as ConfigError;
    }
    return null;
  })();
  t.type(error, ConfigError);
  t.same(error?.issues, [{ path: 'frontends.web.backend', message: 'unknown backend "x"' }], 'no line without a file');
  t.throws(() => normalizeConfig('nope', null), { name: 'ConfigError', issues: [{ path: '', message: 'expected a mapping, got "nope"' }] });
});

t.test('demo config', async (t) => {
  const c = demoConfig({ http: 11101, tcp: 11100, stats: 11099, echo: [11111, 11112, 11113] });
  t.equal(c.source, null);
  t.same(c.stats, { bind: { host: '127.0.0.1', port: 11099 }, auth: null, read: 'public', allowedHosts: [], sockets: [] });
  t.same(
    c.frontends.map((f) => [f.name, f.mode, `${f.bind.host}:${f.bind.port}`, f.backend]),
    [
      ['demo-http', 'http', '127.0.0.1:11101', 'demo-http'],
      ['demo-tcp', 'tcp', '127.0.0.1:11100', 'demo-tcp'],
    ],
  );
  const [http, tcp] = c.backends;
  t.match(http, { name: 'demo-http', mode: 'http', strategy: 'round-robin', health: { type: 'http', method: 'GET', path: '/health', intervalMs: 2000 } });
  t.match(tcp, { name: 'demo-tcp', mode: 'tcp', health: { type: 'tcp' } });
  for (const be of [http!, tcp!]) {
    t.same(
      be.servers.map((s) => `${s.name}=${s.address.host}:${s.address.port}`),
      ['echo1=127.0.0.1:11111', 'echo2=127.0.0.1:11112', 'echo3=127.0.0.1:11113'],
    );
  }
  t.ok(Object.isFrozen(c.backends[1]!.servers[2]));
  t.equal(summarizeConfig(c), 'ok: 2 frontends (http 1, tcp 1), 2 backends, 6 servers, stats on 127.0.0.1:11099');
  const ephemeral = demoConfig({ http: 0, tcp: 0, stats: 0, echo: [40001, 40002, 40003] });
  t.equal(ephemeral.frontends[0]!.bind.port, 0);
  const withLogin = demoConfig({ http: 0, tcp: 0, stats: 0, echo: [40001, 40002, 40003] }, 'pw-123');
  t.same(withLogin.stats.auth, { username: 'admin', password: 'pw-123' }, 'the demo password becomes the stats login');
});

t.test('the contract example file in the docs matches the fixture', async (t) => {
  // The fixture is the contract's example verbatim; keep them in step.
  const contract = readFileSync(fixture('contract.yaml'), 'utf8');
  t.match(contract, /strategy: round-robin {6}# round-robin \| least-connections/);
});
