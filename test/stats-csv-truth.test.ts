// CSV truth: no column that looks measured but is constant. `pid` is 1 in a single process
// (HAProxy's relative process number) and empty when rows add up several workers; `eint`
// (internal errors per proxy) is something switchyard cannot attribute, so it stays empty on
// every row, as HAProxy leaves unknown fields empty.
import t from 'tap';
import { request } from 'undici';
import { parseCsv, sampleConfig, startFixture } from './support/stats-fixtures.js';

async function csvRows(workers: number) {
  const f = await startFixture({ ...sampleConfig(), workers });
  const text = await (await request(`${f.base}/stats;csv`)).body.text();
  await f.close();
  return parseCsv(text).rows;
}

t.test('pid: 1 in a single process, empty when rows add up workers', async (t) => {
  const single = await csvRows(1);
  t.ok(single.length > 2);
  t.ok(
    single.every((r) => r.pid === '1'),
    'every row of a single process says 1',
  );
  const cluster = await csvRows(4);
  t.ok(
    cluster.every((r) => r.pid === ''),
    'with workers, no row claims one process number',
  );
});

t.test('eint is empty on every row (not a constant 0 that looks measured)', async (t) => {
  const rows = await csvRows(1);
  for (const r of rows) t.equal(r.eint, '', `${r.pxname}/${r.svname}`);
});
