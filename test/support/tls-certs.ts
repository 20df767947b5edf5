// Test certificates, made by the test run itself with Debian's openssl (never committed keys):
// a CA and leaf certificates signed by it, each in a fresh temporary folder.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  readonly dir: string;
  readonly caFile: string;
  readonly caPem: string;
  /** A leaf certificate for `names` (DNS names or IP:a.b.c.d); returns its files and PEMs. */
  issue(label: string, names: readonly string[], options?: { days?: number; clientAuth?: boolean }): TestCert;
  cleanup(): void;
}

export interface TestCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A new CA in a temporary folder (P-256 keys: quick to make). */
export function makeCa(name = 'switchyard-test-ca'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'sy-tls-'));
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '30',
      '-subj',
      `/CN=${name}`,
    ],
    dir,
  );
  const caFile = join(dir, 'ca.pem');
  return {
    dir,
    caFile,
    caPem: readFileSync(caFile, 'utf8'),
    issue(label, names, options = {}) {
      const san = names.map((n) => (n.startsWith('IP:') ? n : `DNS:${n}`)).join(',');
      writeFileSync(join(dir, `${label}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${options.clientAuth ? 'clientAuth' : 'serverAuth'}\n`);
      openssl(
        [
          'req',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          `${label}.key`,
          '-out',
          `${label}.csr`,
          '-subj',
          `/CN=${names[0]!.replace(/^IP:/, '')}`,
        ],
        dir,
      );
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${label}.csr`,
          '-CA',
          'ca.pem',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-out',
          `${label}.pem`,
          '-days',
          String(options.days ?? 30),
          '-extfile',
          `${label}.ext`,
        ],
        dir,
      );
      const certFile = join(dir, `${label}.pem`);
      const keyFile = join(dir, `${label}.key`);
      return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
