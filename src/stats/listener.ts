import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StatsConfig } from '../config/types.js';
import type { RuntimeComponent, StatsHost } from '../host.js';
import type { Logger } from '../log.js';
import type { Runtime } from '../model/runtime.js';
import { HttpError, readJson, reload, setServerState, setStrategy, type Reply } from './admin.js';
import { BasicAuth, REALM, hostAllowed, isJsonContentType, parseBasicAuth, sameOrigin } from './auth.js';
import { CSV_HEADER } from './columns.js';
import { EventStream } from './events.js';
import { History, type HistoryOptions } from './history.js';
import { StatsMetrics } from './metrics.js';
import { PAGE_HEADERS, PageFiles, sendStatic } from './page-files.js';
import { buildRows, renderCsv, renderJson } from './snapshot.js';
import { Tracker } from './tracker.js';

// The stats listener (contract "Stats listener"): the live page, HAProxy CSV, JSON, Prometheus,
// history, server-sent events and the admin API, on node:http — this is not the data path.
// It reads the runtime through StatsHost at each request; admin calls go through the model's
// own setters (setAdminState) or the host (setStrategy, reload).

export interface StatsListener extends RuntimeComponent {
  address(): { host: string; port: number };
  close(): Promise<void>;
  readonly history: History;
  readonly metrics: StatsMetrics;
  readonly tracker: Tracker;
}

export interface StatsOptions {
  /** Rate sampling (HAProxy `rate`), ms; default 1000. */
  readonly rateIntervalMs?: number;
  readonly history?: HistoryOptions;
  /** Server-sent `stats` events to the page, ms; default 2000. */
  readonly eventsIntervalMs?: number;
  /** The built page (scripts/build-page.js); default dist/stats-page of this package. */
  readonly pageDir?: string;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;

const ADMIN_STATE = /^\/api\/backends\/([^/]+)\/servers\/([^/]+)\/state$/;
const ADMIN_STRATEGY = /^\/api\/backends\/([^/]+)\/strategy$/;

interface Parsed {
  path: string;
  /** HAProxy-style `;csv;norefresh` parameters. */
  semi: string[];
  query: URLSearchParams;
}

function parseUrl(raw: string): Parsed {
  const q = raw.indexOf('?');
  const pathPart = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  const [path = '/', ...semi] = pathPart.split(';');
  return { path: path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path, semi, query };
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, type: string, text: string, head: boolean, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...extra,
  });
  res.end(head ? undefined : text);
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, 'bad percent-encoding in the path');
  }
}

/** The user name a request authenticated with (for the admin log); '' when none. */
function userOf(req: IncomingMessage): string {
  return parseBasicAuth(req.headers.authorization)?.user ?? '';
}

class Listener implements StatsListener {
  readonly history: History;
  readonly metrics: StatsMetrics;
  readonly tracker: Tracker;
  private readonly auth: BasicAuth;
  private readPrivate: boolean;
  private allowedHosts: readonly string[];
  private readonly events: EventStream;
  private readonly server: HttpServer;
  private readonly page: PageFiles;

  constructor(
    private readonly host: StatsHost,
    config: StatsConfig,
    private readonly log: Logger,
    options: StatsOptions,
  ) {
    this.auth = new BasicAuth(config.auth);
    this.readPrivate = config.read === 'private';
    this.allowedHosts = config.allowedHosts;
    this.tracker = new Tracker(host, options.rateIntervalMs);
    this.history = new History(host, options.history);
    this.metrics = new StatsMetrics(host, this.tracker);
    this.page = PageFiles.load(options.pageDir);
    this.events = new EventStream(() => this.statsJson(), options.eventsIntervalMs ?? 2000);
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.server.on('error', (error) => this.log.error({ err: error }, 'stats listener error'));
    if (this.page.index === null) this.log.warn('the stats page is not built (npm run build): / answers 503, the APIs work');
    this.tracker.start();
    this.history.start();
    this.events.start();
  }

  address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** A new runtime: credentials and read access may have changed (the bind address stays). */
  sync(runtime: Runtime): void {
    this.auth.set(runtime.config.stats.auth);
    this.readPrivate = runtime.config.stats.read === 'private';
    this.allowedHosts = runtime.config.stats.allowedHosts;
  }

