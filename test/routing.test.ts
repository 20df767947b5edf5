import t, { type Test } from 'tap';
import { request } from 'undici';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/config/../errors.js';
import { httpServer, rawRequest, start, type TestHttpServer } from './support/proxy-harness.js';

// Routes through the proxy with real traffic: every match kind and action, from a YAML config
// through the real loader (so key names and defaults are the ones users write).

/** Named test servers answering their own name; a config whose backends point at them. */
async function servers(t: Test, names: string[]): Promise<Record<string, TestHttpServer>> {
  const out: Record<string, TestHttpServer> = {};
  for (const n of names) out[n] = await httpServer(n);
  t.teardown(async () => {
    for (const s of Object.values(out)) await s.close();
  });
  return out;
}

function backendsYaml(srv: Record<string, TestHttpServer>, extra: Record<string, string> = {}): string {
  return Object.entries(srv)
    .map(([n, s]) => `  ${n}:\n    servers: [ { name: ${n}1, address: ${s.address} } ]\n${extra[n] ?? ''}`)
    .join('');
}

async function proxy(t: Test, frontend: string, srv: Record<string, TestHttpServer>, backendExtra: Record<string, string> = {}) {
  const yaml = `stats: { bind: 127.0.0.1:0 }\nfrontends:\n  web:\n    bind: 127.0.0.1:0\n${frontend}\nbackends:\n${backendsYaml(srv, backendExtra)}`;
  const sy = await start(parseConfig(yaml, null));
  t.teardown(() => sy.stop(200));
  const port = sy.frontendAddress('web').port;
  const get = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
    const res = await request(`http://127.0.0.1:${port}${path}`, { method, headers });
    const body = await res.body.text();
    return { status: res.statusCode, body, headers: res.headers };
  };
  return { sy, port, get };
}

t.test('host: exact, *.wildcard, port ignored unless given; default_backend otherwise', async (t) => {
  const srv = await servers(t, ['api', 'wild', 'ported', 'web']);
  const { get } = await proxy(
    t,
    `
    routes:
      - match: { host: api.example.com }
        backend: api
      - match: { host: "*.example.com" }
        backend: wild
      - match: { host: "other.test:8080" }
        backend: ported
    default_backend: web`,
    srv,
  );
  t.equal((await get('/', { host: 'api.example.com' })).body, 'api');
  t.equal((await get('/', { host: 'API.Example.COM:9999' })).body, 'api', 'case and port ignored');
  t.equal((await get('/', { host: 'x.example.com' })).body, 'wild');
  t.equal((await get('/', { host: 'a.b.example.com' })).body, 'wild');
  t.equal((await get('/', { host: 'example.com' })).body, 'web', 'a wildcard needs a label before the suffix');
  t.equal((await get('/', { host: 'other.test:8080' })).body, 'ported');
  t.equal((await get('/', { host: 'other.test:8081' })).body, 'web', 'a port in the route must match');
  t.equal((await get('/', { host: 'other.test' })).body, 'web');
});

