// The stats page's files as the stats listener serves them (src/stats/page-files.ts): the
// document with its security headers, the hashed script and stylesheet cached for good, 304 on
// a matching If-None-Match, content types, 404 for any other name (traversal included), and a
// clear 503 when the page was not built. Runs against the real build in dist/stats-page.
import t from 'tap';
import { request as httpRequest } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRuntime } from '../src/model/runtime.js';
import { startStats } from '../src/stats/listener.js';
import { notModified } from '../src/stats/page-files.js';
import { ADMIN_AUTH, FakeHost, quiet, sampleConfig, startFixture, statsConfig } from './support/stats-fixtures.js';

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request with the path exactly as written (no client-side normalisation of `..`). */
function get(base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function assetsOf(html: string): { script: string; style: string } {
  const script = /<script src="(\/assets\/main-[A-Z0-9]+\.js)"><\/script>/.exec(html)?.[1];
  const style = /<link rel="stylesheet" href="(\/assets\/page-[A-Z0-9]+\.css)" ?\/?>/.exec(html)?.[1];
  if (script === undefined || style === undefined) throw new Error(`the page names no built script or stylesheet:\n${html}`);
  return { script, style };
}

t.test('the document: security headers, revalidated by ETag, assets by hashed name', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  for (const path of ['/', '/stats']) {
    const page = await get(f.base, path);
    t.equal(page.status, 200, `${path} answers the page`);
    t.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    const csp = String(page.headers['content-security-policy']);
    t.match(csp, /script-src 'self'/, 'scripts from the listener only');
    t.match(csp, /style-src 'self'/, 'styles from the listener only');
    t.match(csp, /default-src 'none'/);
    t.match(csp, /frame-ancestors 'none'/);
    t.notMatch(csp, /unsafe|sha256-/, 'no inline code allowed');
    t.equal(page.headers['x-frame-options'], 'DENY');
    t.equal(page.headers['referrer-policy'], 'no-referrer');
    t.equal(page.headers['x-content-type-options'], 'nosniff');
    t.equal(page.headers['cache-control'], 'no-cache', 'the document is revalidated at each load');
    t.match(String(page.headers.etag), /^"[\w-]{22}"$/);
    t.notMatch(page.body, /<script>|<style|style="/, 'no inline script, stylesheet or style attribute');
    assetsOf(page.body);
  }
  const page = await get(f.base, '/');
  const etag = String(page.headers.etag);
  for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const again = await get(f.base, '/', { 'if-none-match': inm });
    t.equal(again.status, 304, `If-None-Match: ${inm} → 304`);
    t.equal(again.body, '', 'no body with 304');
    t.equal(again.headers.etag, etag);
    t.equal(again.headers['content-security-policy'], page.headers['content-security-policy'], 'the 304 keeps the page headers');
  }
  t.equal((await get(f.base, '/', { 'if-none-match': '"stale"' })).status, 200, 'another ETag → the page again');
  const head = await get(f.base, '/', {}, 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.body, '');
  t.equal(head.headers['content-length'], String(Buffer.byteLength(page.body)), 'HEAD tells the length of the page');

  const { script, style } = assetsOf(page.body);
  for (const [path, type] of [
    [script, 'text/javascript; charset=utf-8'],
    [style, 'text/css; charset=utf-8'],
    [`${script}.map`, 'application/json; charset=utf-8'],
  ] as const) {
    const r = await get(f.base, path);
    t.equal(r.status, 200, `${path} served`);
    t.equal(r.headers['content-type'], type, `${path}: ${type}`);
    t.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable', 'named by its content: cached for good');
    t.equal(r.headers['x-content-type-options'], 'nosniff');
    t.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
    t.ok(r.body.length > 0);
    const again = await get(f.base, path, { 'if-none-match': String(r.headers.etag) });
    t.equal(again.status, 304, `${path}: 304 on its ETag`);
    t.equal(again.headers['cache-control'], 'public, max-age=31536000, immutable');
  }
  t.match((await get(f.base, script)).body, /switchyard-page/, 'the bundle is the page script');
  t.match((await get(f.base, style)).body, /\.badge/, 'the stylesheet is the page style');
});

t.test('any other name under /assets/ is 404: nothing reaches the file system', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const probes = [
    '/assets/nope.js',
    '/assets/',
    '/assets/main.js',
    '/assets/../package.json',
    '/assets/%2e%2e/package.json',
    '/assets/..%2fpackage.json',
    '/assets/..%2f..%2fpackage.json',
    '/assets//etc/passwd',
    '/assets/%2fetc%2fpasswd',
    '/assets/assets',
    '/assets/index.html',
    '/index.html',
    '/assets/.',
    '/assets/..',
    '/assets/main.js%00.js',
  ];
  for (const path of probes) {
    const r = await get(f.base, path);
    t.equal(r.status, 404, `${path} → 404`);
    t.notMatch(r.body, /"name": "switchyard"|root:/, `${path}: no file content`);
  }
  const post = await get(f.base, '/assets/nope.js', {}, 'POST');
  t.equal(post.status, 405, 'assets are GET and HEAD only');
  t.equal(post.headers.allow, 'GET, HEAD');
});

t.test('read: private — the page needs the credentials, its script and style do not (they hold no data)', async (t) => {
  const f = await startFixture({ ...sampleConfig(), stats: statsConfig({ read: 'private' }) });
  t.teardown(() => f.close());
  t.equal((await get(f.base, '/')).status, 401);
  const page = await get(f.base, '/', { authorization: ADMIN_AUTH });
  t.equal(page.status, 200);
  const { script, style } = assetsOf(page.body);
  t.equal((await get(f.base, script)).status, 200);
  t.equal((await get(f.base, style)).status, 200);
});

t.test('a page that was not built: 503 that says so, the APIs still answer', async (t) => {
  const cfg = sampleConfig();
  const stats = await startStats(new FakeHost(await buildRuntime(cfg, null)), cfg.stats, quiet, { pageDir: mkdtempSync(join(tmpdir(), 'sy-nopage-')) });
  t.teardown(() => stats.close());
  const base = `http://127.0.0.1:${stats.address().port}`;
  const page = await get(base, '/');
  t.equal(page.status, 503);
  t.match(page.body, /npm run build/);
  t.equal((await get(base, '/api/stats')).status, 200);
  t.equal((await get(base, '/assets/main.js')).status, 404);
});

t.test('If-None-Match: weak comparison, lists, *', async (t) => {
  t.equal(notModified(undefined, '"a"'), false);
  t.equal(notModified('"a"', '"a"'), true);
  t.equal(notModified('W/"a"', '"a"'), true);
  t.equal(notModified('"b" ,  "a"', '"a"'), true);
  t.equal(notModified('*', '"a"'), true);
  t.equal(notModified('"b"', '"a"'), false);
  t.equal(notModified('a', '"a"'), false, 'an unquoted tag is not the ETag');
  t.equal(notModified('', '"a"'), false);
});
