#!/usr/bin/env node
// Summary of a .cpuprofile (node --cpu-prof; bench/new-connection-profile.sh): busy time split
// into switchyard's JavaScript, Node's own JavaScript, GC, and native code (named entries such
// as writeBuffer, internalConnect, close are the syscalls under them), the top functions by
// self time, and each event-loop entry point's inclusive share. Startup is left out: counting
// starts at the first sample under an `onconnection`.
//
// Usage: node bench/cpuprofile-summary.js FILE.cpuprofile [TOP_N]
import { readFileSync } from 'node:fs';
const [file, topN = '40'] = process.argv.slice(2);
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = p.timeDeltas;
// parents, to skip startup: count from the first sample under a connection callback
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const under = (id, re) => {
  for (let x = id; x !== undefined; x = parent.get(x)) if (re.test(byId.get(x).callFrame.functionName)) return true;
  return false;
};
let first = p.samples.findIndex((id) => under(id, /^onconnection$/));
if (first < 0) first = 0;
for (let i = first; i < p.samples.length; i++) {
  const id = p.samples[i];
  self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0));
}
const fnKey = (n) => {
  const cf = n.callFrame;
  const url = cf.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^file:\/\/.*\/shared\/bench\//, 'bench/');
  return `${cf.functionName || '(anon)'} ${url}:${cf.lineNumber + 1}`;
};
const agg = new Map();
const cat = new Map();
let busy = 0;
function category(n) {
  const name = n.callFrame.functionName;
  const url = n.callFrame.url;
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'gc';
  if (name === '(program)') return 'program (native/libuv)';
  if (url === '') return 'native (syscalls, bindings)';
  // net's internalConnect calls the connect binding, whose time (connect(2): on loopback the
  // whole handshake) V8 books as internalConnect's own.
  if (name === 'internalConnect') return 'native (syscalls, bindings)';
  if (url.includes('/dist/')) return 'switchyard js';
  if (url.startsWith('node:')) return 'node internals js';
  return 'other js';
}
for (const [id, t] of self) {
  const n = byId.get(id);
  const c = category(n);
  cat.set(c, (cat.get(c) ?? 0) + t);
  if (c !== 'idle') {
    busy += t;
    const k = fnKey(n);
    agg.set(k, (agg.get(k) ?? 0) + t);
  }
}
console.log(`busy ${(busy / 1000).toFixed(0)} ms; categories (% of busy):`);
for (const [c, t] of [...cat].sort((a, b) => b[1] - a[1])) if (c !== 'idle') console.log(`  ${c.padEnd(26)} ${((100 * t) / busy).toFixed(1)}%`);
console.log(`top self time:`);
for (const [k, t] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, Number(topN))) console.log(`  ${((100 * t) / busy).toFixed(1).padStart(5)}%  ${k}`);
// inclusive per top-level frame under (root): what each event-loop callback costs
const incl = new Map();
function inclusive(id) {
  const n = byId.get(id);
  let t = self.get(id) ?? 0;
  for (const c of n.children ?? []) t += inclusive(c);
  incl.set(id, t);
  return t;
}
inclusive(p.nodes[0].id);
const roots = (byId.get(p.nodes[0].id).children ?? []).map((id) => byId.get(id));
console.log('top-level entries (inclusive %):');
const groups = new Map();
for (const r of roots) {
  const k = fnKey(r);
  groups.set(k, (groups.get(k) ?? 0) + incl.get(r.id));
}
for (const [k, t] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 15))
  if (!k.startsWith('(idle)')) console.log(`  ${((100 * t) / busy).toFixed(1).padStart(5)}%  ${k}`);
