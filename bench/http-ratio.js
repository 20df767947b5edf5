#!/usr/bin/env node
// `npm run bench`: throughput direct vs through switchyard (HTTP and TCP mode), in one run,
// printed as ratios. Usage: node bench/http-ratio.js [--rounds 3] [--seconds 5] [--connections 64] [--workers 1]
import { parseArgs } from 'node:util';
import { compare } from './lib.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
    workers: { type: 'string', default: '1' },
  },
});
const r = await compare({
  rounds: +values.rounds,
  seconds: +values.seconds,
  connections: +values.connections,
  workers: values.workers === 'auto' ? 'auto' : +values.workers,
});
console.log(`direct            ${r.direct.toFixed(0).padStart(8)} req/s`);
for (const mode of ['http', 'tcp'])
  console.log(`switchyard ${mode.padEnd(5)}  ${r[mode].rps.toFixed(0).padStart(8)} req/s   ${r[mode].ratio.toFixed(3)} x direct`);
console.log(`(${r.rounds} rounds of ${r.seconds}s, ${r.connections} keep-alive connections, 12-byte responses, workers: ${r.workers})`);
