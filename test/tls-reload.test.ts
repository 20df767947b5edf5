// Certificate hot reload: the certificate files are replaced and the config reloaded while a
// long download runs over TLS. New handshakes get the new certificate at once; the download
// that began under the old one finishes intact on its connection; nothing is dropped.
import t from 'tap';
import { copyFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { loadConfigFile } from '../src/config/load.js';
import { startSwitchyard } from '../src/switchyard.js';
import { TlsFileWatch } from '../src/tls-file-watch.js';
import { makeCa } from './support/tls-certs.js';

const ca = makeCa();
t.teardown(() => ca.cleanup());
const first = ca.issue('first', ['dl.test']);
const second = ca.issue('second', ['dl.test']);

const CHUNK = Buffer.alloc(64 * 1024, 'z');
const CHUNKS = 80; // 5 MiB, sent at the pace the test sets

t.test('new handshakes get the new certificate while a download under the old one completes', async (t) => {
  // The server sends a chunk each time the test lets it: the download is held open across the reload.
  let release: () => void = () => {};
  let sent = 0;
  const server: Server = createServer((req, res) => {
    if (req.url !== '/big') {
      res.end('small');
      return;
    }
    res.setHeader('content-length', String(CHUNK.length * CHUNKS));
    const next = () => {
      if (sent === CHUNKS) {
        res.end();
        return;
      }
      sent++;
      res.write(CHUNK);
      if (sent === 10)
        release = next; // pause a fifth of the way in
      else setImmediate(next);
    };
    next();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );

  copyFileSync(first.certFile, join(ca.dir, 'live.pem'));
  copyFileSync(first.keyFile, join(ca.dir, 'live.key'));
  const file = join(ca.dir, 'switchyard.yaml');
  writeFileSync(
    file,
    `stats: { bind: 127.0.0.1:0 }
frontends:
  web: { bind: 127.0.0.1:0, backend: api, tls: { certificates: [ { cert: live.pem, key: live.key } ] } }
backends:
  api: { servers: [ { address: 127.0.0.1:${(server.address() as AddressInfo).port} } ] }
`,
  );
  const sy = await startSwitchyard({ config: await loadConfigFile(file), loadConfig: loadConfigFile, watch: false, logger: pino({ level: 'silent' }) });
  t.teardown(() => sy.stop(500));
  const port = sy.frontendAddress('web').port;

  const fingerprintOf = (pem: string) =>
    createHash('sha256')
      .update(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'))
      .digest('hex');
  const presented = () =>
    new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername: 'dl.test' }, () => {
        resolve(s.getPeerCertificate().fingerprint256.replace(/:/g, '').toLowerCase());
        s.end();
      });
      s.on('error', reject);
    });
  t.equal(await presented(), fingerprintOf(first.cert));

  // The long download, over a connection made with the first certificate.
  let received = 0;
  let headerDone = false;
  let head = '';
  const download = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername: 'dl.test' });
  const downloadCert = await new Promise<string>((resolve) =>
    download.once('secureConnect', () => resolve(download.getPeerCertificate().fingerprint256.replace(/:/g, '').toLowerCase())),
  );
  const finished = new Promise<void>((resolve, reject) => {
    download.on('data', (d: Buffer) => {
      if (!headerDone) {
        head += d.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        headerDone = true;
        received += Buffer.byteLength(head.slice(end + 4), 'latin1');
      } else {
        received += d.length;
      }
      if (received === CHUNK.length * CHUNKS) resolve();
    });
    download.on('error', reject);
    download.on('close', () => (received === CHUNK.length * CHUNKS ? resolve() : reject(new Error(`download cut at ${received} bytes`))));
  });
  download.write('GET /big HTTP/1.1\r\nHost: dl.test\r\n\r\n');
  const deadline = Date.now() + 20_000;
  while (sent < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(sent, 10, 'the download is under way and held');

  // Replace the files (as certbot would) and reload.
  copyFileSync(second.certFile, join(ca.dir, 'live.pem'));
  copyFileSync(second.keyFile, join(ca.dir, 'live.key'));
  const r = await sy.reload();
  t.same(r.errors, []);
  t.equal(r.ok, true);
  t.equal(await presented(), fingerprintOf(second.cert), 'a new handshake gets the new certificate');

  release();
  await finished;
  t.equal(received, CHUNK.length * CHUNKS, 'every byte of the download arrived');
  t.equal(downloadCert, fingerprintOf(first.cert), 'on the connection made with the old certificate');
  t.match(head, /^HTTP\/1\.1 200/);
  download.end();
});

t.test('renewed certificate files are picked up without a signal (the folder is watched)', async (t) => {
  const dir = join(ca.dir, 'watched');
  const { mkdirSync, renameSync } = await import('node:fs');
  mkdirSync(dir);
  copyFileSync(first.certFile, join(dir, 'site.pem'));
  copyFileSync(first.keyFile, join(dir, 'site.key'));
  const file = join(ca.dir, 'watched.yaml');
  writeFileSync(
    file,
    `stats: { bind: 127.0.0.1:0 }
frontends:
  web: { bind: 127.0.0.1:0, backend: api, tls: { certificates: [ { cert: watched/site.pem, key: watched/site.key } ] } }
backends:
  api: { servers: [ { address: 127.0.0.1:9 } ] }
`,
  );
  const logger = pino({ level: 'silent' });
  const sy = await startSwitchyard({
    config: await loadConfigFile(file),
    loadConfig: loadConfigFile,
    watch: false,
    logger,
    components: async (s) => [new TlsFileWatch(() => s.reload(), logger)],
  });
  t.teardown(() => sy.stop(200));
  const port = sy.frontendAddress('web').port;
  const presented = () =>
    new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername: 'dl.test' }, () => {
        resolve(s.getPeerCertificate().fingerprint256);
        s.end();
      });
      s.on('error', reject);
    });
  const before = await presented();
  // As certbot does: new files written beside, then renamed over the live ones (key first).
  copyFileSync(second.keyFile, join(dir, 'site.key.new'));
  copyFileSync(second.certFile, join(dir, 'site.pem.new'));
  renameSync(join(dir, 'site.key.new'), join(dir, 'site.key'));
  renameSync(join(dir, 'site.pem.new'), join(dir, 'site.pem'));
  const deadline = Date.now() + 20_000;
  let now = before;
  while (now === before && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    now = await presented();
  }
  t.not(now, before, 'new handshakes get the renewed certificate');
  t.equal(sy.lastReload()?.ok, true);
});
