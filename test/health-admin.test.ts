// Admin states (contract "Server states"), set the way the stats admin API sets them
// (setAdminState), honoured by every strategy — the built-ins and the user example — and by
// both kinds of sticky table: MAINT takes no traffic at all, DRAIN only sticky sessions already
// bound to it, and `ready` brings the server back.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { setAdminState } from '../src/model/admin-state.js';
import { Backend } from '../src/model/backend.js';
import type { Server } from '../src/model/server.js';
import { builtinStrategyNames, loadStrategyFactory } from '../src/strategies/registry.js';
import type { BalanceContext } from '../src/strategies/sticky.js';
import type { StickyConfig } from '../src/config/types.js';
import { backendConfig } from './support/backend-config.js';

const USER_EXAMPLE = fileURLToPath(new URL('../examples/strategies/weighted-first.js', import.meta.url));
const STRATEGIES = [...builtinStrategyNames(), USER_EXAMPLE];
const label = (name: string) => (name === USER_EXAMPLE ? 'weighted-first (user example)' : name);

const req = (clientIp: string, stickyCookie: string | null = null): BalanceContext => ({ clientIp, avoid: null, stickyCookie, setStickyCookie: null });
const ip = (i: number) => `10.${(i * 37) & 255}.${(i >> 3) & 255}.${(i * 11) & 255}`;

async function backendWith(strategy: string, sticky: StickyConfig | null = null): Promise<Backend> {
  const factory = await loadStrategyFactory(strategy, null);
  return new Backend(backendConfig([1, 1, 1], { strategy, sticky }), factory);
}

/** Picks from many clients, each counted as an open connection (so filling strategies move on). */
function spread(b: Backend, n: number, from = 0): Map<string, number> {
  const seen = new Map<string, number>();
  const opened: Server[] = [];
  for (let i = from; i < from + n; i++) {
    const s = b.pick(req(ip(i)));
    if (s === null) continue;
    b.opened(s, Date.now());
    opened.push(s);
    seen.set(s.name, (seen.get(s.name) ?? 0) + 1);
  }
  for (const s of opened) b.closed(s);
  return seen;
}

for (const strategy of STRATEGIES) {
  t.test(`${label(strategy)}: MAINT and DRAIN servers get no new traffic; ready brings them back`, async (t) => {
    const b = await backendWith(strategy);
    const [s1, s2] = b.servers as [Server, Server, Server];
    t.same([...spread(b, 300).keys()].sort(), ['s1', 's2', 's3'], 'all three serve at first');

    t.equal(setAdminState(s1, 'maint'), true);
    t.equal(setAdminState(s2, 'drain'), true);
    t.equal(s1.state, 'MAINT');
    t.equal(s2.state, 'DRAIN');
    t.same([...spread(b, 300, 1000).keys()], ['s3'], 'only the ready server is picked');

    setAdminState(s1, 'ready');
    setAdminState(s2, 'ready');
    t.same([...spread(b, 300, 2000).keys()].sort(), ['s1', 's2', 's3'], 'back in rotation');

    // Every server out: nothing is picked (503), never an ineligible server.
    for (const s of b.servers) setAdminState(s, 'maint');
    t.equal(b.pick(req('192.0.2.9')), null, 'all MAINT: no server');
    for (const s of b.servers) setAdminState(s, 'drain');
    t.equal(b.pick(req('192.0.2.9')), null, 'all DRAIN, no sticky session: no server');
  });
}

const STICKY: StickyConfig[] = [
  { type: 'cookie', name: 'SY_SERVER' },
  { type: 'source', ttlMs: 60_000, size: 1000 },
];

for (const strategy of STRATEGIES) {
  for (const sticky of STICKY) {
    t.test(`${label(strategy)} + ${sticky.type} stickiness: DRAIN keeps bound clients only; MAINT moves them`, async (t) => {
      const b = await backendWith(strategy, sticky);
      // Bind 30 clients; keep their cookie (cookie table) or rely on their address (source table).
      const bound = new Map<string, { server: Server; cookie: string | null }>();
      for (let i = 0; i < 30; i++) {
        const r = req(ip(i));
        const s = b.pick(r)!;
        b.opened(s, Date.now());
        bound.set(ip(i), { server: s, cookie: sticky.type === 'cookie' ? r.setStickyCookie : null });
      }
      const drained = [...bound.values()][0]!.server;
      const mine = [...bound].filter(([, v]) => v.server === drained);
      t.ok(mine.length > 0);
      setAdminState(drained, 'drain');
      for (const [client, { cookie }] of mine) t.equal(b.pick(req(client, cookie)), drained, `DRAIN: ${client} stays on ${drained.name}`);
      let fresh = 0;
      for (let i = 500; i < 600; i++) if (b.pick(req(ip(i))) === drained) fresh++;
      t.equal(fresh, 0, 'DRAIN: no new client is sent there');

      setAdminState(drained, 'maint');
      for (const [client, { cookie }] of mine) {
        const r = req(client, cookie);
        const got = b.pick(r)!;
        t.not(got, drained, `MAINT: ${client} is moved`);
        if (sticky.type === 'cookie') t.equal(r.setStickyCookie, got.stickyId, 'and its cookie re-set');
      }
      setAdminState(drained, 'ready');
      t.equal(drained.state, 'UP');
    });
  }
}
