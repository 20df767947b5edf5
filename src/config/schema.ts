import { isIP } from 'node:net';
import { z } from 'zod';
import type { HostPort, StatusRanges } from './types.js';
import { DURATION_MESSAGE, parseDuration } from './duration.js';
import { headerRulesSchema, requestIdSchema, routesSchema } from './routes-schema.js';
import { rateLimitSchema } from './rate-limit-schema.js';
import { parseCidr } from './cidr.js';

// The raw shape of a config file (snake_case keys, names as map keys), checked by zod. Leaf
// values are converted here (durations to ms, addresses split, `expect` to ranges) so that a
// bad value is reported at its own path; defaults that depend on other keys and checks across
// keys (a frontend's backend exists, modes match, binds differ) live in checks.ts and load.ts.
// Every object is strict: a misspelt key is an error naming the key, not silently ignored.

export const DEFAULT_STATS_BIND: HostPort = { host: '0.0.0.0', port: 11099 };
export const DEFAULT_CONSUL_ADDRESS = 'http://127.0.0.1:8500';
export const DEFAULT_EXPECT: StatusRanges = [[200, 399]];

// ---- leaf values -------------------------------------------------------------------------

type Ctx = z.core.$RefinementCtx;

function fail(ctx: Ctx, message: string, input: unknown): never {
  ctx.issues.push({ code: 'custom', message, input });
  return z.NEVER;
}

const durationValue = z.unknown().transform((v, ctx): number => {
  const ms = parseDuration(v);
  return ms === null ? fail(ctx, DURATION_MESSAGE, v) : ms;
});

/** A duration in ms, `fallback` when the key is absent. */
function duration(fallback: number) {
  return durationValue.default(fallback);
}

/** A duration in ms whose default depends on other keys (filled in by the loader): null when absent. */
function derivedDuration() {
  return durationValue.nullable().default(null);
}

const HOST = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;
const IPV6 = /^[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?$/;

/**
 * `host:port`, `[v6]:port`; for a listener also `:port` and a bare port (all addresses,
 * 0.0.0.0). Port 0 (ephemeral) is allowed only for listeners. Returns an error message on failure.
 */
export function parseHostPort(value: unknown, listener: boolean): HostPort | string {
  const minPort = listener ? 0 : 1;
  const portRange = `expected host:port with a port from ${minPort} to 65535`;
  const port = (text: string): number | null => {
    if (!/^\d{1,5}$/.test(text)) return null;
    const n = Number(text);
    return n >= minPort && n <= 65535 ? n : null;
  };
  if (listener && typeof value === 'number') {
    const p = Number.isInteger(value) ? port(String(value)) : null;
    return p === null ? portRange : { host: '0.0.0.0', port: p };
  }
  if (typeof value !== 'string') return 'expected host:port';
  const text = value.trim();
  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(text);
  if (v6 !== null) {
    if (!IPV6.test(v6[1]!)) return 'expected host:port';
    host = v6[1]!;
    portText = v6[2]!;
  } else if (listener && /^:?\d+$/.test(text)) {
    host = '0.0.0.0';
    portText = text.replace(':', '');
  } else {
    const colon = text.lastIndexOf(':');
    if (colon <= 0) return 'expected host:port';
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return 'expected host:port (write IPv6 addresses in brackets: [::1]:80)';
    if (!HOST.test(host)) return 'expected host:port';
  }
  const p = port(portText);
  return p === null ? portRange : { host, port: p };
}

/** A required address (absent: `required`), or one with a default. */
function address(listener: boolean) {
  return z.unknown().transform((v, ctx): HostPort => {
    if (v === undefined) return fail(ctx, 'required (host:port)', v);
    const parsed = parseHostPort(v, listener);
    return typeof parsed === 'string' ? fail(ctx, parsed, v) : parsed;
  });
}

const EXPECT_MESSAGE = 'expected a status (200), a range ("200-399"), or a list of them';

function statusRange(item: unknown): readonly [number, number] | null {
  const ok = (n: number) => Number.isInteger(n) && n >= 100 && n <= 599;
  if (typeof item === 'number') return ok(item) ? [item, item] : null;
  if (typeof item !== 'string') return null;
  const m = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/.exec(item);
  if (m !== null) {
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    return ok(lo) && ok(hi) && lo <= hi ? [lo, hi] : null;
  }
  const xx = /^\s*([1-5])xx\s*$/i.exec(item); // `2xx`, as in HAProxy's `rstatus ^2`
  return xx === null ? null : [Number(xx[1]) * 100, Number(xx[1]) * 100 + 99];
}

const expect = z
  .unknown()
  .transform((v, ctx): StatusRanges => {
    const items = Array.isArray(v) ? v : [v];
    const ranges = items.map(statusRange);
    if (items.length === 0 || ranges.some((r) => r === null)) return fail(ctx, EXPECT_MESSAGE, v);
    return ranges as (readonly [number, number])[];
  })
  .default(DEFAULT_EXPECT);

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);
const name = z.string().min(1);
const mode = z.enum(['http', 'tcp']).default('http');

