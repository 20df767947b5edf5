import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';

// The stats page's files, as scripts/build-page.js leaves them in dist/stats-page/: index.html
// and assets/ (script and stylesheet named by a hash of their content, with source maps). Read
// once into memory when the listener starts (a few tens of KB) and served from there: a
// request can only name a file of that list, so no path reaches the file system.
// Caching: an asset's name changes with its content, so it is cached for good (immutable);
// index.html is revalidated on every load (no-cache) and answered 304 when its ETag matches.

/** dist/stats-page of this package: two levels up from src/stats/ (tests) or dist/stats/ (built). */
const PAGE_DIR = fileURLToPath(new URL('../../dist/stats-page/', import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

export interface StaticFile {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly etag: string;
}

function staticFile(body: Buffer, name: string, cacheControl: string): StaticFile {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return {
    body,
    etag,
    headers: {
      'content-type': TYPES[extname(name)] ?? 'application/octet-stream',
      'content-length': String(body.length),
      'cache-control': cacheControl,
      etag,
      'x-content-type-options': 'nosniff',
    },
  };
}

export class PageFiles {
  private constructor(
    /** index.html; null when the page was not built. */
    readonly index: StaticFile | null,
    private readonly assets: ReadonlyMap<string, StaticFile>,
  ) {}

  /** The built page in `dir`; a missing or partial build yields a PageFiles without index. */
  static load(dir: string = PAGE_DIR): PageFiles {
    const assets = new Map<string, StaticFile>();
    const assetDir = join(dir, 'assets');
    if (existsSync(assetDir)) {
      for (const name of readdirSync(assetDir)) assets.set(name, staticFile(readFileSync(join(assetDir, name)), name, IMMUTABLE));
    }
    const indexFile = join(dir, 'index.html');
    const index = existsSync(indexFile) ? staticFile(readFileSync(indexFile), 'index.html', REVALIDATE) : null;
    return new PageFiles(index, assets);
  }

  /** The asset called `name` (`main-ABCD1234.js`), or undefined. */
  asset(name: string): StaticFile | undefined {
    return this.assets.get(name);
  }
}

/** If-None-Match against one ETag (RFC 9110 section 13.1.2: weak comparison, `*` matches any). */
export function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  for (const raw of ifNoneMatch.split(',')) {
    const tag = raw.trim();
    if (tag === '*' || (tag.startsWith('W/') ? tag.slice(2) : tag) === etag) return true;
  }
  return false;
}

/** GET or HEAD of a file: 200 with the body (none for HEAD), or 304 when the client has it. */
export function sendStatic(req: IncomingMessage, res: ServerResponse, file: StaticFile, extra: Readonly<Record<string, string>> = {}): void {
  if (notModified(req.headers['if-none-match'], file.etag)) {
    res.writeHead(304, { etag: file.etag, 'cache-control': file.headers['cache-control']!, ...extra });
    res.end();
    return;
  }
  res.writeHead(200, { ...file.headers, ...extra });
  res.end(req.method === 'HEAD' ? undefined : file.body);
}

/**
 * Headers of the page itself: only its own script and stylesheet run (no inline code, no
 * style attribute), requests go to this listener only, and no site may frame it.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};
