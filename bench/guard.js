#!/usr/bin/env node
// `npm run bench:guard`: fails when switchyard got slower relative to a bare node:net pipe
// measured in the same run (bench/lib.js says why the pipe, and why CPU per request).
// Guarded, per mode (http, tcp), against bench/floors.json:
//   cpu_vs_pipe  pipe CPU/request ÷ switchyard CPU/request: catches a proxy that got more
//                expensive even when the load client is the bottleneck
//   rps_vs_pipe  switchyard requests/s ÷ pipe requests/s: catches stalls and lost concurrency
// and the same two with every request on a new connection (`new_connections` in floors.json:
// accept, server connect and close per request, where a Node proxy spends most; the pipe and
// the backend close too, so the ratio is still like for like).
//
//   node bench/guard.js                      measure, compare with the floors, exit 1 below one
//   node bench/guard.js --calibrate          measure (5 rounds) and write floors.json: the
//                                            measured medians times --margin (default 0.75)
//   --calibrate --runs N                     the whole measurement N times (a fresh backend,
//                                            pipe and switchyard each), floors from the lowest
//                                            of the N medians: one lucky run sets no floor
//   options: --rounds N --seconds S --connections C --workers N|auto --client-workers N
//            --no-new-connections (keep-alive figures only), --new-connections-only (with
//            --calibrate: sets the new_connections floors and keeps the others)
// A floor that is missing (null) fails the guard with the command that sets it.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { compare } from './lib.js';

const FLOORS = new URL('./floors.json', import.meta.url);
const MODES = ['http', 'tcp'];
const FIGURES = [
  ['cpu_vs_pipe', 'cpuVsPipe'],
  ['rps_vs_pipe', 'vsPipe'],
];

const { values } = parseArgs({
  options: {
    calibrate: { type: 'boolean', default: false },
    margin: { type: 'string', default: '0.75' },
    rounds: { type: 'string' },
    runs: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    workers: { type: 'string', default: '1' },
    'client-workers': { type: 'string', default: '0' },
    'new-connections': { type: 'boolean', default: true },
    'new-connections-only': { type: 'boolean', default: false },
  },
});

const settings = {
  rounds: Number(values.rounds ?? (values.calibrate ? 5 : 3)),
  seconds: Number(values.seconds),
  connections: Number(values.connections),
  workers: values.workers === 'auto' ? 'auto' : Number(values.workers),
  clientWorkers: Number(values['client-workers']),
};
const fmt = (v, digits = 3) => (v === null || v === undefined ? 'n/a' : v.toFixed(digits));
const runs = values.calibrate ? Math.max(1, Number(values.runs)) : 1;

/** The lowest of several runs' figures, per mode (what a floor must stay under). */
function lowest(results) {
  const out = { ...results[0] };
  for (const mode of MODES) {
    out[mode] = { ...results[0][mode] };
    for (const [, field] of FIGURES) {
      const values = results.map((r) => r[mode][field]).filter((v) => v !== null && v !== undefined);
      out[mode][field] = values.length === results.length ? Math.min(...values) : null;
    }
  }
  out.runs = results.map((r) => Object.fromEntries(MODES.map((mode) => [mode, Object.fromEntries(FIGURES.map(([key, field]) => [key, r[mode][field]]))])));
  return out;
}

/** One pass measured `runs` times; each run printed as it ends. */
async function pass(label, options) {
  const results = [];
  for (let i = 0; i < runs; i++) {
    const r = await compare(options);
    if (runs > 1)
      console.log(
        `bench:guard [${label}] run ${i + 1}/${runs}: ${MODES.map((m) => `${m} ${fmt(r[m].vsPipe)} x pipe req/s, pipe/switchyard CPU ${fmt(r[m].cpuVsPipe)}`).join('; ')}`,
      );
    results.push(r);
  }
  return results.length === 1 ? results[0] : lowest(results);
}

// Two passes: keep-alive, then a new connection per request. Each has its own pipe figures.
const passes = [];
if (!values['new-connections-only']) passes.push({ label: 'keep-alive', section: null, r: await pass('keep-alive', settings) });
if (values['new-connections'] || values['new-connections-only'])
  passes.push({ label: 'new connections', section: 'new_connections', r: await pass('new connections', { ...settings, close: true }) });