  stop(): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    this.tracker.stop();
    this.history.stop();
    this.events.stop();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private statsJson(): string {
    const rows = buildRows(this.host.runtime(), this.tracker);
    return JSON.stringify(renderJson(this.host, rows, this.auth.enabled));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.route(req, res).catch((error: unknown) => {
      if (error instanceof HttpError) {
        if (!res.headersSent) sendJson(res, error.status, { error: error.message });
        else res.destroy();
        return;
      }
      this.log.error({ err: error, url: req.url }, 'stats request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  }

  private deny(req: IncomingMessage, res: ServerResponse, result: 'missing' | 'wrong' | 'disabled', admin: boolean): void {
    if (result === 'disabled') {
      sendJson(res, 403, { error: admin ? 'admin disabled: set stats.auth' : 'read: private needs stats.auth' });
      return;
    }
    // The page's own login form handles a 401 itself: no browser password prompt on top of it.
    const fromPage = req.headers['x-requested-with'] === 'switchyard-page';
    const challenge: Record<string, string> = fromPage ? {} : { 'www-authenticate': `Basic realm="${REALM}", charset="UTF-8"` };
    sendJson(res, 401, { error: result === 'missing' ? 'authentication required' : 'wrong credentials' }, challenge);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, semi, query } = parseUrl(req.url ?? '/');
    const method = req.method ?? 'GET';
    if (path === '/health') {
      if (method !== 'GET' && method !== 'HEAD') {
        this.methodNotAllowed(res, 'GET, HEAD');
        return;
      }
      sendText(res, 200, 'application/json; charset=utf-8', '{"status":"ok"}\n', method === 'HEAD');
      return;
    }
    // DNS rebinding: a hostile name resolved to this listener reaches it with its own Host.
    // `/health` above stays open to probes that use an address.
    if (!hostAllowed(this.allowedHosts, req.headers.host)) {
      req.resume();
      sendJson(res, 421, { error: 'host not allowed (stats.allowed_hosts)' });
      return;
    }
    if (path.startsWith('/api/') && method !== 'GET' && method !== 'HEAD') return this.admin(req, res, path, method);

    if (path === '/api/whoami') {
      this.whoami(req, res, method);
      return;
    }
    // The page's script and stylesheet: open even with `read: private`, they hold no data.
    if (path.startsWith('/assets/')) {
      this.asset(req, res, path.slice('/assets/'.length), method);
      return;
    }
    const read = path === '/' || path === '/stats' || path === '/api/stats' || path === '/metrics' || path === '/api/history' || path === '/api/events';
    if (!read) {
      sendJson(res, 404, { error: `not found: ${path}` });
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      this.methodNotAllowed(res, 'GET, HEAD');
      return;
    }
    if (this.readPrivate) {
      const result = this.auth.check(req);
      if (result !== 'ok') {
        this.deny(req, res, result, false);
        return;
      }
    }
    const head = method === 'HEAD';
    switch (path) {
      case '/':
      case '/stats': {
        const format = query.get('format');
        if (semi.includes('csv') || format === 'csv') {
          const csv = renderCsv(buildRows(this.host.runtime(), this.tracker), CSV_HEADER);
          sendText(res, 200, 'text/csv; charset=utf-8', csv, head);
        } else if (semi.includes('json') || format === 'json') {
          sendText(res, 200, JSON_HEADERS['content-type'], this.statsJson(), head);
        } else if (this.page.index === null) {
          sendText(res, 503, 'text/plain; charset=utf-8', 'the stats page is not built: run `npm run build`\n', head);
        } else {
          sendStatic(req, res, this.page.index, PAGE_HEADERS);
        }
        return;
      }
      case '/api/stats':
        sendText(res, 200, JSON_HEADERS['content-type'], `${this.statsJson()}\n`, head);
        return;
      case '/metrics': {
        const text = await this.metrics.render();
        sendText(res, 200, this.metrics.contentType, text, head);
        return;
      }
      case '/api/history':
        this.historyRoute(res, query, head);
        return;
      case '/api/events':
        this.events.add(req, res);
        return;
    }
  }

  private asset(req: IncomingMessage, res: ServerResponse, name: string, method: string): void {
    if (method !== 'GET' && method !== 'HEAD') return this.methodNotAllowed(res, 'GET, HEAD');
    const file = this.page.asset(name);
    if (file === undefined) {
      sendJson(res, 404, { error: `not found: /assets/${name}` });
      return;
    }
    sendStatic(req, res, file);
  }

  private historyRoute(res: ServerResponse, query: URLSearchParams, head: boolean): void {
    const minutesText = query.get('minutes') ?? '60';
    const minutes = Number(minutesText);
    const maxMinutes = Math.ceil((this.history.capacity * this.history.intervalMs) / 60_000);
    if (!/^\d+(\.\d+)?$/.test(minutesText) || !(minutes > 0) || minutes > maxMinutes) {
      throw new HttpError(400, `minutes: expected a number from 1 to ${maxMinutes}`);
    }
    const name = query.get('backend');
    const runtime = this.host.runtime();
    let body: unknown;
    if (name === null || name === '') {
      body = { minutes, backends: [...runtime.backends.values()].map((b) => this.history.query(b, minutes)) };
    } else {
      const backend = runtime.backends.get(name);
      if (backend === undefined) throw new HttpError(404, `unknown backend "${name}"`);
      body = this.history.query(backend, minutes);
    }
    sendText(res, 200, JSON_HEADERS['content-type'], `${JSON.stringify(body)}\n`, head);
  }

  private async admin(req: IncomingMessage, res: ServerResponse, path: string, method: string): Promise<void> {
    const stateMatch = ADMIN_STATE.exec(path);
    const strategyMatch = ADMIN_STRATEGY.exec(path);
    const known = stateMatch !== null || strategyMatch !== null || path === '/api/reload';
    if (!known) {
      sendJson(res, 404, { error: `not found: ${path}` });
      return;
    }
    const allowed = strategyMatch !== null ? 'PUT' : 'POST';
    if (method !== allowed) {
      this.methodNotAllowed(res, allowed);
      return;
    }
    // A browser page of another site must not drive the admin API with cached credentials:
    // an Origin, when sent, must be the stats page's own (`null`, from sandboxed frames and
    // some redirects, is refused), and the body must be declared JSON (below), which a
    // cross-site form cannot send without a CORS preflight that this listener never grants.
    if (!sameOrigin(req.headers.origin, req.headers.host)) {
      req.resume();
      sendJson(res, 403, { error: 'cross-origin admin request refused' });
      return;
    }
    const result = this.auth.check(req);
    if (result !== 'ok') {
      req.resume();
      this.deny(req, res, result, true);
      return;
    }
    if (!isJsonContentType(req.headers['content-type'])) {
      req.resume();
      sendJson(res, 415, { error: 'admin requests need Content-Type: application/json' });
      return;
    }
    const body = await readJson(req);
    const user = userOf(req);
    let reply: Reply;
    if (stateMatch !== null) reply = setServerState(this.host, this.log, decode(stateMatch[1]!), decode(stateMatch[2]!), body, user);
    else if (strategyMatch !== null) reply = await setStrategy(this.host, this.log, decode(strategyMatch[1]!), body, user);
    else reply = await reload(this.host, this.log, user);
    sendJson(res, reply.status, reply.body);
    // The page hears about it at once instead of at the next tick.
    this.events.soon();
  }

  /** GET /api/whoami: the page's login check. 200 with the user, 401 on wrong credentials, 403 when admin is disabled. */
  private whoami(req: IncomingMessage, res: ServerResponse, method: string): void {
    if (method !== 'GET') return this.methodNotAllowed(res, 'GET');
    const result = this.auth.check(req);
    if (result !== 'ok') return this.deny(req, res, result, true);
    sendJson(res, 200, { user: userOf(req), admin: true });
  }

  private methodNotAllowed(res: ServerResponse, allow: string): void {
    sendJson(res, 405, { error: `method not allowed (allowed: ${allow})` }, { allow });
  }
}

/**
 * Start the stats listener on `config.bind`. Resolves once it listens; rejects when it cannot
 * (address in use). It is also a RuntimeComponent: the composition root calls sync() after each
 * swap (new credentials) and stop() at exit.
 */
export async function startStats(host: StatsHost, config: StatsConfig, logger: Logger, options: StatsOptions = {}): Promise<StatsListener> {
  const listener = new Listener(host, config, logger, options);
  await listener.listen(config.bind.host, config.bind.port);
  return listener;
}
