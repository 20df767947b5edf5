import t from 'tap';
import { CidrList, parseAddress } from '../src/routing/cidr.js';
import { parseConfig } from '../src/config/load.js';
import { buildRuntime } from '../src/model/runtime.js';
import { HttpHead } from '../src/balancer/http-head.js';
import { RequestView, ResponseView, normalizePath } from '../src/routing/request-view.js';
import { routedRequestHead } from '../src/routing/head-edit.js';
import { addRouteHits, applyRouteHits, collectRouteHits } from '../src/routing/route-stats.js';
import { WorkerTotals } from '../src/cluster/totals.js';
import { parseTemplate, formatTemplate } from '../src/config/templates.js';

// The small parts of routing on their own: CIDR blocks (both families), path normalising,
// templates, the absolute-form rewrite, the response view, and route hits summed over workers.

t.test('CIDR lists: IPv4, IPv6, mapped addresses, whole-family blocks', async (t) => {
  const list = new CidrList(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::1']);
  const has = (ip: string) => list.contains(parseAddress(ip)!);
  t.ok(has('10.20.30.40'));
  t.notOk(has('11.0.0.1'));
  t.ok(has('192.168.1.7'));
  t.notOk(has('192.168.1.8'));
  t.ok(has('2001:db8:1::5'));
  t.notOk(has('2001:db9::1'));
  t.ok(has('::1'));
  t.notOk(has('::2'));
  t.ok(new CidrList(['::ffff:0:0/96']).contains(parseAddress('172.16.0.1')!), '::ffff:0:0/96 is every IPv4 address');
  t.ok(new CidrList(['10.0.0.0/8']).contains(parseAddress('::ffff:10.1.2.3')!), 'and IPv4 blocks');
  t.ok(new CidrList(['0.0.0.0/0']).contains(parseAddress('203.0.113.1')!));
  t.notOk(new CidrList(['0.0.0.0/0']).contains(parseAddress('2001:db8::1')!), 'families do not mix');
  t.ok(new CidrList(['::/0']).contains(parseAddress('2001:db8::1')!));
  t.ok(new CidrList(['64:ff9b::/96']).contains(parseAddress('64:ff9b::192.0.2.33')!), 'embedded IPv4 notation');
  t.ok(new CidrList(['fe80::/10']).contains(parseAddress('fe80::1%eth0')!), 'a zone id is ignored');
  t.equal(parseAddress('not an address'), null);
  t.throws(() => new CidrList(['nope/8']));
});

t.test('path normalising for matching (RFC 3986 6.2.2)', async (t) => {
  t.equal(normalizePath('/%61dmin/%7Euser'), '/admin/~user');
  t.equal(normalizePath('/a/%2F/b'), '/a/%2F/b', 'reserved characters stay encoded');
  t.equal(normalizePath('/a/./b/../c'), '/a/c');
  t.equal(normalizePath('/a/b/..'), '/a/');
  t.equal(normalizePath('/a/b/.'), '/a/b/');
  t.equal(normalizePath('/../../x'), '/x');
  t.equal(normalizePath('/%2e%2e/admin'), '/admin', 'encoded dots too');
});

t.test('templates', async (t) => {
  process.env.SY_UNIT_T = 'v';
  t.same(parseTemplate('a${host}b${env:SY_UNIT_T}c'), ['a', { var: 'host' }, 'bvc']);
  t.same(parseTemplate(''), ['']);
  t.equal(formatTemplate(parseTemplate('x-${path}') as never), 'x-${path}');
  t.match(parseTemplate('${env:1BAD}'), /invalid reference/);
  t.match(parseTemplate('${env:SY_UNIT_UNSET_X}'), /is not set/);
  t.match(parseTemplate('${what}'), /unknown template value/);
  t.match(parseTemplate('a ${host'), /unclosed reference/);
});

function parsed(text: string): { head: HttpHead; buf: Buffer } {
  const buf = Buffer.from(text, 'latin1');
  const head = new HttpHead({ maxRequestLine: 8192, maxHeaderBytes: 32768, maxHeaders: 100 });
  if (head.parseRequest(buf, 0, buf.length) !== 1) throw new Error(head.error);
  return { head, buf };
}

t.test("a rewrite keeps an absolute-form target's scheme and authority; views read what they should", async (t) => {
  const rt = await buildRuntime(
    parseConfig(
      `frontends:\n  web:\n    bind: 127.0.0.1:0\n    default_backend: b\n    routes:\n      - { match: { path_prefix: /api }, backend: b, path_rewrite: { strip_prefix: /api } }\nbackends:\n  b: { servers: [ { address: 127.0.0.1:1 } ] }\n`,
      null,
    ),
    null,
  );
  const routing = rt.frontends.get('web')!.routing;
  const r = parsed('GET http://h.test/api/x?q=1 HTTP/1.1\r\nHost: h.test\r\nX-A:  one \r\nx-a: two\r\n\r\n');
  const v = new RequestView('10.0.0.1');
  v.begin(r.head, r.buf);
  routing.decide(v);
  t.equal(v.path, '/api/x');
  t.equal(v.query, 'q=1');
  t.equal(v.header('x-a'), 'one');
  t.same(v.headers().slice(1), [
    ['x-a', 'one'],
    ['x-a', 'two'],
  ]);
  const out = routedRequestHead(r.head, r.buf, 0, '', v).toString('latin1');
  t.match(out, /^GET http:\/\/h\.test\/x\?q=1 HTTP\/1\.1\r\n/);

  const res = Buffer.from('HTTP/1.1 204 No Content\r\nX-B: b\r\nConnection: close\r\n\r\n', 'latin1');
  const rh = new HttpHead({ maxRequestLine: 8192, maxHeaderBytes: 65536, maxHeaders: 200 });
  t.equal(rh.parseResponse(res, 0, res.length), 1);
  const rv = new ResponseView();
  rv.begin(rh, res);
  t.equal(rv.status, 204);
  t.equal(rv.header('X-B'), 'b');
  t.equal(rv.header('connection'), null, 'hop-by-hop fields are not shown');
  t.same(rv.headers(), [['x-b', 'b']]);
  t.throws(() => v.respond(99), /status must be/);
});

t.test("route hits over workers: summed, a dead worker's share kept", async (t) => {
  const yaml = `frontends:\n  web:\n    bind: 127.0.0.1:0\n    default_backend: b\n    routes:\n      - { name: a, match: { path: /a }, backend: b }\n  plain: { bind: 127.0.0.1:0, backend: b }\nbackends:\n  b: { servers: [ { address: 127.0.0.1:1 } ] }\n`;
  const worker = await buildRuntime(parseConfig(yaml, null), null);
  const wr = worker.frontends.get('web')!.routing;
  wr.routes[0]!.stats.hits = 5;
  wr.defaultStats.hits = 2;
  const report = collectRouteHits(worker);
  t.same(report, { web: { routes: { a: 5 }, default: 2 } }, 'frontends without routes are not reported');
  t.same(addRouteHits(report, report), { web: { routes: { a: 10 }, default: 4 } });

  const primary = await buildRuntime(parseConfig(yaml, null), null);
  applyRouteHits(primary, [report, undefined, { web: { routes: { a: 1 }, default: 1 } }]);
  t.equal(primary.frontends.get('web')!.routing.routes[0]!.stats.hits, 6);
  t.equal(primary.frontends.get('web')!.routing.defaultStats.hits, 3);

  const totals = new WorkerTotals();
  const empty = { frontends: {}, backends: {}, servers: {} };
  totals.report(1, { ...empty, routes: report });
  totals.report(2, { ...empty, routes: report });
  totals.retire(2);
  totals.report(1, { ...empty, routes: { web: { routes: { a: 7 }, default: 2 } } });
  totals.applyTo(primary);
  t.equal(primary.frontends.get('web')!.routing.routes[0]!.stats.hits, 12, "live 7 + the dead worker's 5");
});
