// Memory per connection (bench/memory.js, docs/performance.md): an idle client connection and
// a pooled server connection, 2,000 of each here (the documented figures use 10,000). The
// bounds are about twice today's figures (about 5 KB each, JS heap + external after a full GC)
// and well under what they were before read buffers came from a slab and head tables were made
// on first use (about 17 KB each): they catch a per-connection buffer or table coming back,
// not noise. The build (dist/) is what runs, as for the benchmarks.
import t from 'tap';
import { measureMemory } from '../bench/memory.js';

t.test('an idle client connection and a pooled server connection stay small', async (t) => {
  const r = await measureMemory({ connections: 2000 });
  t.comment(`idle client ${r.idleClient.js} B, pooled server ${r.pooledServer.js} B (JS heap + external)`);
  t.ok(r.idleClient.js > 0, 'an idle client connection costs something (the measurement sees it)');
  t.ok(r.idleClient.js < 10_000, `idle client connection: ${r.idleClient.js} bytes < 10,000`);
  t.ok(r.pooledServer.js > 0, 'a pooled server connection costs something');
  t.ok(r.pooledServer.js < 10_000, `pooled server connection: ${r.pooledServer.js} bytes < 10,000`);
});
