// TLS settings in the config: certificates are read and checked at load, so `switchyard check`
// and a reload refuse a missing file, a file that is not PEM, a key that does not match its
// certificate or an unknown cipher list, naming the file and the key path, without quoting
// any key material; the running config stays on a refused reload.
import t from 'tap';
import { execFile } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { ConfigError } from '../src/errors.js';
import { loadConfigFile, parseConfig } from '../src/config/load.js';
import { startSwitchyard } from '../src/switchyard.js';
import { httpServer } from './support/proxy-harness.js';
import { makeCa } from './support/tls-certs.js';

const run = promisify(execFile);
const ca = makeCa();
t.teardown(() => ca.cleanup());
const a = ca.issue('a', ['a.test']);
const b = ca.issue('b', ['b.test']);
writeFileSync(join(ca.dir, 'junk.pem'), 'this is not a certificate\n');
writeFileSync(join(ca.dir, 'empty.key'), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');

function yaml(fe: string, be = ''): string {
  return `stats: { bind: 127.0.0.1:0 }
frontends:
  web:
    bind: 127.0.0.1:0
    backend: api
${fe}
backends:
  api:
    servers: [ { address: 127.0.0.1:9 } ]
${be}
`;
}

function issuesOf(text: string): string[] {
  try {
    parseConfig(text, join(ca.dir, 'switchyard.yaml'));
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((i) => `${i.path}: ${i.message}`);
    throw error;
  }
  return [];
}

t.test('a valid tls block loads: names and expiry read from the certificates, paths against the config folder', async (t) => {
  const config = parseConfig(
    yaml('    tls: { certificates: [ { cert: a.pem, key: a.key }, { cert: b.pem, key: b.key } ], min_version: TLSv1.3 }'),
    join(ca.dir, 'switchyard.yaml'),
  );
  const tls = config.frontends[0]!.tls!;
  t.same(
    tls.certificates.map((c) => c.names),
    [['a.test'], ['b.test']],
  );
  t.equal(tls.certificates[0]!.certFile, a.certFile);
  t.ok(tls.certificates[0]!.notAfter > Date.now() + 29 * 86_400_000, 'expiry from the certificate');
  t.equal(tls.minVersion, 'TLSv1.3');
  t.equal(config.frontends[0]!.timeouts.handshakeMs, 10_000);
});

t.test('bad certificates are refused with the key path and the file, never the content', async (t) => {
  t.match(issuesOf(yaml('    tls: { certificates: [ { cert: missing.pem, key: a.key } ] }')), [
    /^frontends\.web\.tls\.certificates\[0\]\.cert: cannot read .*missing\.pem: no such file$/,
  ]);
  t.match(issuesOf(yaml('    tls: { certificates: [ { cert: junk.pem, key: a.key } ] }')), [
    /^frontends\.web\.tls\.certificates\[0\]\.cert: not a PEM file: .*junk\.pem$/,
  ]);
  t.match(issuesOf(yaml('    tls: { certificates: [ { cert: a.pem, key: empty.key } ] }')), [
    /^frontends\.web\.tls\.certificates\[0\]\.key: not a PEM private key: .*empty\.key$/,
  ]);
  const mismatch = issuesOf(yaml('    tls: { certificates: [ { cert: a.pem, key: a.key }, { cert: a.pem, key: b.key } ] }'));
  t.match(mismatch, [/^frontends\.web\.tls\.certificates\[1\]\.key: the key .*b\.key does not match the certificate .*a\.pem$/]);
  t.match(issuesOf(yaml('    tls: { certificates: [ { cert: a.pem, key: a.key } ], ciphers: NOT-A-CIPHER }')), [/^frontends\.web\.tls\.ciphers: no cipher/]);
  t.match(issuesOf(yaml('    tls: { certificates: [] }')), [/^frontends\.web\.tls\.certificates: /]);
  t.match(issuesOf(yaml('', '    tls: { ca: nope.pem, cert: a.pem }')), [
    /backends\.api\.tls\.ca: cannot read .*nope\.pem: no such file/,
    /backends\.api\.tls\.key: mutual TLS needs both cert and key/,
  ]);
  t.match(issuesOf(yaml('', '    tls: { ca: junk.pem }')), [/backends\.api\.tls\.ca: not a PEM file: .*junk\.pem/]);
  t.match(issuesOf(yaml('    redirect_https: true\n    mode: tcp')), [/redirect_https needs mode http/, /mode tcp does not match/]);
  t.match(issuesOf(yaml('    sni_routes: { a.test: api }')), [/sni_routes needs mode tcp/]);
  const all = [...mismatch, ...issuesOf(yaml('    tls: { certificates: [ { cert: a.pem, key: empty.key } ] }'))].join('\n');
  t.notMatch(all, /BEGIN|PRIVATE KEY-----|AAAA/, 'no key material in the messages');
});

t.test('switchyard check names the bad file and exits 1', async (t) => {
  const file = join(ca.dir, 'check.yaml');
  writeFileSync(file, yaml('    tls: { certificates: [ { cert: a.pem, key: b.key } ] }'));
  const bin = join(process.cwd(), 'bin', 'switchyard.js');
  const r = await run(process.execPath, [bin, 'check', '--config', file]).then(
    () => null,
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
  t.ok(r !== null, 'exit status is not 0');
  t.equal(r!.code, 1);
  t.match(r!.stdout + r!.stderr, /frontends\.web\.tls\.certificates\[0\]\.key: the key .*b\.key does not match the certificate .*a\.pem/);
  writeFileSync(file, yaml('    tls: { certificates: [ { cert: a.pem, key: a.key } ] }'));
  const ok = await run(process.execPath, [bin, 'check', '--config', file]);
  t.match(ok.stdout, /^ok: 1 frontend/);
});

t.test('a reload with a broken certificate is refused; the running certificate keeps serving', async (t) => {
  const srv = await httpServer('a');
  const file = join(ca.dir, 'live.yaml');
  copyFileSync(a.certFile, join(ca.dir, 'live.pem'));
  copyFileSync(a.keyFile, join(ca.dir, 'live.key'));
  const text = yaml('    tls: { certificates: [ { cert: live.pem, key: live.key } ] }').replace('127.0.0.1:9', srv.address);
  writeFileSync(file, text);
  const sy = await startSwitchyard({ config: await loadConfigFile(file), loadConfig: loadConfigFile, watch: false, logger: pino({ level: 'silent' }) });
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const port = sy.frontendAddress('web').port;
  // The key file now belongs to another certificate.
  copyFileSync(b.keyFile, join(ca.dir, 'live.key'));
  const r = await sy.reload();
  t.equal(r.ok, false);
  t.match(r.errors.join('\n'), /live\.key does not match the certificate .*live\.pem/);
  t.equal(sy.runtime().generation, 1);
  const cn = await new Promise<string>((resolve, reject) => {
    const s = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername: 'a.test' }, () => {
      resolve(String(s.getPeerCertificate().subject.CN));
      s.end();
    });
    s.on('error', reject);
  });
  t.equal(cn, 'a.test', 'the certificate loaded before still serves');
});