/** An optional block: absent or empty (`timeouts:` with nothing under it) means all defaults. */
function block<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null || v === undefined ? {} : v), schema);
}

/** A block that is null when absent, all defaults when present but empty. */
function optionalBlock<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? {} : v), schema.optional());
}

/** An optional block where an empty value (`sticky:` with nothing after it) means "none". */
function nullMeansAbsent<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? undefined : v), schema.optional());
}

/** An IPv4 or IPv6 address or CIDR block (`10.0.0.0/8`, `::1`, `fd00::/8`). */
const cidr = z.string().transform((v, ctx): string => {
  const m = /^([^/]+?)(?:\/(\d{1,3}))?$/.exec(v.trim());
  const type = m === null ? 0 : isIP(m[1]!);
  const bits = m?.[2] === undefined ? (type === 6 ? 128 : 32) : Number(m[2]);
  if (type === 0 || bits > (type === 6 ? 128 : 32)) return fail(ctx, 'expected an IP address or CIDR block like 10.0.0.0/8 or fd00::/8', v);
  return `${m![1]!.toLowerCase()}/${bits}`;
});

/** HAProxy `retry-on` keywords switchyard implements, and the statuses HAProxy allows there. */
export const RETRY_KEYWORDS = ['conn-failure', 'empty-response', 'junk-response', 'response-timeout'] as const;
export const RETRY_STATUSES = [401, 403, 404, 408, 425, 500, 501, 502, 503, 504] as const;
const retryOn = z
  .array(
    z.union(
      [
        z.enum(RETRY_KEYWORDS),
        z
          .number()
          .int()
          .refine((n) => (RETRY_STATUSES as readonly number[]).includes(n), {
            error: `expected one of ${RETRY_KEYWORDS.join(', ')} or a status among ${RETRY_STATUSES.join(' ')}`,
          }),
      ],
      { error: `expected one of ${RETRY_KEYWORDS.join(', ')} or a status among ${RETRY_STATUSES.join(' ')}` },
    ),
  )
  .default(['conn-failure']);
const cidrList = z.array(
  z.unknown().transform((v, ctx): string => {
    const parsed = parseCidr(v);
    return typeof parsed === 'string' ? fail(ctx, parsed, v) : (v as string);
  }),
);

/** `send_proxy: v1 | v2 | none` (HAProxy `send-proxy` / `send-proxy-v2`). */
const proxyVersion = z.enum(['v1', 'v2', 'none']);

/** A runtime API socket: a path, or `{ path | address, mode, user, group, level, timeout }`. */
const runtimeSocket = z.preprocess(
  (v) => (typeof v === 'string' ? { path: v } : v),
  z.strictObject({
    path: z.string().min(1).optional(),
    address: address(true).optional(),
    mode: z.union([z.number().int().min(0).max(0o777), z.string().regex(/^0?[0-7]{3}$/, { error: 'expected an octal file mode like "0600"' })]).default('0600'),
    user: z.union([name, z.number().int().min(0)]).optional(),
    group: z.union([name, z.number().int().min(0)]).optional(),
    level: z.enum(['user', 'operator', 'admin']).default('admin'),
    timeout: duration(10_000),
  }),
);

// ---- sections ------------------------------------------------------------------------------

const statsSchema = block(
  z.strictObject({
    bind: address(true).default(DEFAULT_STATS_BIND),
    // `read` sits with the credentials it needs (`auth.read: private`); `stats.read` is the older spelling.
    auth: z.strictObject({ username: name, password: name, read: z.enum(['public', 'private']).optional() }).optional(),
    read: z.enum(['public', 'private']).optional(),
    // Host names (with or without a port) the listener answers to; empty: any (DNS rebinding guard).
    allowed_hosts: z
      .array(
        z
          .string()
          .min(1)
          .regex(/^[^\s/@]+$/, { error: 'expected a host name, optionally with :port' }),
      )
      .default([]),
    // One socket or a list (HAProxy allows several `stats socket` lines, each with its level).
    socket: z.preprocess((v) => (v === null || v === undefined ? [] : Array.isArray(v) ? (v as unknown[]) : [v]), z.array(runtimeSocket)),
  }),
);

