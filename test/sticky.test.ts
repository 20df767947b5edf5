// Sticky sessions, through Backend.pick as the proxy core calls it: the cookie table (HTTP) and
// the source table with expiry and a size limit (TCP and HTTP), with DRAIN honoured.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backend } from '../src/model/backend.js';
import type { Server } from '../src/model/server.js';
import { roundRobin } from '../src/strategies/round-robin.js';
import { createStickyTable, type BalanceContext } from '../src/strategies/sticky.js';
import { backendConfig } from './support/backend-config.js';

const req = (clientIp: string, stickyCookie: string | null = null, avoid: Server | null = null): BalanceContext =>
  ({ clientIp, avoid, stickyCookie, setStickyCookie: null });

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
  t.same(a.servers.map((s) => s.stickyId), b.servers.map((s) => s.stickyId));
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

t.test('source: bindings expire after ttl of inactivity, refreshed by use', async (t) => {
  // Real timers, with wide margins for a loaded CI machine: ttl 150 ms, used every 25 ms.
  const b = sourceBackend(150, 100);
  const [s1] = b.servers as [Server];
  t.equal(b.pick(req('203.0.113.1')), s1, 'bound to s1');
  // Used every 25 ms for 250 ms: longer than the ttl, but each use refreshes it.
  for (let i = 0; i < 10; i++) {
    await sleep(25);
    t.equal(b.pick(req('203.0.113.1')), s1, `still bound after ${(i + 1) * 25} ms`);
  }
  await sleep(400);
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
});
