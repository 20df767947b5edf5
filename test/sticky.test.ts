// Sticky sessions, through Backend.pick as the proxy core calls it: the cookie table (HTTP) and
// the source table with expiry and a size limit (TCP and HTTP), with DRAIN honoured.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'node:net';
import { request } from 'undici';
import { Backend } from '../src/model/backend.js';
import type { Server } from '../src/model/server.js';
import { roundRobin } from '../src/strategies/round-robin.js';
import { createStickyTable, type BalanceContext, type StickyClock } from '../src/strategies/sticky.js';
import { backendConfig, serverConfigs } from './support/backend-config.js';
import * as harness from './support/proxy-harness.js';

const req = (clientIp: string, stickyCookie: string | null = null, avoid: Server | null = null): BalanceContext => ({
  clientIp,
  avoid,
  stickyCookie,
  setStickyCookie: null,
});

function setState(s: Server, state: 'ready' | 'drain' | 'maint' | 'down'): void {
  if (state === 'down') s.checkDown = true;
  else {
    s.checkDown = false;
    s.admin = state;
  }
  s.noteChange(`test: ${state}`);
}

const cookieBackend = (weights = [1, 1, 1], name = 'web') =>
  new Backend(backendConfig(weights, { name, sticky: { type: 'cookie', name: 'SY_SERVER' } }), roundRobin);
const sourceBackend = (ttlMs: number, size: number, mode: 'tcp' | 'http' = 'tcp') =>
  new Backend(backendConfig([1, 1, 1], { mode, sticky: { type: 'source', ttlMs, size } }), roundRobin);

t.test('cookie: set on a fresh pick, honoured after', async (t) => {
  const b = cookieBackend();
  const first = req('192.0.2.1');
  const s = b.pick(first)!;
  t.equal(first.setStickyCookie, s.stickyId, 'the response sets the cookie to the server stickyId');
  t.not(s.stickyId, s.address, 'opaque: not the address');
  t.notMatch(s.stickyId, /127\.0\.0\.1|9001|s1/, 'reveals neither address nor name');
  for (let i = 0; i < 10; i++) {
    const r = req(`192.0.2.${i + 2}`, s.stickyId);
    t.equal(b.pick(r), s, 'bound server, whatever the client address');
    t.equal(r.setStickyCookie, null, 'no Set-Cookie while the binding holds');
  }
  const unknown = req('192.0.2.1', 'not-a-server');
  const u = b.pick(unknown)!;
  t.equal(unknown.setStickyCookie, u.stickyId, 'an unknown cookie: re-pick and re-set');
});

t.test('cookie: every instance honours it (stickyId from backend + server name)', async (t) => {
  const a = cookieBackend();
  const b = cookieBackend();
  t.same(
    a.servers.map((s) => s.stickyId),
    b.servers.map((s) => s.stickyId),
  );
  const r = req('192.0.2.1');
  const s = a.pick(r)!;
  b.pick(req('192.0.2.1')); // b's round-robin has moved on: the cookie must still win
  t.equal(b.pick(req('192.0.2.1', r.setStickyCookie))!.name, s.name);
  t.not(cookieBackend([1, 1, 1], 'other').servers[0]!.stickyId, a.servers[0]!.stickyId, 'differs per backend');
});

t.test('cookie: UP or DRAIN keeps the binding; MAINT or DOWN re-picks and re-sets', async (t) => {
  const b = cookieBackend();
  const [s1, s2] = b.servers as [Server, Server];
  const cookie = s1.stickyId;

  setState(s1, 'drain');
  const r = req('192.0.2.1', cookie);
  t.equal(b.pick(r), s1, 'DRAIN: the bound session stays');
  t.equal(r.setStickyCookie, null);
  let fresh = 0;
  for (let i = 0; i < 30; i++) if (b.pick(req(`198.51.100.${i}`)) === s1) fresh++;
  t.equal(fresh, 0, 'DRAIN: no new client');

  for (const state of ['maint', 'down'] as const) {
    setState(s1, 'ready');
    setState(s1, state);
    const m = req('192.0.2.1', cookie);
    const got = b.pick(m)!;
    t.not(got, s1, `${state.toUpperCase()}: re-picked`);
    t.equal(m.setStickyCookie, got.stickyId, `${state.toUpperCase()}: cookie re-set to the new server`);
    s1.checkDown = false;
  }
  setState(s1, 'ready');

  // A retry (connect failure on the bound server) goes elsewhere and re-sets the cookie.
  const retry = req('192.0.2.1', cookie, s1);
  const other = b.pick(retry)!;
  t.not(other, s1);
  t.equal(retry.setStickyCookie, other.stickyId);

  // Full (maxconn) bound server: re-pick.
  const full = new Backend(backendConfig([{ maxconn: 1 }, {}], { sticky: { type: 'cookie', name: 'SY' } }), roundRobin);
  const f1 = full.servers[0]!;
  full.opened(f1, Date.now());
  const fr = req('192.0.2.1', f1.stickyId);
  t.equal(full.pick(fr), full.servers[1], 'bound server at maxconn: another one');
  t.equal(fr.setStickyCookie, full.servers[1]!.stickyId);
  void s2;
});

