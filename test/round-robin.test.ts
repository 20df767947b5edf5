// round-robin: the exact smooth weighted sequence (nginx's), its spread, and that the sequence
// precomputed in update() is the one the algorithm gives step by step.
import t from 'tap';
import { roundRobin } from '../src/strategies/round-robin.js';
import type { StrategyServer } from '../src/strategies/strategy.js';
import { ctx, prng } from './support/strategy-conformance.js';

const mk = (name: string, weight: number): StrategyServer => ({ id: name, name, address: name, weight, active: 0 });

function sequence(weights: readonly number[], n: number): string[] {
  const rr = roundRobin();
  rr.update(weights.map((w, i) => mk(String.fromCharCode(97 + i), w)));
  return Array.from({ length: n }, () => rr.pick(ctx())?.name ?? '-');
}

/** nginx's smooth weighted round-robin, step by step: the reference the strategy must match. */
function referenceIndexes(weights: readonly number[], n: number): number[] {
  const current = weights.map(() => 0);
  const total = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i] === 0) continue; // weight 0 takes no part (the strategy drops it)
      current[i]! += weights[i]!;
      if (best === -1 || current[i]! > current[best]!) best = i; // first on a tie
    }
    current[best]! -= total;
    out.push(best);
  }
  return out;
}

const reference = (weights: readonly number[], n: number): string[] => referenceIndexes(weights, n).map((i) => String.fromCharCode(97 + i));

function longestRun(seq: readonly string[], name: string): number {
  let longest = 0;
  let run = 0;
  for (const s of seq) {
    run = s === name ? run + 1 : 0;
    if (run > longest) longest = run;
  }
  return longest;
}

t.test('1:2:1 over 40 requests: exactly 10/20/10, in the smooth pattern, no bursts', async (t) => {
  const seq = sequence([1, 2, 1], 40);
  t.same(seq, Array.from({ length: 10 }, () => ['b', 'a', 'c', 'b']).flat(), 'b a c b, ten times');
  const count = (n: string) => seq.filter((s) => s === n).length;
  t.same([count('a'), count('b'), count('c')], [10, 20, 10]);
  t.equal(longestRun(seq, 'b'), 2, 'the heavy server never gets more than 2 in a row');
  t.equal(longestRun(seq, 'a'), 1, 'a light server never twice in a row');
  t.equal(longestRun(seq, 'c'), 1);
  // Spread: every window of 4 consecutive requests (one period) holds exactly 1 a, 2 b, 1 c.
  for (let i = 0; i + 4 <= seq.length; i++) {
    const w = seq
      .slice(i, i + 4)
      .sort()
      .join('');
    t.equal(w, 'abbc', `requests ${i + 1}..${i + 4}`);
  }
});

t.test('matches nginx step by step for assorted weights (table)', async (t) => {
  const cases: number[][] = [
    [5, 1, 1], // nginx's own example: a a b a c a a
    [1, 1, 1],
    [3, 0, 1],
    [2, 4, 6], // gcd 2: the same choices as 1:2:3
    [7, 3, 1, 1],
    [256, 1],
    [10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
  ];
  t.same(sequence([5, 1, 1], 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a'], "nginx's documented 5:1:1");
  for (const w of cases) {
    const total = w.reduce((a, b) => a + b, 0);
    t.same(sequence(w, 3 * total + 5), reference(w, 3 * total + 5), w.join(':'));
  }
  const rnd = prng(7);
  for (let k = 0; k < 20; k++) {
    const w = Array.from({ length: 2 + Math.floor(rnd() * 12) }, () => Math.floor(rnd() * 20));
    if (!w.some((x) => x > 0)) w[0] = 1;
    t.same(sequence(w, 200), reference(w, 200), `random weights ${w.join(':')}`);
  }
});

t.test('a backend too large to precompute runs the same algorithm live', async (t) => {
  // 300 servers with weights 1..256: period x servers is beyond the precompute budget.
  const rnd = prng(11);
  const w = Array.from({ length: 300 }, () => 1 + Math.floor(rnd() * 256));
  const rr = roundRobin();
  const set = w.map((x, i) => mk(`s${i}`, x));
  rr.update(set);
  const got = Array.from({ length: 3000 }, () => set.indexOf(rr.pick(ctx())!));
  const want = referenceIndexes(w, 3000);
  t.same(got, want);
  // A retry on the live path: the server a plain pick would have given (twin, in the same
  // state) is avoided; and any avoided server, after that.
  const twin = roundRobin();
  twin.update(set);
  for (let i = 0; i < 3000; i++) twin.pick(ctx());
  const next = twin.pick(ctx())!;
  t.not(rr.pick(ctx('192.0.2.1', next)), next, 'the would-be pick avoided');
  let hits = 0;
  for (let i = 0; i < 500; i++) if (rr.pick(ctx('192.0.2.1', set[i % 300])) === set[i % 300]) hits++;
  t.equal(hits, 0, 'no avoided server returned');
});

t.test('fractional weights (not from a config, which has integers) run the live algorithm', async (t) => {
  const w = [1.5, 0.5, 1];
  t.same(sequence(w, 30), reference(w, 30));
});

t.test('a retry takes the next server in turn; a change keeps the position', async (t) => {
  const rr = roundRobin();
  const [a, b, c] = [mk('a', 1), mk('b', 2), mk('c', 1)];
  rr.update([a, b, c]);
  t.equal(rr.pick(ctx('192.0.2.1', b))!.name, 'a', 'b avoided: a, the next in the sequence');
  t.equal(rr.pick(ctx())!.name, 'c');
  t.equal(rr.pick(ctx('192.0.2.1', b))!.name, 'a', 'b b a ahead, b avoided: both b entries skipped');
  t.equal(rr.pick(ctx())!.name, 'c', 'then on in the sequence');
  // Equal weights: a change of set does not restart at the first server.
  const eq = roundRobin();
  const set = [mk('a', 1), mk('b', 1), mk('c', 1)];
  eq.update(set);
  t.equal(eq.pick(ctx())!.name, 'a');
  t.equal(eq.pick(ctx())!.name, 'b');
  eq.update(set);
  t.equal(eq.pick(ctx())!.name, 'c', 'a refresh with the same servers keeps the turn');
});