const consulSchema = optionalBlock(
  z.strictObject({
    address: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).default(DEFAULT_CONSUL_ADDRESS),
    token: z.string().nullable().default(null),
    register: optionalBlock(
      z.strictObject({
        name: name.default('switchyard'),
        id: name.optional(),
        address: z.string().min(1).nullable().default(null),
        port: int(1, 65535).nullable().default(null),
        tags: z.array(z.string()).default([]),
        check_interval: duration(10_000),
      }),
    ),
    wait: duration(30_000),
  }),
);

const workersSchema = z
  .unknown()
  .transform((v, ctx): number | 'auto' => {
    if (v === 'auto' || (typeof v === 'number' && Number.isInteger(v) && v >= 1)) return v;
    return fail(ctx, 'expected an integer of at least 1, or "auto"', v);
  })
  .default(1);

const loggingSchema = block(
  z.strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    // `access: true` is short for `access: { enabled: true }`.
    access: z.preprocess(
      (v) => (typeof v === 'boolean' ? { enabled: v } : v === null || v === undefined ? {} : v),
      z.strictObject({
        enabled: z.boolean().default(false),
        sample: z.number().gt(0, { error: 'expected a number greater than 0 and at most 1' }).max(1).default(1),
      }),
    ),
  }),
);

const TLS_VERSION = z.enum(['TLSv1.2', 'TLSv1.3']);
const pemFile = z.string().min(1);

const frontendTlsSchema = z.strictObject({
  certificates: z.array(z.strictObject({ cert: pemFile, key: pemFile })).min(1),
  min_version: TLS_VERSION.default('TLSv1.2'),
  max_version: TLS_VERSION.default('TLSv1.3'),
  ciphers: z.string().min(1).nullable().default(null),
  // Refuse a handshake whose SNI matches no certificate (HAProxy `strict-sni`) instead of
  // answering with the first (default) certificate.
  strict_sni: z.boolean().default(false),
});

const backendTlsSchema = z.strictObject({
  ca: pemFile.nullable().default(null),
  servername: z.string().min(1).nullable().default(null),
  verify: z.boolean().default(true),
  cert: pemFile.nullable().default(null),
  key: pemFile.nullable().default(null),
  min_version: TLS_VERSION.default('TLSv1.2'),
  ciphers: z.string().min(1).nullable().default(null),
});

const frontendSchema = z.strictObject({
  mode,
  bind: address(true),
  // `backend:` and `default_backend:` name the same thing (checks.ts wants one of them).
  backend: name.optional(),
  timeouts: block(
    z.strictObject({
      client: duration(30_000),
      http_request: duration(10_000),
      keep_alive: duration(60_000),
      // TLS frontends: the whole handshake (TCP SNI routing: the whole ClientHello) in this time.
      handshake: duration(10_000),
    }),
  ),
  maxconn: int(0).default(0),
  maxconn_per_source: int(0).default(0),
  trusted_proxies: z.array(cidr).default([]),
  limits: block(
    z.strictObject({
      max_request_line: int(1).default(8192),
      max_header_bytes: int(1).default(32768),
      max_headers: int(1).default(100),
      // obs-fold (a header line starting with SP/HTAB, RFC 9112 §5.2): `reject` answers 400;
      // `unfold` replaces each fold with spaces before forwarding, for old clients.
      obs_fold: z.enum(['reject', 'unfold']).default('reject'),
    }),
  ),
  // Routing (docs/routing.md): HTTP frontends only (checks.ts).
  default_backend: name.optional(),
  routes: routesSchema,
  request_headers: headerRulesSchema,
  response_headers: headerRulesSchema,
  request_id: requestIdSchema,
  rate_limit: rateLimitSchema,
  // TLS termination (docs/tls.md); files are read and checked by config/tls.ts.
  tls: nullMeansAbsent(frontendTlsSchema),
  // HTTP frontends: answer every request with a redirect to https:// (`true`: 301, same host).
  redirect_https: nullMeansAbsent(
    z.union(
      [
        z.literal(true),
        z.literal(false),
        z.strictObject({
          status: z.union([z.literal(301), z.literal(302), z.literal(307), z.literal(308)]).default(301),
          port: int(1, 65535).nullable().default(null),
        }),
      ],
      { error: 'expected true, or { status: 301|302|307|308, port }' },
    ),
  ),
  // TCP frontends: route TLS connections by the ClientHello's SNI without decrypting.
  sni_routes: nullMeansAbsent(z.record(z.string(), name)),
  // User code (docs/programming.md): module paths relative to the config file; HTTP only (checks.ts).
  router: z.string().min(1).optional(),
  hooks: z.string().min(1).optional(),
  accept_proxy: z.boolean().default(false),
  trusted_sources: cidrList.default([]),
});

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // RFC 6265 cookie-name = token

const stickySchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('cookie'),
      name: z.string().regex(COOKIE_NAME, { error: 'expected a cookie name (letters, digits, -_.)' }).default('SY_SERVER'),
    }),
    z.strictObject({
      type: z.literal('source'),
      ttl: duration(30 * 60_000),
      size: int(1).default(100_000),
    }),
  ],
  { error: 'expected { type: cookie } or { type: source }' },
);

const healthSchema = z.strictObject({
  type: z.enum(['tcp', 'http', 'none']).default('tcp'),
  method: z
    .string()
    .regex(/^[A-Za-z]+$/, { error: 'expected an HTTP method like GET' })
    .default('GET'),
  path: z.string().startsWith('/', { error: 'expected a path starting with /' }).default('/'),
  host: z.string().min(1).nullable().default(null),
  expect,
  body: z.string().nullable().default(null),
  interval: duration(10_000),
  fast_interval: derivedDuration(),
  down_interval: derivedDuration(),
  timeout: derivedDuration(),
  rise: int(1, 1000).default(2),
  fall: int(1, 1000).default(3),
  on_marked_down: z.enum(['none', 'shutdown_sessions']).default('none'),
});

const serverSchema = z.strictObject({
  name: name.optional(),
  address: address(false),
  weight: int(0, 256).default(1),
  backup: z.boolean().default(false),
  maxconn: int(0).default(0),
  send_proxy: proxyVersion.optional(),
});

const backendSchema = z.strictObject({
  mode,
  strategy: name.default('round-robin'),
  strategy_options: block(z.record(z.string(), z.unknown())),
  sticky: nullMeansAbsent(stickySchema),
  // Absent: no active checks. Present: a check, tcp unless `type` says otherwise.
  health: optionalBlock(healthSchema),
  passive: block(
    z.strictObject({
      consecutive_failures: int(0).default(5),
      base_ejection: duration(30_000),
      max_ejection: duration(5 * 60_000),
      max_ejected_percent: z.number().min(0).max(100).default(50),
    }),
  ),
  timeouts: block(
    z.strictObject({
      connect: duration(5_000),
      server: duration(30_000),
      queue: derivedDuration(),
      // Below common servers' own keep-alive (Node 5 s, Apache 5 s) so that switchyard closes
      // first and a request never races a server closing the connection under it.
      server_keep_alive: duration(4_000),
    }),
  ),
  retries: int(0, 10).default(2),
  retry_on: retryOn,
  servers: z.preprocess((v) => (v === null ? [] : v), z.array(serverSchema).default([])),
  discovery: nullMeansAbsent(
    z.strictObject({
      consul: z.strictObject({
        service: name,
        tag: z.string().min(1).nullable().default(null),
        passing: z.boolean().default(true),
        dc: z.string().min(1).nullable().default(null),
      }),
    }),
  ),
  request_headers: headerRulesSchema,
  response_headers: headerRulesSchema,
  // Overload protection (docs/overload.md).
  max_queue: int(0).default(0),
  redispatch: z.boolean().default(true),
  slow_start: nullMeansAbsent(
    z.union([durationValue, z.strictObject({ duration: durationValue, min_weight_percent: z.number().min(0).max(100).default(10) })], {
      error: 'expected a duration (30s) or { duration: 30s, min_weight_percent: 10 }',
    }),
  ),
  circuit_breaker: nullMeansAbsent(
    z.strictObject({
      max_connections: int(1).optional(),
      max_pending: int(1).optional(),
      max_requests: int(1).optional(),
      max_retries: int(0).optional(),
      retry_budget: nullMeansAbsent(
        z.strictObject({
          percent: z.number().min(0).max(100).default(20),
          min_retry_concurrency: int(0).default(3),
        }),
      ),
    }),
  ),
  // TLS to the servers (and their health checks); `tls: {}` verifies against the system CAs.
  tls: z.preprocess((v) => (v === true ? {} : v === null || v === false ? undefined : v), backendTlsSchema.optional()),
  send_proxy: proxyVersion.default('none'),
  check_send_proxy: z.boolean().optional(),
});

export const configSchema = z.strictObject({
  stats: statsSchema,
  consul: consulSchema,
  workers: workersSchema,
  shutdown_timeout: duration(10_000),
  logging: loggingSchema,
  frontends: z.record(z.string(), frontendSchema),
  backends: z.record(z.string(), backendSchema),
});

export type RawConfig = z.output<typeof configSchema>;
export type RawFrontend = z.output<typeof frontendSchema>;
export type RawBackend = z.output<typeof backendSchema>;
