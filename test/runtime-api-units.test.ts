import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuntimeEdits } from '../src/model/runtime-edits.js';
import { splitCommands } from '../src/runtime-api/cli-session.js';
import { startRuntimeApi } from '../src/runtime-api/listener.js';
import { quietLogger } from './support/proxy-harness.js';
import type { ShowHost } from '../src/runtime-api/show.js';
import { ZERO_RATES } from '../src/stats/row.js';

// The runtime API's pieces on their own: edits laid over specs (and kept through a failed
// reload's rollback), the line splitter, and the socket file handling.

const spec = (id: string, weight = 1) => ({ id, name: id, host: '127.0.0.1', port: 1, weight, backup: false, maxconn: 0 });

t.test('RuntimeEdits: overrides, adds and deletes laid over specs', async (t) => {
  const e = new RuntimeEdits();
  t.ok(e.empty);
  const specs = [spec('static:a'), spec('static:b')];
  t.equal(e.apply(specs), specs, 'no edit: the same array, no copy');
  e.override('static:a', { weight: 5 });
  e.add(spec('runtime:c'));
  e.delete('static:b');
  t.same(
    e.apply(specs).map((s) => `${s.id}:${s.weight}`),
    ['static:a:5', 'runtime:c:1'],
  );
  e.delete('runtime:c');
  t.same(
    e.apply(specs).map((s) => s.id),
    ['static:a'],
    'deleting an added server removes it',
  );
  e.clear();
  t.ok(e.empty);
});

t.test('splitCommands: words, ; and backslash escapes', async (t) => {
  t.same(splitCommands('show  stat\t-1 4 -1'), [['show', 'stat', '-1', '4', '-1']]);
  t.same(splitCommands('a;b c;'), [['a'], ['b', 'c'], []]);
  t.same(splitCommands('set x a\\;b\\ c\\\\'), [['set', 'x', 'a;b c\\']]);
  t.same(splitCommands(''), [[]]);
});

t.test('socket files: any other file in the way is an error, an unknown owner too, nothing left open', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-rt-units-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const host = {
    runtime: () => ({ frontends: new Map(), backends: new Map() }),
    workers: () => null,
    sessions: () => [],
    startedAt: Date.now(),
  } as unknown as ShowHost;
  const rates = { ratesOf: () => ZERO_RATES };
  const base = { address: null, mode: 0o600, user: null, group: null, level: 'admin' as const, timeoutMs: 1000 };
  writeFileSync(join(dir, 'plain'), 'not a socket');
  await t.rejects(startRuntimeApi(host, [{ ...base, path: join(dir, 'plain') }], quietLogger, { rates, version: 'x' }), /exists and is not a socket/);
  await t.rejects(
    startRuntimeApi(host, [{ ...base, path: join(dir, 'u.sock'), user: 'no-such-user-here' }], quietLogger, { rates, version: 'x' }),
    /unknown user/,
  );
  const api = await startRuntimeApi(host, [{ ...base, path: join(dir, 'ok.sock'), user: '0', group: 'root' }], quietLogger, { rates, version: 'x' });
  t.same(api.addresses(), [join(dir, 'ok.sock')]);
  await api.stop();
});
