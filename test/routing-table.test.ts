import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import { buildRuntime } from '../src/model/runtime.js';
import { HttpHead } from '../src/balancer/http-head.js';
import { RequestView } from '../src/routing/request-view.js';
import { CompiledRoute } from '../src/routing/route.js';
import { covers } from '../src/config/route-table.js';

// The route table without a proxy: the host index keeps the first-match order, the bench
// config does what its comments promise, the shadow check is right both ways.

function head(text: string): { head: HttpHead; buf: Buffer } {
  const buf = Buffer.from(text, 'latin1');
  const h = new HttpHead({ maxRequestLine: 8192, maxHeaderBytes: 32768, maxHeaders: 100 });
  if (h.parseRequest(buf, 0, buf.length) !== 1) throw new Error(h.error);
  return { head: h, buf };
}

async function routingOf(yaml: string) {
  const rt = await buildRuntime(parseConfig(yaml, null), null);
  return rt.frontends.get('web')!.routing;
}

function decide(routing: Awaited<ReturnType<typeof routingOf>>, text: string): string {
  const v = new RequestView('10.0.0.1');
  const r = head(text);
  v.begin(r.head, r.buf);
  routing.decide(v);
  return v.route?.name ?? `default:${v.backend!.name}`;
}

t.test('host index: wildcard and catch-all routes keep their place among exact-host ones', async (t) => {
  const routing = await routingOf(`frontends:\n  web:\n    bind: 127.0.0.1:0\n    default_backend: b\n    routes:
      - { name: wild-a, match: { host: "*.example.com", path_prefix: /a }, backend: b }
      - { name: api, match: { host: [api.example.com, api.test] }, backend: b }
      - { name: any-b, match: { path_prefix: /b }, backend: b }
      - { name: ported, match: { host: "www.example.com:8443" }, backend: b }
      - { name: www, match: { host: www.example.com }, backend: b }
backends:\n  b: { servers: [ { address: 127.0.0.1:1 } ] }\n`);
  const req = (host: string, path = '/') => decide(routing, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  t.equal(req('api.example.com', '/a/x'), 'wild-a', 'an earlier wildcard wins over a later exact host');
  t.equal(req('API.EXAMPLE.COM', '/z'), 'api');
  t.equal(req('api.test:81', '/b'), 'api');
  t.equal(req('www.example.com', '/b'), 'any-b');
  t.equal(req('www.example.com:8443'), 'ported');
  t.equal(req('www.example.com:8080'), 'www');
  t.equal(req('nowhere.test', '/b/c'), 'any-b');
  t.equal(req('nowhere.test', '/c'), 'default:b');
  t.equal(decide(routing, 'GET http://www.example.com/a HTTP/1.1\r\nHost: www.example.com\r\n\r\n'), 'wild-a', 'absolute-form target');
  t.equal(decide(routing, 'GET / HTTP/1.0\r\n\r\n'), 'default:b', 'no Host at all');
});

t.test('methods: common ones by bit, others by name; header and query names cached per request', async (t) => {
  const routing = await routingOf(`frontends:\n  web:\n    bind: 127.0.0.1:0\n    default_backend: b\n    routes:
      - { name: purge, match: { method: PURGE }, backend: b }
      - { name: write, match: { method: [POST, PATCH] }, backend: b }
      - { name: canary-2, match: { header: { x-canary: "2" } }, backend: b }
      - { name: canary-1, match: { header: { X-Canary: "1" }, query: { v: "1" } }, backend: b }
      - { name: v2, match: { query: { v: "2" } }, backend: b }
backends:\n  b: { servers: [ { address: 127.0.0.1:1 } ] }\n`);
  const req = (method: string, target = '/', extra = '') => decide(routing, `${method} ${target} HTTP/1.1\r\nHost: h\r\n${extra}\r\n`);
  t.equal(req('PURGE'), 'purge');
  t.equal(req('PATCH'), 'write');
  t.equal(req('POST'), 'write');
  t.equal(req('GET'), 'default:b');
  t.equal(req('PURGEX'), 'default:b');
  t.equal(req('GET', '/?v=1', 'X-Canary: 1\r\n'), 'canary-1');
  t.equal(req('GET', '/?v=2', 'X-Canary: 1\r\n'), 'v2');
  t.equal(req('GET', '/?v=1', 'X-Canary: 3\r\nx-canary: 2\r\n'), 'canary-2', 'a second line of the name');
});

t.test('the anchor-bench config: the bench request matches only the last of 10 routes', async (t) => {
  const text = readFileSync(join(import.meta.dirname, '..', 'bench', 'anchor-routes-10.yaml'), 'utf8');
  const rt = await buildRuntime(parseConfig(text, null), null);
  const routing = rt.frontends.get('t')!.routing;
  t.equal(routing.routes.length, 10);
  t.equal(rt.frontends.get('h')!.routing.active, false, 'the single-backend frontend has nothing to decide');
  let tested = 0;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with .call(this), then put back
  const orig = CompiledRoute.prototype.matches;
  CompiledRoute.prototype.matches = function (this: CompiledRoute, v, checked) {
    tested++;
    return orig.call(this, v, checked);
  };
  t.teardown(() => {
    CompiledRoute.prototype.matches = orig;
  });
  const v = new RequestView('127.0.0.1');
  const r = head('GET /hello HTTP/1.1\r\nHost: 127.0.0.1:19011\r\nUser-Agent: wrk\r\n\r\n');
  v.begin(r.head, r.buf);
  routing.decide(v);
  t.equal(v.route?.index, 9);
  t.equal(v.backend?.name, 'bh');
  t.equal(tested, 10, 'every route was tested');
});

t.test('shadowing: proven cases are flagged, possible matches are not', async (t) => {
  const m = (over: Record<string, unknown>) => ({
    hosts: null,
    path: null,
    pathPrefix: null,
    pathRegex: null,
    methods: null,
    headers: [],
    query: [],
    source: null,
    notSource: null,
    ...over,
  });
  t.ok(covers(m({}), m({ path: '/x' })), 'a catch-all covers everything');
  t.ok(covers(m({ pathPrefix: '/api/' }), m({ pathPrefix: '/api/v1' })));
  t.notOk(covers(m({ pathPrefix: '/api' }), m({ pathPrefix: '/apix' })), 'segment boundaries');
  t.ok(covers(m({ hosts: ['*.example.com'] }), m({ hosts: ['a.example.com'], path: '/' })));
  t.notOk(covers(m({ hosts: ['a.example.com'] }), m({ hosts: ['*.example.com'] })));
  t.notOk(covers(m({ hosts: ['a.example.com:81'] }), m({ hosts: ['a.example.com'] })), 'a port narrows');
  t.ok(covers(m({ methods: ['GET', 'HEAD'] }), m({ methods: ['GET'] })));
  t.notOk(covers(m({ methods: ['GET'] }), m({})));
  t.ok(covers(m({ headers: [{ name: 'x', kind: 'present' }] }), m({ headers: [{ name: 'x', kind: 'equals', value: '1' }] })));
  t.notOk(covers(m({ headers: [{ name: 'x', kind: 'equals', value: '1' }] }), m({ headers: [{ name: 'x', kind: 'present' }] })));
  t.ok(covers(m({ pathRegex: '^/a' }), m({ path: '/abc' })));
  t.notOk(covers(m({ pathRegex: '^/a' }), m({ pathPrefix: '/a' })), 'regex against prefix: not provable, not flagged');
  t.notOk(covers(m({ source: ['10.0.0.0/8'] }), m({})));
});
