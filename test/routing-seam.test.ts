import t from 'tap';
import { request } from 'undici';
import { parseConfig } from '../src/config/load.js';
import type { Backend } from '../src/model/backend.js';
import type { HooksSlot, RouterSlot, Routing } from '../src/routing/routing.js';
import { ResponseView, type RequestView } from '../src/routing/request-view.js';
import type { HttpHead } from '../src/balancer/http-head.js';
import { httpServer, start } from './support/proxy-harness.js';
import { HeaderEdits } from '../src/routing/header-edits.js';

// The seam user code plugs into (src/usercode builds the slots from modules): a router
// decides before the routes and may fall through, choose a backend or answer; hooks edit
// request and response headers through the same mechanism as header rules.

t.test('a router first, routes next, default last; hooks edit both directions', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const sy = await start(
    parseConfig(
      `stats: { bind: 127.0.0.1:0 }
frontends:
  web:
    bind: 127.0.0.1:0
    request_headers: { set: { x-rule: frontend } }
    routes:
      - { match: { path_prefix: /b }, backend: b }
    default_backend: a
backends:
  a: { servers: [ { name: a1, address: ${a.address} } ] }
  b: { servers: [ { name: b1, address: ${b.address} } ] }
`,
      null,
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await a.close();
    await b.close();
  });
  const port = sy.frontendAddress('web').port;
  const frontend = sy.runtime().frontends.get('web')!;
  const backendB = sy.runtime().backends.get('b') as Backend;
  const seen: string[] = [];
  const router: RouterSlot = {
    route(v: RequestView, routing: Routing) {
      seen.push(`${v.method} ${v.path} ${v.host} ${v.header('x-user') ?? '-'} ${v.queryParam('q') ?? '-'}`);
      if (v.header('x-user') === 'bee') return backendB;
      if (v.path === '/teapot') {
        v.respond(418, 'short and stout\n', { 'x-why': 'router' });
        return null;
      }
      void routing;
      return undefined;
    },
  };
  const hooks: HooksSlot = {
    hasRequestHook: true,
    hasResponseHook: true,
    onRequest(v) {
      v.requestEdits().set('x-hook', `saw ${v.path}`);
    },
    onResponse(v, head: HttpHead, buf: Buffer) {
      const res = new ResponseView();
      res.begin(head, buf);
      v.responseHeaderEdits().set('x-upstream-status', String(res.status));
      v.responseHeaderEdits().delete('x-powered-by');
      v.responseHeaderEdits().add('x-content', res.header('Content-Type') ?? 'none');
    },
  };
  frontend.routing = frontend.routing.withUserCode(router, hooks);

  const r1 = await request(`http://127.0.0.1:${port}/x?q=1`, { headers: { host: 'Shop.Test:81', 'x-user': 'bee' } });
  t.equal(await r1.body.text(), 'b', 'the router chose backend b');
  t.equal(r1.headers['x-upstream-status'], '200');
  t.equal(r1.headers['x-content'], 'text/plain');
  t.equal(b.seen.at(-1)!.headers['x-hook'], 'saw /x');
  t.equal(b.seen.at(-1)!.headers['x-rule'], 'frontend', "header rules still apply to a router's choice");
  t.equal(seen.at(-1), 'GET /x shop.test bee 1');

  t.equal(await (await request(`http://127.0.0.1:${port}/b/1`)).body.text(), 'b', 'the router fell through: routes decide');
  t.equal(await (await request(`http://127.0.0.1:${port}/c`)).body.text(), 'a', 'then the default');
  const r4 = await request(`http://127.0.0.1:${port}/teapot`);
  t.equal(r4.statusCode, 418);
  t.equal(r4.headers['x-why'], 'router');
  t.equal(await r4.body.text(), 'short and stout\n');
  t.equal(a.seen.length + b.seen.length, 3, 'the answered request reached no server');

  // User code gets checked edits: no framing fields, no line breaks, no bad names.
  const edits = new HeaderEdits();
  t.throws(() => edits.set('Content-Length', '1'), /managed by the proxy/);
  t.throws(() => edits.set('x-a', 'one\r\nx-b: two'), /CR, LF and NUL are not allowed/);
  t.throws(() => edits.add('bad name', 'v'), /invalid header name/);
});