t.test('source: a client stays on its server, in TCP and HTTP mode', async (t) => {
  for (const mode of ['tcp', 'http'] as const) {
    const b = sourceBackend(60_000, 100, mode);
    const mine = b.pick(req('203.0.113.7'))!;
    for (let i = 0; i < 10; i++) {
      b.pick(req(`198.51.100.${i}`)); // other clients move the round-robin on
      t.equal(b.pick(req('203.0.113.7')), mine, `${mode}: same server`);
    }
  }
});

/** A clock moved by hand. lru-cache reads it at most once per ms of real time (ttlResolution),
 * hence the short real wait after each move. Starts above 0: lru-cache reads a 0 start as "no ttl". */
function handClock(): StickyClock & { advance(ms: number): Promise<void> } {
  let now = 1_000_000;
  return {
    now: () => now,
    async advance(ms: number) {
      now += ms;
      await sleep(5);
    },
  };
}

t.test('source: a binding expires ttl after its last use; each use renews it', async (t) => {
  const clock = handClock();
  const table = createStickyTable<Server>({ type: 'source', ttlMs: 30 * 60_000, size: 100 }, clock);
  const b = sourceBackend(60_000, 100);
  const byStickyId = new Map(b.servers.map((s) => [s.stickyId, s]));
  const [s1, s2] = b.servers as [Server, Server];
  table.bind(req('203.0.113.1'), s1);
  table.bind(req('203.0.113.2'), s2);
  // 203.0.113.1 is used every 20 minutes for two hours: never 30 minutes idle, never expires.
  for (let i = 1; i <= 6; i++) {
    await clock.advance(20 * 60_000);
    t.equal(table.lookup(req('203.0.113.1'), byStickyId), s1, `in use: still bound after ${i * 20} min`);
  }
  t.equal(table.lookup(req('203.0.113.2'), byStickyId), null, 'idle for two hours: expired');
  await clock.advance(30 * 60_000 - 1);
  t.equal(table.lookup(req('203.0.113.1'), byStickyId), s1, '1 ms before its ttl: bound');
  await clock.advance(30 * 60_000 + 1);
  t.equal(table.lookup(req('203.0.113.1'), byStickyId), null, 'ttl passed without use: expired');
});

t.test('source, through the backend: an expired binding is re-picked and re-bound', async (t) => {
  // Real time: the wait only has to be longer than the ttl, so a slow machine cannot fail it.
  const b = sourceBackend(50, 100);
  const [s1] = b.servers as [Server];
  t.equal(b.pick(req('203.0.113.1')), s1, 'bound to s1');
  t.equal(b.pick(req('203.0.113.1')), s1, 'still bound');
  await sleep(200);
  // Expired: a fresh round-robin pick (the cursor is on s2 now), and a new binding.
  const after = b.pick(req('203.0.113.1'))!;
  t.not(after, s1, 'expired: re-picked');
  t.equal(b.pick(req('203.0.113.1')), after, 're-bound');
});

t.test('source: the table keeps at most `size` clients (least recently used out)', async (t) => {
  const table = createStickyTable<Server>({ type: 'source', ttlMs: 60_000, size: 2 });
  const b = sourceBackend(60_000, 2);
  const byStickyId = new Map(b.servers.map((s) => [s.stickyId, s]));
  const [s1, s2, s3] = b.servers as [Server, Server, Server];
  table.bind(req('10.0.0.1'), s1);
  table.bind(req('10.0.0.2'), s2);
  t.equal(table.lookup(req('10.0.0.1'), byStickyId), s1, '10.0.0.1 used again: now most recent');
  table.bind(req('10.0.0.3'), s3);
  t.equal(table.lookup(req('10.0.0.2'), byStickyId), null, 'the least recently used is evicted');
  t.equal(table.lookup(req('10.0.0.1'), byStickyId), s1);
  t.equal(table.lookup(req('10.0.0.3'), byStickyId), s3);
});

