import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { StatsConfig } from '../config/types.js';

// Basic auth for the stats listener (RFC 7617). Credentials are compared as SHA-256 digests with
// timingSafeEqual: equal-length buffers whatever was sent, so the time taken says nothing about
// how much of the username or password matched.

export const REALM = 'switchyard stats';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export type AuthResult = 'ok' | 'missing' | 'wrong' | 'disabled';

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
    const m = /^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header);
    if (m === null) return 'wrong';
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return 'wrong';
    // Both compared every time (no short-circuit between them).
    const userOk = timingSafeEqual(digest(decoded.slice(0, colon)), this.user);
    const passOk = timingSafeEqual(digest(decoded.slice(colon + 1)), this.pass);
    return userOk && passOk ? 'ok' : 'wrong';
  }
}
