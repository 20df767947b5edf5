// Micro-benchmark of strategy.pick() (benchmark.js): every built-in strategy at 3, 30 and 300
// servers. Goal (issue 3): under 1 µs per pick at 30 servers for every built-in.
//
//   npm run build && node bench/micro-strategies.js [--quick]
//
// Servers have mixed weights (1..3) and loads (0..4), so round-robin takes its weighted path and
// least-connections / random compare real loads; the client address rotates over 1,024 values
// so ip-hash hashes different strings. Each run is bounded (maxTime), ~20 s in all.
import Benchmark from 'benchmark';
import { roundRobin } from '../dist/strategies/round-robin.js';
import { leastConnections } from '../dist/strategies/least-connections.js';
import { ipHash } from '../dist/strategies/ip-hash.js';
import { random } from '../dist/strategies/random.js';

const strategies = Object.entries({
  'round-robin': roundRobin,
  'least-connections': leastConnections,
  'ip-hash': ipHash,
  random,
});
const sizes = [3, 30, 300];
const quick = process.argv.includes('--quick');
const maxTime = quick ? 0.25 : 1;

// Call fn by reference rather than letting benchmark.js decompile its body (which would lose
// the closure over the strategy). Costs one call per iteration, the same for every strategy.
Benchmark.support.decompilation = false;

const ips = Array.from({ length: 1024 }, (_, i) => `10.${(i * 37) & 255}.${(i >> 3) & 255}.${(i * 11) & 255}`);

function servers(n) {
  return Array.from({ length: n }, (_, i) => ({
    id: `static:s${i + 1}`,
    name: `s${i + 1}`,
    address: `10.0.${i >> 8}.${i & 255}:8080`,
    weight: 1 + (i % 3),
    active: i % 5,
  }));
}

const results = [];
for (const n of sizes) {
  const suite = new Benchmark.Suite(`${n} servers`);
  for (const [name, factory] of strategies) {
    const strategy = factory({});
    strategy.update(servers(n));
    const ctx = { clientIp: ips[0], avoid: null };
    // Warm up so the first samples measure optimised code, not the interpreter.
    for (let k = 0; k < 200_000; k++) {
      ctx.clientIp = ips[k & 1023];
      strategy.pick(ctx);
    }
    let i = 0;
    suite.add(
      `${name} @${n}`,
      () => {
        ctx.clientIp = ips[i++ & 1023];
        strategy.pick(ctx);
      },
      { maxTime, minSamples: 5 },
    );
  }
  suite.on('cycle', (event) => {
    const b = event.target;
    const ns = 1e9 / b.hz;
    results.push({ name: b.name, hz: b.hz, ns, rme: b.stats.rme });
    console.log(
      `${b.name.padEnd(26)} ${Math.round(b.hz).toLocaleString('en-US').padStart(13)} ops/sec  ${ns.toFixed(1).padStart(7)} ns/pick  ±${b.stats.rme.toFixed(1)}%`,
    );
  });
  suite.run({ async: false });
}

const slow = results.filter((r) => r.name.endsWith('@30') && r.ns >= 1000);
if (slow.length > 0) {
  console.log(`\nover 1 µs per pick at 30 servers: ${slow.map((r) => r.name).join(', ')}`);
  process.exitCode = 1;
} else {
  console.log('\nevery built-in picks in under 1 µs at 30 servers');
}