t.test('source: DRAIN keeps bound clients and takes no new ones; MAINT re-binds', async (t) => {
  const b = sourceBackend(60_000, 1000);
  const [s1] = b.servers as [Server];
  t.equal(b.pick(req('203.0.113.1')), s1);
  setState(s1, 'drain');
  t.equal(b.pick(req('203.0.113.1')), s1, 'DRAIN: bound client stays');
  let fresh = 0;
  for (let i = 0; i < 30; i++) if (b.pick(req(`198.51.100.${i}`)) === s1) fresh++;
  t.equal(fresh, 0, 'DRAIN: no new client');
  setState(s1, 'maint');
  const moved = b.pick(req('203.0.113.1'))!;
  t.not(moved, s1, 'MAINT: re-picked');
  setState(s1, 'ready');
  t.equal(b.pick(req('203.0.113.1')), moved, 're-bound to the new server, not back to s1');
});

t.test('sticky settings survive a reload only when unchanged', async (t) => {
  const cfg = backendConfig([1, 1, 1], { sticky: { type: 'source', ttlMs: 60_000, size: 100 } });
  const b = new Backend(cfg, roundRobin);
  const s = b.pick(req('203.0.113.1'))!;
  b.pick(req('198.51.100.1'));
  b.apply({ ...cfg, servers: [...cfg.servers] }, roundRobin);
  t.equal(b.pick(req('203.0.113.1')), s, 'same sticky config: bindings kept');
  b.apply({ ...cfg, sticky: { type: 'source', ttlMs: 120_000, size: 100 } }, roundRobin);
  const fresh = b.pick(req('203.0.113.1'));
  t.not(fresh, s, 'new sticky settings: a new table, the client is picked afresh (round-robin moved on)');
  t.equal(b.pick(req('203.0.113.1')), fresh, 'and bound in the new table');
  b.apply({ ...cfg, sticky: null }, roundRobin);
  const spread = new Set([1, 2, 3].map(() => b.pick(req('203.0.113.1'))));
  t.equal(spread.size, 3, 'sticky removed: plain round-robin');
});

// End to end, through the proxy core: the Set-Cookie a real HTTP response carries, a second
// switchyard instance honouring it, and source stickiness on real TCP connections.

const stickyBackend = (addresses: string[], over: Parameters<typeof harness.backendConfig>[3] = {}) =>
  harness.backendConfig('web', 'http', addresses, {
    sticky: { type: 'cookie', name: 'SY_SERVER' },
    servers: serverConfigs(addresses.map((address, i) => ({ name: `app${i + 1}`, address }))),
    ...over,
  });

