import t from 'tap';
import { roundRobin } from '../src/strategies/round-robin.js';

const mk = (name: string, weight: number) => ({ id: name, name, address: name, weight, active: 0 });

t.test('smooth weighted round-robin gives 1:2:1 exactly and spread out', async (t) => {
  const rr = roundRobin();
  const a = mk('a', 1), b = mk('b', 2), c = mk('c', 1);
  rr.update([a, b, c]);
  const seq: string[] = [];
  for (let i = 0; i < 40; i++) seq.push(rr.pick({ clientIp: '1.1.1.1', avoid: null })!.name);
  t.same(seq.slice(0, 4), ['b', 'a', 'c', 'b'], 'nginx smooth WRR order');
  const count = (n: string) => seq.filter((s) => s === n).length;
  t.equal(count('a'), 10);
  t.equal(count('b'), 20);
  t.equal(count('c'), 10);
  for (let i = 1; i < seq.length; i++) if (seq[i] !== 'b') t.not(seq[i], seq[i - 1], 'no burst of a light server');
});
