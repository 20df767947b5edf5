import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { StatsConfig } from '../config/types.js';

// Basic auth for the stats listener (RFC 7617). Credentials are compared as SHA-256 digests with
// timingSafeEqual: equal-length buffers whatever was sent, so the time taken says nothing about
// how much of the username or password matched.

export const REALM = 'switchyard stats';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * Whether a Host header is one of `allowed` (lowercase; an entry without a port matches any
 * port). Empty `allowed`: any host.
 */
export function hostAllowed(allowed: readonly string[], host: string | undefined): boolean {
  if (allowed.length === 0) return true;
  if (host === undefined) return false;
  const h = host.toLowerCase();
  const bare = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.replace(/:\d+$/, '');
  return allowed.includes(h) || allowed.includes(bare);
}

/** No Origin (curl, scripts), or an http(s) Origin naming this very host. `null` is refused. */
export function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  if (host === undefined) return false;
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host === host.toLowerCase();
  } catch {
    return false;
  }
}

/** `application/json`, with parameters or not (RFC 9110 §8.3.1: the type is case-insensitive). */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const semi = value.indexOf(';');
  return (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

export type AuthResult = 'ok' | 'missing' | 'wrong' | 'disabled';

export interface Credentials {
  readonly user: string;
  readonly pass: string;
}

/**
 * The credentials of an `Authorization: Basic <base64(user:pass)>` header (RFC 7617 §2: the
 * scheme is case-insensitive, the user name ends at the first colon); null when the header is
 * absent, of another scheme or without a colon.
 */
export function parseBasicAuth(header: string | undefined): Credentials | null {
  if (header === undefined) return null;
  const m = /^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header);
  if (m === null) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}

export class BasicAuth {
  private user: Buffer | null = null;
  private pass: Buffer | null = null;

  constructor(auth: StatsConfig['auth']) {
    this.set(auth);
  }

  /** New credentials (a reload changed them). */
  set(auth: StatsConfig['auth']): void {
    this.user = auth === null ? null : digest(auth.username);
    this.pass = auth === null ? null : digest(auth.password);
  }

  get enabled(): boolean {
    return this.user !== null;
  }

  check(req: IncomingMessage): AuthResult {
    if (this.user === null || this.pass === null) return 'disabled';
    const header = req.headers.authorization;
    if (header === undefined) return 'missing';
    const sent = parseBasicAuth(header);
    if (sent === null) return 'wrong';
    // Both compared every time (no short-circuit between them).
    const userOk = timingSafeEqual(digest(sent.user), this.user);
    const passOk = timingSafeEqual(digest(sent.pass), this.pass);
    return userOk && passOk ? 'ok' : 'wrong';
  }
}
