import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { ConfigError, ErrorCodes, SwitchyardError, type ConfigIssue } from '../errors.js';
import { isBuiltinStrategy } from '../strategies/names.js';
import type { BackendConfig, CircuitBreakerConfig, Config, FrontendConfig, HealthConfig, ProxyVersion, SlowStartConfig } from './types.js';
import { crossCheck, formatHostPort, resolveStrategyPath } from './checks.js';
import { configSchema, DEFAULT_EXPECT, type RawBackend, type RawConfig, type RawFrontend } from './schema.js';
import { normalizeRateLimit } from './rate-limit-schema.js';
import { formatPath, lineOf, readYaml, type PathSegment } from './source.js';
import { knownKeys, messageFor } from './messages.js';
import { normalizeRoutes } from './routes-schema.js';
import { loadTlsFiles, type TlsLoad } from './tls.js';

// parseConfig / loadConfigFile / normalizeConfig: text or a plain object in, a validated,
// normalised, deep-frozen Config out, or one ConfigError listing every problem with its key
// path (and line, from a file). Pipeline: YAML -> `${ENV}` -> schema + cross-key checks ->
// defaults that depend on other keys -> freeze.

/** Parse YAML (JSON is YAML too). `file` names the source in errors and anchors strategy paths. */
export function parseConfig(text: string, file: string | null): Config {
  const doc = readYaml(text);
  const early = doc.issues.map((i): ConfigIssue => {
    const line = i.line ?? lineOf(doc.lines, i.path);
    return line === undefined ? { path: formatPath(i.path), message: i.message } : { path: formatPath(i.path), message: i.message, line };
  });
  if (doc.syntaxErrors) throw new ConfigError(file, sortIssues(early));
  if (doc.value === null || doc.value === undefined) throw new ConfigError(file, [{ path: '', message: 'the config is empty' }]);
  return validate(doc.value, file, doc.lines, early);
}

/** Read and parse a config file; `source` is its absolute path. */
export async function loadConfigFile(path: string): Promise<Config> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new SwitchyardError(ErrorCodes.CONFIG_READ, `cannot read config file ${absolute}: ${reason}`);
  }
  return parseConfig(text, absolute);
}

/** Validate and normalise a config built in code (the raw snake_case shape, as in a file). */
export function normalizeConfig(raw: unknown, file: string | null): Config {
  return validate(raw, file, new Map(), []);
}

/** `early`: `${ENV}` problems; other findings at those paths follow from them and are dropped. */
function validate(raw: unknown, file: string | null, lines: ReadonlyMap<string, number>, early: readonly ConfigIssue[]): Config {
  const issues: ConfigIssue[] = [...early];
  const envPaths = new Set(early.map((i) => i.path));
  const add = (path: readonly PathSegment[], message: string) => {
    const formatted = formatPath(path);
    if ((envPaths.has(formatted) && !message.startsWith('unknown key')) || issues.some((i) => i.path === formatted && i.message === message)) return;
    const line = lineOf(lines, path);
    issues.push(line === undefined ? { path: formatted, message } : { path: formatted, message, line });
  };
  const parsed = configSchema.safeParse(raw, { error: messageFor, reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path as PathSegment[];
      if (issue.code === 'unrecognized_keys') {
        const known = knownKeys(path, issue.input);
        for (const key of issue.keys) add([...path, key], `unknown key "${key}"${suggest(key, known)}`);
      } else {
        add(path, issue.message);
      }
    }
  }
  for (const issue of crossCheck(raw, file)) add(issue.path, issue.message);
  if (issues.length > 0 || !parsed.success) throw new ConfigError(file, sortIssues(issues));
  // Certificate files are read only for a config that is otherwise valid.
  const tls = loadTlsFiles(parsed.data, file);
  for (const issue of tls.issues) add(issue.path, issue.message);
  if (issues.length > 0) throw new ConfigError(file, sortIssues(issues));
  return deepFreeze(build(parsed.data, file, tls));
}

function suggest(key: string, known: readonly string[]): string {
  if (known.length === 0) return '';
  const close = known.find((k) => distance(k, key) <= Math.max(1, Math.floor(k.length / 4)));
  return close === undefined ? ` (known keys: ${known.join(', ')})` : ` (did you mean "${close}"?)`;
}

/** Levenshtein distance, for "did you mean" on misspelt keys (short strings only). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** File order: by line, then as found (issues without a line last). */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || a.i - b.i)
    .map((x) => x.issue);
}