t.test('path: exact, prefix on segment boundaries, regex; the first match wins', async (t) => {
  const srv = await servers(t, ['exact', 'prefix', 'regex', 'web']);
  const { get, port } = await proxy(
    t,
    `
    routes:
      - match: { path: /login }
        backend: exact
      - match: { path_prefix: /api }
        backend: prefix
      - match: { path_regex: "^/v[0-9]+/items$" }
        backend: regex
      - match: { path_prefix: /api/never }
        backend: exact
    backend: web`,
    srv,
  );
  t.equal((await get('/login')).body, 'exact');
  t.equal((await get('/login?next=/x')).body, 'exact', 'the query is not part of the path');
  t.equal((await get('/login/')).body, 'web');
  t.equal((await get('/api')).body, 'prefix');
  t.equal((await get('/api/')).body, 'prefix');
  t.equal((await get('/api/never')).body, 'prefix', 'an earlier route wins');
  t.equal((await get('/apix')).body, 'web', 'not a segment boundary');
  t.equal((await get('/v2/items')).body, 'regex');
  t.equal((await get('/v2/items/1')).body, 'web');
  // Spelled differently, the same path: normalised before matching.
  t.equal((await get('/%61pi/x')).body, 'prefix', 'percent-encoded unreserved characters decoded');
  t.match(await rawRequest(port, 'GET /x/../api/y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /prefix$/, 'dot segments removed');
  t.equal(srv.prefix!.seen.at(-1)!.url, '/x/../api/y', 'the path is forwarded as sent');
});

t.test('method, header (present, equals, regex, absent; names case-insensitive), query', async (t) => {
  const srv = await servers(t, ['post', 'canary', 'mobile', 'present', 'debug', 'absent', 'web']);
  const { get } = await proxy(
    t,
    `
    routes:
      - match: { method: [POST, PUT] }
        backend: post
      - match: { header: { X-Canary: "1" } }
        backend: canary
      - match: { header: { user-agent: { regex: "(?i)iphone|android" } } }
        backend: mobile
      - match: { header: { x-present: true } }
        backend: present
      - match: { query: { debug: "1", trace: true } }
        backend: debug
      - match: { path: /absent, header: { x-token: false } }
        backend: absent
    default_backend: web`.replace('(?i)', ''),
    srv,
  );
  t.equal((await get('/', {}, 'POST')).body, 'post');
  t.equal((await get('/', {}, 'PUT')).body, 'post');
  t.equal((await get('/', {}, 'DELETE')).body, 'web');
  t.equal((await get('/', { 'x-canary': '1' })).body, 'canary');
  t.equal((await get('/', { 'x-canary': '2' })).body, 'web');
  t.equal((await get('/', { 'user-agent': 'Mozilla (iphone)' })).body, 'mobile');
  t.equal((await get('/', { 'x-present': '' })).body, 'present', 'present with an empty value');
  t.equal((await get('/?debug=1&trace')).body, 'debug');
  t.equal((await get('/?trace=&debug=%31')).body, 'debug', 'query values are percent-decoded');
  t.equal((await get('/?debug=1')).body, 'web', 'every condition must hold');
  t.equal((await get('/absent')).body, 'absent');
  t.equal((await get('/absent', { 'x-token': 'y' })).body, 'web');
  // The same header twice: a condition holds when any line satisfies it.
  const raw = await rawRequest(
    (
      await proxy(
        t,
        `
    routes:
      - match: { header: { x-canary: "1" } }
        backend: canary
    default_backend: web`,
        srv,
      )
    ).port,
    'GET / HTTP/1.1\r\nHost: x\r\nX-Canary: 0\r\nx-canary: 1\r\nConnection: close\r\n\r\n',
  );
  t.match(raw, /\r\n\r\ncanary$/);
});

t.test('client address: source and not_source CIDR lists', async (t) => {
  const srv = await servers(t, ['inside', 'web']);
  const { get } = await proxy(
    t,
    `
    routes:
      - match: { path_prefix: /admin/, not_source: [10.0.0.0/8, "::1"] }
        deny: { status: 403, body: "admins only\\n" }
      - match: { source: 127.0.0.0/8 }
        backend: inside
    default_backend: web`,
    srv,
  );
  const denied = await get('/admin/users');
  t.equal(denied.status, 403);
  t.equal(denied.body, 'admins only\n');
  t.equal((await get('/other')).body, 'inside', '127.0.0.1 is in 127.0.0.0/8');
});

t.test('redirect: status, location template, keep path and query; the connection stays open', async (t) => {
  const srv = await servers(t, ['web']);
  const { get, port } = await proxy(
    t,
    `
    routes:
      - match: { path_prefix: /old }
        redirect: { status: 301, location: "https://\${host}/new\${path}" }
      - match: { path_prefix: /moved }
        redirect: { status: 308, location: "https://example.com/base/", keep_path: true, keep_query: true }
      - match: { path: /temp }
        redirect: { location: /elsewhere }
    default_backend: web`,
    srv,
  );
  const r1 = await get('/old/page?q=1', { host: 'shop.test:8080' });
  t.equal(r1.status, 301);
  t.equal(r1.headers.location, 'https://shop.test/new/old/page');
  const r2 = await get('/moved/a/b?x=1&y=2');
  t.equal(r2.status, 308);
  t.equal(r2.headers.location, 'https://example.com/base/moved/a/b?x=1&y=2');
  const r3 = await get('/temp');
  t.equal(r3.status, 302, 'default status 302');
  t.equal(r3.headers.location, '/elsewhere');
  t.equal(srv.web!.seen.length, 0, 'nothing reached a server');
  // Pipelined: a redirect, then a request for the backend, on one connection.
  const raw = await rawRequest(port, 'GET /temp HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.match(raw, /^HTTP\/1\.1 302 Found\r\n[^]*location: \/elsewhere\r\n[^]*HTTP\/1\.1 200 OK[^]*web$/);
});

t.test('deny: status and body; a request body in flight closes the connection', async (t) => {
  const srv = await servers(t, ['web']);
  const { get, port } = await proxy(
    t,
    `
    routes:
      - match: { path_prefix: /private }
        deny: { status: 404 }
      - match: { path_prefix: /teapot }
        deny: { status: 418, body: "short and stout\\n" }
      - match: { path: /blocked }
        deny: true
    default_backend: web`,
    srv,
  );
  const r = await get('/private/x');
  t.equal(r.status, 404);
  t.equal(r.body, '404 Not Found\n');
  t.equal((await get('/teapot')).body, 'short and stout\n');
  t.equal((await get('/blocked')).status, 403);
  const raw = await rawRequest(port, 'POST /blocked HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345');
  t.match(raw, /^HTTP\/1\.1 403 Forbidden\r\n[^]*connection: close\r\n/);
  t.equal(srv.web!.seen.length, 0);
});

t.test('header rules per frontend, backend and route, both directions, with templates', async (t) => {
  const srv = await servers(t, ['api', 'web']);
  process.env.SY_TEST_REGION = 'eu-1';
  const { get } = await proxy(
    t,
    `
    request_headers:
      set: { x-env: prod, x-client: "\${client_ip}", x-region: "\${env:SY_TEST_REGION}" }
      remove: [x-debug]
    response_headers:
      set: { strict-transport-security: max-age=31536000 }
      remove: [server]
    routes:
      - match: { path_prefix: /api }
        backend: api
        request_headers: { set: { x-env: api-route }, add: { x-seen: ["\${method} \${path}", two] } }
        response_headers: { set: { x-served-by: "\${backend}/\${server}" } }
    default_backend: web`,
    srv,
    { api: '    request_headers: { set: { x-backend: "${backend}" } }\n    response_headers: { add: { x-layer: backend } }\n' },
  );
  const r = await get('/api/thing?a=1', { 'x-debug': '1', 'x-env': 'client' });
  const seen = srv.api!.seen.at(-1)!.headers;
  t.equal(seen['x-env'], 'api-route', 'the route overrides the frontend (most specific wins)');
  t.equal(seen['x-client'], '127.0.0.1');
  t.equal(seen['x-region'], 'eu-1');
  t.equal(seen['x-debug'], undefined, 'removed');
  t.equal(seen['x-backend'], 'api');
  t.equal(seen['x-seen'], 'GET /api/thing, two');
  t.equal(r.headers['strict-transport-security'], 'max-age=31536000');
  t.equal(r.headers['x-served-by'], 'api/api1');
  t.equal(r.headers['x-layer'], 'backend');
  t.equal(r.headers.server, undefined);
  const d = await get('/', { 'x-env': 'client' });
  t.equal(srv.web!.seen.at(-1)!.headers['x-env'], 'prod', 'set replaces the client value');
  t.equal(d.headers['x-served-by'], undefined, 'route rules only on that route');
});

t.test('path rewrite: strip a prefix, replace by regex; the query is kept', async (t) => {
  const srv = await servers(t, ['files', 'legacy', 'web']);
  const { get } = await proxy(
    t,
    `
    routes:
      - match: { path_prefix: /files }
        backend: files
        path_rewrite: { strip_prefix: /files }
      - match: { path_regex: "^/v1/" }
        backend: legacy
        path_rewrite: { regex: "^/v1/(.*)$", replace: "/legacy/$1" }
    default_backend: web`,
    srv,
  );
  await get('/files/a/b.txt?x=1');
  t.equal(srv.files!.seen.at(-1)!.url, '/a/b.txt?x=1');
  await get('/files');
  t.equal(srv.files!.seen.at(-1)!.url, '/', 'stripped to nothing is /');
  await get('/v1/users/7?full=1');
  t.equal(srv.legacy!.seen.at(-1)!.url, '/legacy/users/7?full=1');
});

t.test('X-Request-Id: kept when sent, generated when not, echoed when asked', async (t) => {
  const srv = await servers(t, ['web']);
  const { get } = await proxy(
    t,
    `
    request_id: { response: true }
    response_headers: { set: { x-trace: "id=\${request_id}" } }
    default_backend: web`,
    srv,
  );
  const a = await get('/', { 'x-request-id': 'abc-123' });
  t.equal(srv.web!.seen.at(-1)!.headers['x-request-id'], 'abc-123');
  t.equal(a.headers['x-request-id'], 'abc-123');
  t.equal(a.headers['x-trace'], 'id=abc-123');
  const b = await get('/');
  const generated = srv.web!.seen.at(-1)!.headers['x-request-id'] as string;
  t.match(generated, /^[0-9a-f-]{36}$/);
  t.equal(b.headers['x-request-id'], generated);
  await get('/');
  t.not(srv.web!.seen.at(-1)!.headers['x-request-id'], generated, 'a new id per request');
});

t.test('route hits are counted per route and for the default backend', async (t) => {
  const srv = await servers(t, ['api', 'web']);
  const { get, sy } = await proxy(
    t,
    `
    routes:
      - name: api
        match: { path_prefix: /api }
        backend: api
      - match: { path: /gone }
        deny: { status: 410 }
    default_backend: web`,
    srv,
  );
  await get('/api/1');
  await get('/api/2');
  await get('/gone');
  await get('/');
  const routing = sy.runtime().frontends.get('web')!.routing;
  t.same(
    routing.routes.map((r) => [r.name, r.stats.hits]),
    [
      ['api', 2],
      ['routes[1]', 1],
    ],
  );
  t.equal(routing.defaultStats.hits, 1);
});

t.test('config errors name the key path; the running config is never touched', async (t) => {
  const bad = (fe: string) => {
    try {
      parseConfig(
        `frontends:\n  web:\n    bind: 127.0.0.1:0\n${fe}\nbackends:\n  web: { servers: [ { address: 127.0.0.1:1 } ] }\n  tcpb: { mode: tcp, servers: [ { address: 127.0.0.1:1 } ] }\n`,
        null,
      );
      return [];
    } catch (e) {
      return (e as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
    }
  };
  t.match(
    bad(
      '    backend: web\n    routes:\n      - { match: { path: /a }, backend: web }\n      - { match: { path: /b }, backend: web }\n      - { match: { path_regex: "(" }, backend: web }',
    ),
    [/^frontends\.web\.routes\[2\]\.match\.path_regex: invalid regular expression/],
  );
  t.match(bad('    backend: web\n    routes:\n      - { match: { path: /a }, backend: nope }'), ['frontends.web.routes[0].backend: unknown backend "nope"']);
  t.match(bad('    backend: web\n    routes:\n      - { match: { path: /a }, backend: tcpb }'), [/routes\[0\]\.backend: backend "tcpb" is mode tcp/]);
  t.match(bad('    backend: web\n    routes:\n      - { match: { path: /a }, redirect: { status: 200, location: /x } }'), [
    /routes\[0\]\.redirect\.status: expected a redirect status/,
  ]);
  t.match(bad('    backend: web\n    routes:\n      - { match: { path: /a }, deny: { status: 200 } }'), [
    /routes\[0\]\.deny\.status: expected a status from 400 to 599/,
  ]);
  t.match(bad('    backend: web\n    routes:\n      - { match: { path: /a } }'), [/routes\[0\]: a route needs one action/]);
  t.match(bad('    backend: web\n    routes:\n      - { match: { path: /a, path_prefix: /b }, backend: web }'), [
    /routes\[0\]\.match\.path_prefix: use one of path, path_prefix and path_regex/,
  ]);
  t.match(bad('    backend: web\n    routes:\n      - { match: { source: [10.0.0.300/8] }, backend: web }'), [
    /routes\[0\]\.match\.source\[0\]: expected an address or a CIDR block/,
  ]);
  t.match(bad('    backend: web\n    request_headers: { set: { x: "${server}" } }'), [/request_headers\.set\.x: \$\{server\} is known only for responses/]);
  t.match(bad('    backend: web\n    request_headers: { set: { x: "${nope}" } }'), [/request_headers\.set\.x: environment variable nope is not set/]);
  t.match(bad('    backend: web\n    request_headers: { set: { content-length: "1" } }'), [
    /request_headers\.set\.content-length: framing and connection fields/,
  ]);
  t.match(bad('    routes: []'), [/frontends\.web\.backend: required/]);
  t.match(bad('    backend: web\n    default_backend: tcpb'), [/default_backend: backend "web" and default_backend "tcpb" differ/]);
  t.match(
    bad('    backend: web\n    routes:\n      - { name: a, match: { path: /a }, backend: web }\n      - { name: a, match: { path: /b }, backend: web }'),
    [/routes\[1\]\.name: duplicate route name "a"/],
  );
  t.same(bad('    default_backend: web\n    routes:\n      - { match: { host: [a.test, "*.b.test"], method: get }, backend: web }'), [], 'a valid config');
});
