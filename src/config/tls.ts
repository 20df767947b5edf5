import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { dirname, resolve } from 'node:path';
import type { BackendTlsConfig, FrontendTlsConfig, TlsKeyPair } from './types.js';
import type { RawBackend, RawConfig, RawFrontend } from './schema.js';
import type { CheckIssue } from './checks.js';
import type { PathSegment } from './source.js';

// Certificates, keys and CA bundles are read and checked when the config loads, so that
// `switchyard check` and a reload refuse a missing file, a file that is not PEM, or a key
// that does not belong to its certificate, naming the file, while the running config stays.
// What was checked is what serves: the PEM text goes into the frozen config. Messages name
// files and never quote their content (no key material in errors or logs).
//
// Reading is synchronous: it happens once per load on the cold path, a few small files.

export interface TlsLoad {
  readonly issues: CheckIssue[];
  readonly frontends: Map<string, FrontendTlsConfig>;
  readonly backends: Map<string, BackendTlsConfig>;
}

export function loadTlsFiles(raw: RawConfig, file: string | null): TlsLoad {
  const out: TlsLoad = { issues: [], frontends: new Map(), backends: new Map() };
  const base = file === null ? process.cwd() : dirname(resolve(file));
  for (const [name, fe] of Object.entries(raw.frontends)) {
    if (fe.tls === undefined) continue;
    const tls = frontendTls(fe.tls, base, ['frontends', name, 'tls'], out.issues);
    if (tls !== null) out.frontends.set(name, tls);
  }
  for (const [name, be] of Object.entries(raw.backends)) {
    if (be.tls === undefined) continue;
    const tls = backendTls(be.tls, base, ['backends', name, 'tls'], out.issues);
    if (tls !== null) out.backends.set(name, tls);
  }
  return out;
}

function frontendTls(raw: NonNullable<RawFrontend['tls']>, base: string, at: PathSegment[], issues: CheckIssue[]): FrontendTlsConfig | null {
  const before = issues.length;
  const certificates: TlsKeyPair[] = [];
  raw.certificates.forEach((c, i) => {
    const pair = keyPair(c.cert, c.key, base, [...at, 'certificates', i], issues);
    if (pair !== null) certificates.push(pair);
  });
  if (raw.min_version === 'TLSv1.3' && raw.max_version === 'TLSv1.2') issues.push({ path: [...at, 'max_version'], message: 'must not be below min_version' });
  if (issues.length > before) return null;
  const tls: FrontendTlsConfig = { certificates, minVersion: raw.min_version, maxVersion: raw.max_version, ciphers: raw.ciphers, strictSni: raw.strict_sni };
  // OpenSSL is the judge of a cipher list; the first certificate makes a complete context.
  const why = contextError({
    cert: certificates[0]!.cert,
    key: certificates[0]!.key,
    minVersion: tls.minVersion,
    maxVersion: tls.maxVersion,
    ciphers: tls.ciphers ?? undefined,
  });
  if (why !== null) {
    issues.push({ path: [...at, raw.ciphers !== null ? 'ciphers' : 'certificates'], message: why });
    return null;
  }
  return tls;
}

function backendTls(raw: NonNullable<RawBackend['tls']>, base: string, at: PathSegment[], issues: CheckIssue[]): BackendTlsConfig | null {
  const before = issues.length;
  let ca: string | null = null;
  let caFile: string | null = null;
  if (raw.ca !== null) {
    caFile = resolve(base, raw.ca);
    ca = readPem(caFile, [...at, 'ca'], issues);
    if (ca !== null && !parsesAsCertificate(ca)) issues.push({ path: [...at, 'ca'], message: `not a PEM certificate: ${caFile}` });
  }
  let clientCert: TlsKeyPair | null = null;
  if ((raw.cert === null) !== (raw.key === null)) {
    issues.push({ path: [...at, raw.cert === null ? 'cert' : 'key'], message: 'mutual TLS needs both cert and key' });
  } else if (raw.cert !== null && raw.key !== null) {
    clientCert = keyPair(raw.cert, raw.key, base, at, issues);
  }
  if (issues.length > before) return null;
  const why = contextError({
    ca: ca ?? undefined,
    cert: clientCert?.cert,
    key: clientCert?.key,
    minVersion: raw.min_version,
    ciphers: raw.ciphers ?? undefined,
  });
  if (why !== null) {
    issues.push({ path: [...at, raw.ciphers !== null ? 'ciphers' : 'ca'], message: why });
    return null;
  }
  return { ca, caFile, servername: raw.servername, verify: raw.verify, clientCert, minVersion: raw.min_version, ciphers: raw.ciphers };
}

/** Read and check one certificate + key pair; issues go at `at.cert` / `at.key`. */
function keyPair(certPath: string, keyPath: string, base: string, at: PathSegment[], issues: CheckIssue[]): TlsKeyPair | null {
  const certFile = resolve(base, certPath);
  const keyFile = resolve(base, keyPath);
  const certPem = readPem(certFile, [...at, 'cert'], issues);
  const keyPem = readPem(keyFile, [...at, 'key'], issues);
  if (certPem === null || keyPem === null) return null;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch {
    issues.push({ path: [...at, 'cert'], message: `not a PEM certificate: ${certFile}` });
    return null;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    const encrypted = /passphrase|encrypted/i.test((error as Error).message) || keyPem.includes('ENCRYPTED');
    issues.push({
      path: [...at, 'key'],
      message: encrypted ? `the key is encrypted (switchyard needs it unencrypted): ${keyFile}` : `not a PEM private key: ${keyFile}`,
    });
    return null;
  }
  if (!x509.checkPrivateKey(key)) {
    issues.push({ path: [...at, 'key'], message: `the key ${keyFile} does not match the certificate ${certFile}` });
    return null;
  }
  return { certFile, keyFile, cert: certPem, key: keyPem, names: certificateNames(x509), notAfter: Date.parse(x509.validTo) };
}

function readPem(path: string, at: PathSegment[], issues: CheckIssue[]): string | null {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (code ?? 'unreadable');
    issues.push({ path: at, message: `cannot read ${path}: ${reason}` });
    return null;
  }
  if (!text.includes('-----BEGIN ')) {
    issues.push({ path: at, message: `not a PEM file: ${path}` });
    return null;
  }
  return text;
}

function parsesAsCertificate(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/** OpenSSL's verdict on a context (a cipher list that matches nothing...), without file content. */
function contextError(options: Parameters<typeof createSecureContext>[0]): string | null {
  try {
    createSecureContext(options);
    return null;
  } catch (error) {
    const message = (error as Error).message;
    if (/no cipher match/i.test(message)) return 'no cipher in this list is known to OpenSSL';
    return `OpenSSL refused this TLS setup (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

/**
 * The DNS names a certificate serves, lower case: its subjectAltName DNS entries, or its
 * subject CN when it has none (RFC 6125 §6.4.4: CN only as a fallback).
 */
export function certificateNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  const names: string[] = [];
  if (san !== undefined) {
    for (const part of san.split(', ')) if (part.startsWith('DNS:')) names.push(part.slice(4).toLowerCase());
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject);
    if (cn !== null) names.push(cn[1]!.trim().toLowerCase());
  }
  return names;
}
