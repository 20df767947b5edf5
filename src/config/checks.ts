import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BUILTIN_STRATEGY_NAMES, isBuiltinStrategy, isStrategyPath } from '../strategies/names.js';
import type { HostPort } from './types.js';
import { formatDuration, parseDuration } from './duration.js';
import { DEFAULT_STATS_BIND, parseHostPort } from './schema.js';
import type { PathSegment } from './source.js';
import { checkBackendRouting, checkRouting, defaultBackendOf } from './route-checks.js';

// Checks across keys: a frontend's backend exists and has the same mode, binds do not clash,
// a strategy module exists, server names are unique, and so on. They read the raw value
// defensively (anything may be the wrong type; the schema reports that) so that they run even
// when the schema found problems elsewhere, and the user sees every error in one pass.

export interface CheckIssue {
  readonly path: readonly PathSegment[];
  readonly message: string;
}

/** Frontend and backend names appear in stats CSV, metrics labels and admin URLs. */
const SECTION_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** Server names: the same, plus what a default name (the address) contains. */
const SERVER_NAME = /^[A-Za-z0-9_.:[\]-]+$/;
const STRATEGY_FILE = /\.(?:js|mjs|cjs|ts)$/;
const WILDCARDS = new Set(['0.0.0.0', '::', '']);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** The sections that are mappings (the schema reports the others). */
const entries = (v: unknown): [string, Obj][] => (isObj(v) ? Object.entries(v).filter((e): e is [string, Obj] => isObj(e[1])) : []);
const modeOf = (v: Obj): string | null => (v.mode === undefined ? 'http' : v.mode === 'http' || v.mode === 'tcp' ? v.mode : null);

