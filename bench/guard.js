#!/usr/bin/env node
// `npm run bench:guard`: fails when switchyard's throughput, as a ratio of a direct connection
// measured in the same run, falls below the floors kept in bench/floors.json. The floors are
// set from measured figures with a margin for this noisy shared machine (see that file).
import { readFileSync } from 'node:fs';
import { compare } from './lib.js';

const floors = JSON.parse(readFileSync(new URL('./floors.json', import.meta.url), 'utf8'));
const r = await compare({ rounds: 3, seconds: 3 });
let failed = false;
for (const mode of ['http', 'tcp']) {
  const floor = floors[mode];
  const ok = r[mode].ratio >= floor;
  if (!ok) failed = true;
  console.log(`bench:guard ${mode}: ${r[mode].ratio.toFixed(3)} x direct (floor ${floor}) ${ok ? 'ok' : 'BELOW FLOOR'}`);
}
process.exit(failed ? 1 : 0);