for (const { label, r } of passes) {
  console.log(`bench:guard [${label}] direct ${fmt(r.direct, 0)} req/s; bare pipe ${fmt(r.pipe.rps, 0)} req/s, ${fmt(r.pipe.cpuUs, 1)} µs CPU/request`);
  for (const mode of MODES) {
    const m = r[mode];
    console.log(
      `bench:guard [${label}] switchyard ${mode}: ${fmt(m.rps, 0)} req/s (${fmt(m.ratio)} x direct, ${fmt(m.vsPipe)} x pipe), ${fmt(m.cpuUs, 1)} µs CPU/request (pipe/switchyard ${fmt(m.cpuVsPipe)})`,
    );
  }
}
const r0 = passes[0].r;
console.log(
  `bench:guard (${r0.rounds} rounds of ${r0.seconds}s, ${r0.connections} connections, workers: ${r0.workers}, client workers: ${r0.clientWorkers}, Node ${r0.node})`,
);

/** The floors object of a pass: the top level for keep-alive, `new_connections` for the other. */
const sectionOf = (floors, section) => (section === null ? floors : (floors[section] ??= {}));

if (values.calibrate) {
  const margin = Number(values.margin);
  const kept = passes.length === 1 ? JSON.parse(readFileSync(FLOORS, 'utf8')) : {};
  const note = `Floors = measured median x ${margin} (margin for this noisy shared machine)${runs > 1 ? `, the lowest of ${runs} runs (each run's figures in *_runs)` : ''}. Set by \`node bench/guard.js --calibrate${runs > 1 ? ` --runs ${runs}` : ''}${passes.length === 1 && passes[0].section !== null ? ' --new-connections-only' : ''}\` on ${new Date().toISOString().slice(0, 10)}, Node ${r0.node}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; ${r0.rounds} rounds of ${r0.seconds}s, ${r0.connections} connections, workers ${r0.workers}. new_connections: every request on a new connection (Connection: close).`;
  const floors = { ...kept };
  for (const { section, r } of passes) {
    const target = sectionOf(floors, section);
    for (const mode of MODES) {
      target[mode] = {};
      for (const [key, field] of FIGURES) {
        const measured = r[mode][field];
        target[mode][key] = measured === null ? null : Math.floor(measured * margin * 1000) / 1000;
        target[mode][`${key}_measured`] = measured === null ? null : Math.round(measured * 1000) / 1000;
        if (r.runs !== undefined)
          target[mode][`${key}_runs`] = r.runs.map((run) => (run[mode][key] === null ? null : Math.round(run[mode][key] * 1000) / 1000));
      }
    }
  }
  // Only the floors written carry this note: --new-connections-only keeps the keep-alive ones'.
  if (passes.length === 1 && passes[0].section !== null) sectionOf(floors, passes[0].section)._note = note;
  else floors._note = note;
  // Written as the project's prettier formats it, so that `npm test`'s format check passes.
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(FLOORS)) ?? {};
  writeFileSync(FLOORS, await prettier.format(JSON.stringify(floors, null, 2), { ...options, filepath: FLOORS.pathname }));
  console.log(`bench:guard wrote ${FLOORS.pathname}`);
  process.exit(0);
}

const floors = JSON.parse(readFileSync(FLOORS, 'utf8'));
let failed = false;
for (const { label, section, r } of passes) {
  const target = sectionOf(floors, section);
  for (const mode of MODES) {
    for (const [key, field] of FIGURES) {
      const floor = target[mode]?.[key] ?? null;
      const measured = r[mode][field];
      let verdict;
      if (floor === null) verdict = 'NO FLOOR (set it: node bench/guard.js --calibrate)';
      else if (measured === null) verdict = 'NOT MEASURED (no /proc?)';
      else verdict = measured >= floor ? 'ok' : 'BELOW FLOOR';
      if (verdict !== 'ok') failed = true;
      console.log(`bench:guard [${label}] ${mode} ${key}: ${fmt(measured)} (floor ${fmt(floor)}) ${verdict}`);
    }
  }
}
process.exit(failed ? 1 : 0);