export function formatHostPort(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Where a strategy module path points: relative to the config file's folder (else the cwd). */
export function resolveStrategyPath(strategy: string, file: string | null): string {
  return resolve(file === null ? process.cwd() : dirname(resolve(file)), strategy);
}

export function crossCheck(raw: unknown, file: string | null): CheckIssue[] {
  const issues: CheckIssue[] = [];
  if (!isObj(raw)) return issues;
  const add = (path: PathSegment[], message: string) => issues.push({ path, message });
  const backends = isObj(raw.backends) ? raw.backends : null;

  const stats = isObj(raw.stats) ? raw.stats : {};
  if (stats.read === 'private' && !isObj(stats.auth)) add(['stats', 'read'], 'read: private needs stats.auth (username and password)');
  checkSockets(stats.socket, add);

  // Binds: two listeners on one port clash when the hosts are equal or either is a wildcard
  // (Linux refuses 127.0.0.1:80 next to 0.0.0.0:80). Port 0 is ephemeral and never clashes.
  const statsBind = stats.bind === undefined ? DEFAULT_STATS_BIND : parseHostPort(stats.bind, true);
  const bound: { who: string; at: HostPort }[] = typeof statsBind === 'string' ? [] : [{ who: 'the stats listener', at: statsBind }];

  if (isObj(raw.frontends) && Object.keys(raw.frontends).length === 0) add(['frontends'], 'at least one frontend is required');
  for (const [name, fe] of entries(raw.frontends)) {
    if (!SECTION_NAME.test(name)) add(['frontends', name], `invalid frontend name "${name}": use letters, digits, and - _ .`);
    const dflt = defaultBackendOf(name, fe, add);
    if (dflt !== null && backends !== null) {
      const be = backends[dflt.name];
      if (!Object.hasOwn(backends, dflt.name)) {
        add(['frontends', name, dflt.key], `unknown backend "${dflt.name}"`);
      } else if (isObj(be) && modeOf(fe) !== null && modeOf(be) !== null && modeOf(fe) !== modeOf(be)) {
        add(['frontends', name, 'mode'], `mode ${modeOf(fe)} does not match backend "${dflt.name}" (mode ${modeOf(be)})`);
      }
    }
    checkRouting(name, fe, backends, add);
    if (isObj(fe.rate_limit)) checkRateLimit(['frontends', name, 'rate_limit'], fe.rate_limit, add);
    if (Array.isArray(fe.routes)) {
      fe.routes.forEach((route: unknown, i) => {
        if (!isObj(route) || !isObj(route.rate_limit)) return;
        const at: PathSegment[] = ['frontends', name, 'routes', i, 'rate_limit'];
        checkRateLimit(at, route.rate_limit, add);
        if (route.rate_limit.connections !== undefined)
          add([...at, 'connections'], 'connections are limited per frontend (rate_limit.connections), not per route');
      });
    }
    checkFrontendTls(name, fe, backends, add);
    for (const key of ['router', 'hooks'] as const) {
      const path = fe[key];
      if (typeof path !== 'string') continue;
      if (modeOf(fe) === 'tcp') add(['frontends', name, key], `${key} needs mode http (this frontend is mode tcp)`);
      else if (!isStrategyPath(path)) add(['frontends', name, key], `a module path starting with ./ or / is expected: "${path}"`);
      else if (!STRATEGY_FILE.test(path)) add(['frontends', name, key], `a ${key} module must be a .js, .mjs, .cjs or .ts file: "${path}"`);
      else if (!existsSync(resolveStrategyPath(path, file))) add(['frontends', name, key], `${key} module not found: ${resolveStrategyPath(path, file)}`);
    }
    if (Array.isArray(fe.trusted_sources) && fe.trusted_sources.length > 0 && fe.accept_proxy !== true) {
      add(['frontends', name, 'trusted_sources'], 'trusted_sources limits who may send the PROXY header: it needs accept_proxy: true');
    }
    if (fe.accept_proxy === true && (isObj(fe.tls) || isObj(fe.sni_routes))) {
      add(['frontends', name, 'accept_proxy'], 'accept_proxy is not supported together with tls or sni_routes yet');
    }
    const at = parseHostPort(fe.bind, true);
    if (typeof at === 'string' || at.port === 0) continue;
    const clash = bound.find((b) => b.at.port === at.port && (b.at.host === at.host || WILDCARDS.has(b.at.host) || WILDCARDS.has(at.host)));
    if (clash) add(['frontends', name, 'bind'], `${formatHostPort(at)} clashes with ${clash.who} on ${formatHostPort(clash.at)}`);
    bound.push({ who: `frontend "${name}"`, at });
  }

  for (const [name, be] of entries(raw.backends)) checkBackend(name, be, raw, file, add);
  return issues;
}

/** A rate limit limits something; a burst belongs to a request rate. */
export function checkRateLimit(path: PathSegment[], r: Obj, add: (p: PathSegment[], m: string) => void): void {
  if (r.requests_per_second === undefined && r.connections === undefined) add(path, 'expected requests_per_second and/or connections');
  if (r.burst !== undefined && r.requests_per_second === undefined) add([...path, 'burst'], 'a burst needs requests_per_second');
}

/** tls / redirect_https / sni_routes against the frontend's mode and the backends. */
function checkFrontendTls(name: string, fe: Obj, backends: Obj | null, add: (p: PathSegment[], m: string) => void): void {
  const mode = modeOf(fe);
  if (fe.redirect_https !== undefined && fe.redirect_https !== null && fe.redirect_https !== false && mode === 'tcp') {
    add(['frontends', name, 'redirect_https'], 'redirect_https needs mode http');
  }
  if (fe.redirect_https !== undefined && fe.redirect_https !== null && fe.redirect_https !== false && isObj(fe.tls)) {
    add(['frontends', name, 'redirect_https'], 'this frontend already serves TLS: redirect_https belongs on the plain HTTP frontend');
  }
  if (!isObj(fe.sni_routes)) return;
  if (mode !== 'tcp') add(['frontends', name, 'sni_routes'], 'sni_routes needs mode tcp (TLS passes through undecrypted)');
  if (isObj(fe.tls)) add(['frontends', name, 'sni_routes'], 'sni_routes reads the ClientHello of TLS it does not terminate: remove tls or sni_routes');
  for (const [sni, target] of Object.entries(fe.sni_routes)) {
    if (!/^(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/.test(sni))
      add(['frontends', name, 'sni_routes', sni], `expected a server name (a.example.com) or a wildcard (*.example.com): "${sni}"`);
    if (typeof target !== 'string' || backends === null) continue;
    const be = backends[target];
    if (!Object.hasOwn(backends, target)) add(['frontends', name, 'sni_routes', sni], `unknown backend "${target}"`);
    else if (isObj(be) && modeOf(be) !== 'tcp') add(['frontends', name, 'sni_routes', sni], `backend "${target}" must be mode tcp`);
  }
}

/**
 * Runtime API sockets: a path or a loopback address, not both. The TCP form has no file
 * permissions to guard it, so only loopback is accepted (HAProxy calls the TCP form dangerous).
 */
function checkSockets(value: unknown, add: (p: PathSegment[], m: string) => void): void {
  const list = value === undefined || value === null ? [] : Array.isArray(value) ? value : [value];
  list.forEach((s: unknown, i) => {
    // A single socket is the list of one (the schema reports `stats.socket[0]...` too).
    const at: PathSegment[] = ['stats', 'socket', i];
    if (!isObj(s)) return;
    if (s.path === undefined && s.address === undefined) add(at, 'expected a path or an address');
    else if (s.path !== undefined && s.address !== undefined) add(at, 'set path or address, not both');
    if (s.address !== undefined) {
      const a = parseHostPort(s.address, true);
      if (typeof a !== 'string' && !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(a.host)) {
        add([...at, 'address'], `the runtime API listens on loopback only (127.0.0.1 or ::1), got ${a.host}`);
      }
    }
    if ((s.user !== undefined || s.group !== undefined || s.mode !== undefined) && s.address !== undefined && s.path === undefined) {
      add(at, 'mode, user and group apply to a Unix socket path, not to an address');
    }
  });
}

function checkBackend(name: string, be: Obj, raw: Obj, file: string | null, add: (p: PathSegment[], m: string) => void): void {
  const at = (...rest: PathSegment[]): PathSegment[] => ['backends', name, ...rest];
  if (!SECTION_NAME.test(name)) add(at(), `invalid backend name "${name}": use letters, digits, and - _ .`);
  checkBackendRouting(name, be, add);

  if (typeof be.strategy === 'string' && be.strategy !== '' && !isBuiltinStrategy(be.strategy)) {
    if (!isStrategyPath(be.strategy)) {
      add(at('strategy'), `unknown strategy "${be.strategy}": expected one of ${BUILTIN_STRATEGY_NAMES.join(', ')}, or a module path starting with ./ or /`);
    } else if (!STRATEGY_FILE.test(be.strategy)) {
      add(at('strategy'), `a strategy module must be a .js, .mjs, .cjs or .ts file: "${be.strategy}"`);
    } else {
      const path = resolveStrategyPath(be.strategy, file);
      if (!existsSync(path)) add(at('strategy'), `strategy module not found: ${path}`);
    }
  }

  if (isObj(be.sticky) && be.sticky.type === 'cookie' && modeOf(be) === 'tcp') {
    add(at('sticky'), 'cookie stickiness needs mode http (this backend is mode tcp); use { type: source }');
  }

  if (isObj(be.health)) {
    const h = be.health;
    const interval = h.interval === undefined ? 10_000 : parseDuration(h.interval);
    for (const key of ['interval', 'fast_interval', 'down_interval'] as const) {
      if (parseDuration(h[key]) === 0) add(at('health', key), 'must be greater than 0');
    }
    const timeout = parseDuration(h.timeout);
    if (timeout === 0) add(at('health', 'timeout'), 'must be greater than 0');
    else if (timeout !== null && interval !== null && interval > 0 && timeout > interval) {
      add(at('health', 'timeout'), `must not exceed interval (${formatDuration(interval)})`);
    }
  }

  if (isObj(be.passive)) {
    const base = be.passive.base_ejection === undefined ? 30_000 : parseDuration(be.passive.base_ejection);
    const max = be.passive.max_ejection === undefined ? 300_000 : parseDuration(be.passive.max_ejection);
    if (base !== null && max !== null && max < base) {
      add(
        at('passive', be.passive.max_ejection === undefined ? 'base_ejection' : 'max_ejection'),
        `max_ejection (${formatDuration(max)}) must be at least base_ejection (${formatDuration(base)})`,
      );
    }
  }

  const servers = Array.isArray(be.servers) ? be.servers : [];
  const seen = new Map<string, number>();
  servers.forEach((s: unknown, i) => {
    if (!isObj(s)) return;
    let serverName: string | null = null;
    if (typeof s.name === 'string' && s.name !== '') serverName = s.name;
    else {
      const address = parseHostPort(s.address, false);
      if (typeof address !== 'string') serverName = formatHostPort(address);
    }
    if (serverName === null) return;
    const where = typeof s.name === 'string' ? at('servers', i, 'name') : at('servers', i, 'address');
    if (!SERVER_NAME.test(serverName)) add(where, `invalid server name "${serverName}": use letters, digits, and - _ . :`);
    const first = seen.get(serverName);
    if (first !== undefined) add(where, `duplicate server name "${serverName}" (also servers[${first}])`);
    else seen.set(serverName, i);
  });

  const proxied = (v: unknown) => v === 'v1' || v === 'v2';
  if (be.tls !== undefined && be.tls !== null && be.tls !== false && (proxied(be.send_proxy) || servers.some((s) => isObj(s) && proxied(s.send_proxy)))) {
    add(at('send_proxy'), 'send_proxy is not supported together with tls to the servers yet');
  }

  const hasDiscovery = be.discovery !== undefined && be.discovery !== null;
  if (servers.length === 0 && !hasDiscovery && (be.servers === undefined || be.servers === null || Array.isArray(be.servers))) {
    add(at('servers'), 'a backend needs servers or discovery');
  }
  if (hasDiscovery && raw.consul === undefined) {
    add(at('discovery'), 'discovery needs a top-level consul block (consul: { address: http://127.0.0.1:8500 })');
  }
}