t.test('cookie, end to end: Set-Cookie on the first response, honoured by another instance', async (t) => {
  const apps = await Promise.all(['app1', 'app2', 'app3'].map((n) => harness.httpServer(n)));
  const addresses = apps.map((a) => a.address);
  const one = await harness.start(harness.config([harness.frontendConfig('fe', 'http', 'web')], [stickyBackend(addresses)]));
  // The second instance lists the servers in another order: the cookie still names the same one.
  const reversed = stickyBackend(addresses);
  const two = await harness.start(harness.config([harness.frontendConfig('fe', 'http', 'web')], [{ ...reversed, servers: [...reversed.servers].reverse() }]));
  t.teardown(async () => {
    await one.stop(100);
    await two.stop(100);
    for (const a of apps) await a.close();
  });
  const url = (sy: typeof one) => `http://127.0.0.1:${sy.frontendAddress('fe').port}/`;
  const get = async (sy: typeof one, cookie?: string) => {
    const res = await request(url(sy), { headers: cookie ? { cookie } : {} });
    return { body: await res.body.text(), setCookie: res.headers['set-cookie'] as string | undefined };
  };

  const first = await get(one);
  t.match(first.setCookie, /^SY_SERVER=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Lax$/, 'the first response sets the cookie');
  const cookie = first.setCookie!.split(';')[0]!;
  const backendOne = one.runtime().backends.get('web')!;
  const bound = backendOne.serverByName(first.body)!;
  t.equal(cookie, `SY_SERVER=${bound.stickyId}`, "the cookie is the server's stickyId");
  t.notMatch(cookie, /127\.0\.0\.1|app\d|%3A|:/, 'opaque: neither address nor name');
  for (let i = 0; i < 6; i++) {
    const r = await get(one, `other=1; ${cookie}`);
    t.equal(r.body, first.body, 'same server while the cookie is sent (round-robin would move on)');
    t.equal(r.setCookie, undefined, 'no Set-Cookie while the binding holds');
  }
  for (let i = 0; i < 4; i++) t.equal((await get(two, cookie)).body, first.body, 'the other instance honours the cookie');

  // DRAIN: bound requests stay; MAINT: re-picked and the cookie re-set, on either instance.
  bound.admin = 'drain';
  bound.noteChange('test: drain');
  t.equal((await get(one, cookie)).body, first.body, 'DRAIN keeps the bound session');
  bound.admin = 'maint';
  bound.noteChange('test: maint');
  const moved = await get(one, cookie);
  t.not(moved.body, first.body, 'MAINT: another server');
  t.equal(moved.setCookie?.split(';')[0], `SY_SERVER=${backendOne.serverByName(moved.body)!.stickyId}`, 'and the cookie now names it');
});

t.test('source, end to end over TCP: every connection of a client lands on the same server', async (t) => {
  const echoes = await Promise.all(['t1', 't2', 't3'].map((name) => harness.tcpServer((s) => s.end(name))));
  const addresses = echoes.map((e) => e.address);
  const cfg = (sticky: boolean) =>
    harness.config(
      [harness.frontendConfig('fe', 'tcp', 'tcpb')],
      [harness.backendConfig('tcpb', 'tcp', addresses, sticky ? { sticky: { type: 'source', ttlMs: 60_000, size: 1000 } } : {})],
    );
  const sticky = await harness.start(cfg(true));
  const plain = await harness.start(cfg(false));
  t.teardown(async () => {
    await sticky.stop(100);
    await plain.stop(100);
    for (const e of echoes) await e.close();
  });
  const greeting = (port: number) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const s = connect(port, '127.0.0.1');
      s.on('data', (d) => chunks.push(d));
      s.on('end', () => {
        s.end();
        resolve(Buffer.concat(chunks).toString());
      });
      s.on('error', reject);
    });
  const seen = async (sy: typeof sticky) => {
    const out: string[] = [];
    for (let i = 0; i < 6; i++) out.push(await greeting(sy.frontendAddress('fe').port));
    return out;
  };
  t.same(new Set(await seen(plain)).size, 3, 'control: without stickiness, connections rotate');
  const got = await seen(sticky);
  t.equal(new Set(got).size, 1, `with source stickiness: ${got.join(' ')}`);
});

t.test('a request in flight when cookie stickiness is turned off by a reload still gets its answer', async (t) => {
  // Balanced under `sticky: cookie`, answered after a reload removed it: the response must go
  // out (with the cookie the request was bound under, or none), not fail for want of a cookie name.
  const held: import('node:http').ServerResponse[] = [];
  const app = await harness.httpServer('app', (_req, res) => {
    held.push(res);
  });
  const cfg = (sticky: boolean) =>
    harness.config([harness.frontendConfig('fe', 'http', 'web')], [stickyBackend([app.address], sticky ? {} : { sticky: null })]);
  const sy = await harness.start(cfg(true));
  t.teardown(async () => {
    await sy.stop(100);
    await app.close();
  });
  const pending = request(`http://127.0.0.1:${sy.frontendAddress('fe').port}/`);
  while (held.length === 0) await sleep(5);
  t.equal((await sy.apply(cfg(false))).ok, true, 'reload: sticky off');
  held[0]!.end('app');
  const res = await pending;
  t.equal(res.statusCode, 200);
  t.equal(await res.body.text(), 'app');
  const cookie = res.headers['set-cookie'] as string | undefined;
  if (cookie !== undefined) t.match(cookie, /^SY_SERVER=[A-Za-z0-9_-]+;/, 'a cookie, if any, under its own name');
});