// ---- normalise: snake_case raw -> the Config the runtime is built from ----------------------

function build(raw: RawConfig, file: string | null, tls: TlsLoad): Config {
  const statsBind = raw.stats.bind;
  const consul = raw.consul;
  return {
    source: file === null ? null : resolve(file),
    stats: {
      bind: statsBind,
      auth: raw.stats.auth === undefined ? null : { username: raw.stats.auth.username, password: raw.stats.auth.password },
      read: raw.stats.auth?.read ?? raw.stats.read ?? 'public',
      allowedHosts: raw.stats.allowed_hosts.map((h) => h.toLowerCase()),
      sockets: raw.stats.socket.map((s) => ({
        path: s.path === undefined ? null : resolve(file === null ? process.cwd() : dirname(resolve(file)), s.path),
        address: s.address ?? null,
        mode: typeof s.mode === 'number' ? s.mode : parseInt(s.mode, 8),
        user: s.user === undefined ? null : String(s.user),
        group: s.group === undefined ? null : String(s.group),
        level: s.level,
        timeoutMs: s.timeout,
      })),
    },
    consul:
      consul === undefined
        ? null
        : {
            address: consul.address.replace(/\/+$/, ''),
            token: consul.token,
            register:
              consul.register === undefined
                ? null
                : {
                    name: consul.register.name,
                    id: consul.register.id ?? `${consul.register.name}-${hostname()}`,
                    address: consul.register.address,
                    // Advertise the stats listener (it answers /health) unless told otherwise.
                    port: consul.register.port ?? (statsBind.port === 0 ? null : statsBind.port),
                    tags: consul.register.tags,
                    checkIntervalMs: consul.register.check_interval,
                  },
            waitMs: consul.wait,
          },
    workers: raw.workers,
    shutdownTimeoutMs: raw.shutdown_timeout,
    logging: raw.logging,
    frontends: Object.entries(raw.frontends).map(([name, fe]) => frontend(name, fe, tls, file)),
    backends: Object.entries(raw.backends).map(([name, be]) => backend(name, be, file, tls)),
  };
}

function frontend(name: string, fe: RawFrontend, tls: TlsLoad, file: string | null): FrontendConfig {
  const redirect = fe.redirect_https;
  return {
    name,
    mode: fe.mode,
    bind: fe.bind,
    // crossCheck made sure one of them is there (and that they agree when both are).
    backend: (fe.default_backend ?? fe.backend)!,
    timeouts: {
      clientMs: fe.timeouts.client,
      httpRequestMs: fe.timeouts.http_request,
      keepAliveMs: fe.timeouts.keep_alive,
      handshakeMs: fe.timeouts.handshake,
    },
    maxconn: fe.maxconn,
    maxconnPerSource: fe.maxconn_per_source,
    trustedProxies: fe.trusted_proxies,
    limits: {
      maxRequestLine: fe.limits.max_request_line,
      maxHeaderBytes: fe.limits.max_header_bytes,
      maxHeaders: fe.limits.max_headers,
      obsFold: fe.limits.obs_fold,
    },
    routing: {
      routes: normalizeRoutes(fe.routes),
      requestHeaders: fe.request_headers ?? null,
      responseHeaders: fe.response_headers ?? null,
      requestId: fe.request_id ?? null,
    },
    rateLimit: normalizeRateLimit(fe.rate_limit),
    tls: tls.frontends.get(name) ?? null,
    redirectHttps:
      redirect === undefined || redirect === false ? null : redirect === true ? { status: 301, port: null } : { status: redirect.status, port: redirect.port },
    sniRoutes: fe.sni_routes === undefined ? null : Object.fromEntries(Object.entries(fe.sni_routes).map(([k, v]) => [k.toLowerCase(), v])),
    // Module paths are stored absolute, as strategies are; the keys only when set.
    ...(fe.router === undefined ? {} : { router: resolveStrategyPath(fe.router, file) }),
    ...(fe.hooks === undefined ? {} : { hooks: resolveStrategyPath(fe.hooks, file) }),
    acceptProxy: fe.accept_proxy,
    trustedSources: fe.trusted_sources,
  };
}

