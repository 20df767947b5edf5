#!/usr/bin/env node
// `npm run bench:guard`: fails when switchyard got slower relative to a bare node:net pipe
// measured in the same run (bench/lib.js says why the pipe, and why CPU per request).
// Guarded, per mode (http, tcp), against bench/floors.json:
//   cpu_vs_pipe  pipe CPU/request ÷ switchyard CPU/request: catches a proxy that got more
//                expensive even when the load client is the bottleneck
//   rps_vs_pipe  switchyard requests/s ÷ pipe requests/s: catches stalls and lost concurrency
//
//   node bench/guard.js                      measure, compare with the floors, exit 1 below one
//   node bench/guard.js --calibrate          measure (5 rounds) and write floors.json: the
//                                            measured medians times --margin (default 0.75)
//   options: --rounds N --seconds S --connections C --workers N|auto --client-workers N
// A floor that is missing (null) fails the guard with the command that sets it.
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { compare } from './lib.js';

const FLOORS = new URL('./floors.json', import.meta.url);
const MODES = ['http', 'tcp'];
const FIGURES = [['cpu_vs_pipe', 'cpuVsPipe'], ['rps_vs_pipe', 'vsPipe']];

const { values } = parseArgs({ options: {
  calibrate: { type: 'boolean', default: false },
  margin: { type: 'string', default: '0.75' },
  rounds: { type: 'string' },
  seconds: { type: 'string', default: '3' },
  connections: { type: 'string', default: '64' },
  workers: { type: 'string', default: '1' },
  'client-workers': { type: 'string', default: '0' },
} });

const r = await compare({
  rounds: Number(values.rounds ?? (values.calibrate ? 5 : 3)),
  seconds: Number(values.seconds),
  connections: Number(values.connections),
  workers: values.workers === 'auto' ? 'auto' : Number(values.workers),
  clientWorkers: Number(values['client-workers']),
});

const fmt = (v, digits = 3) => (v === null || v === undefined ? 'n/a' : v.toFixed(digits));
console.log(`bench:guard direct ${fmt(r.direct, 0)} req/s; bare pipe ${fmt(r.pipe.rps, 0)} req/s, ${fmt(r.pipe.cpuUs, 1)} µs CPU/request`);
for (const mode of MODES) {
  const m = r[mode];
  console.log(`bench:guard switchyard ${mode}: ${fmt(m.rps, 0)} req/s (${fmt(m.ratio)} x direct, ${fmt(m.vsPipe)} x pipe), ${fmt(m.cpuUs, 1)} µs CPU/request (pipe/switchyard ${fmt(m.cpuVsPipe)})`);
}
console.log(`bench:guard (${r.rounds} rounds of ${r.seconds}s, ${r.connections} connections, workers: ${r.workers}, client workers: ${r.clientWorkers}, Node ${r.node})`);

if (values.calibrate) {
  const margin = Number(values.margin);
  const floors = {
    _note: `Floors = measured median x ${margin} (margin for this noisy shared machine). Set by \`node bench/guard.js --calibrate\` on ${new Date().toISOString().slice(0, 10)}, Node ${r.node}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; ${r.rounds} rounds of ${r.seconds}s, ${r.connections} connections, workers ${r.workers}.`,
  };
  for (const mode of MODES) {
    floors[mode] = {};
    for (const [key, field] of FIGURES) {
      const measured = r[mode][field];
      floors[mode][key] = measured === null ? null : Math.floor(measured * margin * 1000) / 1000;
      floors[mode][`${key}_measured`] = measured === null ? null : Math.round(measured * 1000) / 1000;
    }
  }
  writeFileSync(FLOORS, `${JSON.stringify(floors, null, 2)}\n`);
  console.log(`bench:guard wrote ${FLOORS.pathname}`);
  process.exit(0);
}

const floors = JSON.parse(readFileSync(FLOORS, 'utf8'));
let failed = false;
for (const mode of MODES) {
  for (const [key, field] of FIGURES) {
    const floor = floors[mode]?.[key] ?? null;
    const measured = r[mode][field];
    let verdict;
    if (floor === null) verdict = 'NO FLOOR (set it: node bench/guard.js --calibrate)';
    else if (measured === null) verdict = 'NOT MEASURED (no /proc?)';
    else verdict = measured >= floor ? 'ok' : 'BELOW FLOOR';
    if (verdict !== 'ok') failed = true;
    console.log(`bench:guard ${mode} ${key}: ${fmt(measured)} (floor ${fmt(floor)}) ${verdict}`);
  }
}
process.exit(failed ? 1 : 0);