function backend(name: string, be: RawBackend, file: string | null, tls: TlsLoad): BackendConfig {
  const sticky = be.sticky;
  return {
    name,
    mode: be.mode,
    // Module paths are stored absolute so that loading them does not depend on the cwd.
    strategy: isBuiltinStrategy(be.strategy) ? be.strategy : resolveStrategyPath(be.strategy, file),
    strategyOptions: be.strategy_options,
    sticky:
      sticky === undefined ? null : sticky.type === 'cookie' ? { type: 'cookie', name: sticky.name } : { type: 'source', ttlMs: sticky.ttl, size: sticky.size },
    health: health(be.health, be.check_send_proxy),
    passive: {
      consecutiveFailures: be.passive.consecutive_failures,
      baseEjectionMs: be.passive.base_ejection,
      maxEjectionMs: be.passive.max_ejection,
      maxEjectedPercent: be.passive.max_ejected_percent,
    },
    timeouts: { connectMs: be.timeouts.connect, serverMs: be.timeouts.server, serverKeepAliveMs: be.timeouts.server_keep_alive },
    retries: be.retries,
    retryOn: {
      connFailure: be.retry_on.includes('conn-failure'),
      emptyResponse: be.retry_on.includes('empty-response'),
      junkResponse: be.retry_on.includes('junk-response'),
      responseTimeout: be.retry_on.includes('response-timeout'),
      statuses: [...new Set(be.retry_on.filter((v): v is number => typeof v === 'number'))],
    },
    servers: be.servers.map((s) => ({
      name: s.name ?? formatHostPort(s.address),
      address: s.address,
      weight: s.weight,
      backup: s.backup,
      maxconn: s.maxconn,
      sendProxy: s.send_proxy === undefined ? null : proxyVersion(s.send_proxy),
    })),
    discovery: be.discovery === undefined ? null : { consul: { ...be.discovery.consul } },
    requestHeaders: be.request_headers ?? null,
    responseHeaders: be.response_headers ?? null,
    maxQueue: be.max_queue,
    // HAProxy: `timeout queue` defaults to `timeout connect`.
    queueTimeoutMs: be.timeouts.queue ?? be.timeouts.connect,
    redispatch: be.redispatch,
    slowStart: slowStart(be.slow_start),
    circuitBreaker: circuitBreaker(be.circuit_breaker),
    tls: tls.backends.get(name) ?? null,
    sendProxy: proxyVersion(be.send_proxy),
  };
}

function slowStart(s: RawBackend['slow_start']): SlowStartConfig | null {
  if (s === undefined) return null;
  const config = typeof s === 'number' ? { durationMs: s, minWeightPercent: 10 } : { durationMs: s.duration, minWeightPercent: s.min_weight_percent };
  return config.durationMs > 0 ? config : null;
}

function circuitBreaker(c: RawBackend['circuit_breaker']): CircuitBreakerConfig | null {
  if (c === undefined) return null;
  return {
    maxConnections: c.max_connections ?? 0,
    maxPending: c.max_pending ?? 0,
    maxRequests: c.max_requests ?? 0,
    maxRetries: c.max_retries ?? -1,
    retryBudget: c.retry_budget === undefined ? null : { percent: c.retry_budget.percent, minRetryConcurrency: c.retry_budget.min_retry_concurrency },
  };
}

/**
 * HAProxy's defaults: `fastinter` and `downinter` default to `inter`; the check timeout to
 * 2s, but never longer than the interval (a check must end before the next one starts).
 */
function proxyVersion(v: 'v1' | 'v2' | 'none'): ProxyVersion {
  return v === 'v1' ? 1 : v === 'v2' ? 2 : 0;
}

function health(h: RawBackend['health'], checkSendProxy: boolean | undefined): HealthConfig {
  const sendProxy = checkSendProxy ?? 'auto';
  if (h === undefined) {
    return {
      type: 'none',
      method: 'GET',
      path: '/',
      host: null,
      expect: DEFAULT_EXPECT,
      body: null,
      intervalMs: 10_000,
      fastIntervalMs: 10_000,
      downIntervalMs: 10_000,
      timeoutMs: 2_000,
      rise: 2,
      fall: 3,
      onMarkedDown: 'none',
      sendProxy,
    };
  }
  return {
    type: h.type,
    method: h.method.toUpperCase(),
    path: h.path,
    host: h.host,
    expect: h.expect,
    body: h.body,
    intervalMs: h.interval,
    fastIntervalMs: h.fast_interval ?? h.interval,
    downIntervalMs: h.down_interval ?? h.interval,
    timeoutMs: h.timeout ?? Math.min(2_000, h.interval),
    rise: h.rise,
    fall: h.fall,
    onMarkedDown: h.on_marked_down,
    sendProxy,
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
