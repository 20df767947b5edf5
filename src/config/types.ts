// The validated, normalised configuration: what `loadConfig` returns and what the runtime is
// built from. Durations are milliseconds, addresses are split, defaults are filled in, and the
// whole tree is deep-frozen. Nothing here imports from the runtime: config flows one way.

import type { FrontendRoutingConfig, HeaderRulesConfig, RateLimitConfig } from './routing-types.js';

export type { RateLimitConfig } from './routing-types.js';

export type Mode = 'http' | 'tcp';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface StatsConfig {
  readonly bind: HostPort;
  /** Credentials for admin actions (and for reading when `read` is `private`); null: admin disabled. */
  readonly auth: { readonly username: string; readonly password: string } | null;
  readonly read: 'public' | 'private';
  /**
   * Host header values (lowercase, port included when given) the stats listener answers; empty:
   * any. Guards against DNS rebinding (a hostile name resolving to this listener).
   */
  readonly allowedHosts: readonly string[];
  /** Runtime API sockets (`stats.socket`, HAProxy's `stats socket`); empty: none. */
  readonly sockets: readonly RuntimeSocketConfig[];
}

/** HAProxy's CLI levels: what a runtime API socket may do (docs/runtime-api.md). */
export type RuntimeApiLevel = 'user' | 'operator' | 'admin';

export interface RuntimeSocketConfig {
  /** A Unix socket path; null when `address` is set. */
  readonly path: string | null;
  /** A loopback TCP address instead of a path (HAProxy `stats socket ipv4@127.0.0.1:9999`). */
  readonly address: HostPort | null;
  /** File mode of the Unix socket, e.g. 0o600. */
  readonly mode: number;
  /** Owner and group of the Unix socket (names or numeric ids); null: the process's own. */
  readonly user: string | null;
  readonly group: string | null;
  readonly level: RuntimeApiLevel;
  /** Idle time allowed between commands in interactive (`prompt`) mode (HAProxy `stats timeout`). */
  readonly timeoutMs: number;
}

export interface ConsulRegisterConfig {
  readonly name: string;
  readonly id: string;
  /** Address Consul should advertise; null lets the agent use its own. */
  readonly address: string | null;
  /** Port advertised; defaults to the stats listener's port. */
  readonly port: number | null;
  readonly tags: readonly string[];
  readonly checkIntervalMs: number;
}

export interface ConsulConfig {
  /** Base URL of the Consul HTTP API, e.g. http://127.0.0.1:8500 */
  readonly address: string;
  readonly token: string | null;
  readonly register: ConsulRegisterConfig | null;
  /** Blocking-query wait passed to Consul (`wait=`). */
  readonly waitMs: number;
}

export interface FrontendConfig {
  readonly name: string;
  readonly mode: Mode;
  readonly bind: HostPort;
  /** The default backend (`default_backend:`, or its alias `backend:`): where no route matched. */
  readonly backend: string;
  readonly timeouts: {
    /** Client inactivity (HAProxy `timeout client`). */
    readonly clientMs: number;
    /** Time allowed to receive a complete request head (HAProxy `timeout http-request`). */
    readonly httpRequestMs: number;
    /** Idle time between keep-alive requests (HAProxy `timeout http-keep-alive`). */
    readonly keepAliveMs: number;
    /** TLS: the whole handshake, or (SNI routing) the whole ClientHello, within this. */
    readonly handshakeMs: number;
  };
  /** Max concurrent client connections on this frontend; 0 = unlimited. */
  readonly maxconn: number;
  /** Max concurrent connections per client address; 0 = unlimited. */
  readonly maxconnPerSource: number;
  readonly limits: HttpLimits;
  /** Routes, header rules, request ids (HTTP frontends; empty for TCP). */
  readonly routing: FrontendRoutingConfig;
  /** User router module, absolute path (docs/programming.md); null/absent: none. */
  readonly router?: string | null;
  /** User hooks module, absolute path; null/absent: none. */
  readonly hooks?: string | null;
  /** Per client address limits (docs/overload.md); null: none. */
  readonly rateLimit: RateLimitConfig | null;
  /** TLS termination; null: plain TCP / HTTP. */
  readonly tls: FrontendTlsConfig | null;
  /** HTTP: every request is answered with a redirect to https://; null: off. */
  readonly redirectHttps: { readonly status: 301 | 302 | 307 | 308; readonly port: number | null } | null;
  /** TCP without tls: backend by the ClientHello's server name (exact or `*.suffix`); null: off. */
  readonly sniRoutes: Readonly<Record<string, string>> | null;
  /**
   * CIDRs of the peers whose X-Forwarded-For / Forwarded are kept and appended to; from any
   * other peer they are replaced. Empty (default): trust nobody.
   */
  readonly trustedProxies: readonly string[];
  /** Every connection starts with a PROXY protocol v1 or v2 header (HAProxy `accept-proxy`). */
  readonly acceptProxy: boolean;
  /** CIDRs allowed to send the PROXY header; empty: any peer. */
  readonly trustedSources: readonly string[];
}

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/**
 * A certificate and its key as read and checked at load (config/tls.ts). The PEM text travels
 * with the config (to cluster workers too) so that what was checked is what serves; it is never
 * logged or shown: stats show `file`, `names` and `notAfter` only.
 */
export interface TlsKeyPair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  /** DNS names the certificate is for (subjectAltName, else the subject CN), lower case. */
  readonly names: readonly string[];
  /** Expiry, ms since epoch. */
  readonly notAfter: number;
}

export interface FrontendTlsConfig {
  /** The first is the default (no SNI, or an SNI no certificate names). */
  readonly certificates: readonly TlsKeyPair[];
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
  /** OpenSSL cipher list; null: Node's defaults. */
  readonly ciphers: string | null;
  readonly strictSni: boolean;
}

export interface BackendTlsConfig {
  /** PEM CA bundle; null: Node's bundled roots. */
  readonly ca: string | null;
  readonly caFile: string | null;
  /** SNI and the name verified; null: the server's host when it is a name (not an IP). */
  readonly servername: string | null;
  readonly verify: boolean;
  /** Client certificate for mutual TLS; null: none. */
  readonly clientCert: TlsKeyPair | null;
  readonly minVersion: TlsVersion;
  readonly ciphers: string | null;
}

export interface HttpLimits {
  /** Request line length (414 past it). */
  readonly maxRequestLine: number;
  /** Whole head size (431 past it). */
  readonly maxHeaderBytes: number;
  readonly maxHeaders: number;
  /** obs-fold in request heads: 400, or unfolded to spaces before forwarding. */
  readonly obsFold: 'reject' | 'unfold';
}

/** Inclusive status ranges; `expect: 200` is [[200, 200]]. */
export type StatusRanges = readonly (readonly [number, number])[];

export interface HealthConfig {
  readonly type: 'tcp' | 'http' | 'none';
  readonly method: string;
  readonly path: string;
  readonly host: string | null;
  readonly expect: StatusRanges;
  /** Substring the body must contain; null: not checked. */
  readonly body: string | null;
  readonly intervalMs: number;
  /** Interval while a server is changing state (HAProxy `fastinter`). */
  readonly fastIntervalMs: number;
  /** Interval while a server is DOWN (HAProxy `downinter`). */
  readonly downIntervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  /** `shutdown_sessions`: close a server's connections when it goes DOWN. */
  readonly onMarkedDown: 'none' | 'shutdown_sessions';
  /**
   * PROXY header on check connections (`check_send_proxy`): 'auto' when the server sends one
   * on its traffic (HAProxy's default), true always (v1 unless the server says v2), false never.
   */
  readonly sendProxy: 'auto' | boolean;
}

/** PROXY protocol version sent to servers: 0 none, 1 text (v1), 2 binary (v2). */
export type ProxyVersion = 0 | 1 | 2;

export interface PassiveHealthConfig {
  /** Consecutive connect failures or 5xx responses that eject a server; 0 disables. */
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  /** At most this share (0-100) of a backend's servers ejected at once. */
  readonly maxEjectedPercent: number;
}

export type StickyConfig = { readonly type: 'cookie'; readonly name: string } | { readonly type: 'source'; readonly ttlMs: number; readonly size: number };

export interface ServerConfig {
  readonly name: string;
  readonly address: HostPort;
  readonly weight: number;
  readonly backup: boolean;
  /** 0 = unlimited */
  readonly maxconn: number;
  /** PROXY protocol to this server; null: the backend's `send_proxy`. */
  readonly sendProxy: ProxyVersion | null;
}

export interface ConsulDiscoveryConfig {
  readonly service: string;
  readonly tag: string | null;
  readonly passing: boolean;
  readonly dc: string | null;
}

export interface BackendConfig {
  readonly name: string;
  readonly mode: Mode;
  /** A built-in name or a path to a user module (resolved against the config file's folder). */
  readonly strategy: string;
  readonly strategyOptions: Readonly<Record<string, unknown>>;
  readonly sticky: StickyConfig | null;
  readonly health: HealthConfig;
  readonly passive: PassiveHealthConfig;
  readonly timeouts: {
    readonly connectMs: number;
    /** Server inactivity (HAProxy `timeout server`): 504 in HTTP mode. */
    readonly serverMs: number;
    /** Idle time of a pooled server connection before switchyard closes it. */
    readonly serverKeepAliveMs: number;
  };
  readonly retries: number;
  /** When a request is sent again (HAProxy `retry-on`). */
  readonly retryOn: RetryOn;
  readonly servers: readonly ServerConfig[];
  readonly discovery: { readonly consul: ConsulDiscoveryConfig } | null;
  /** Header rules for requests sent to / responses from this backend (HTTP). */
  readonly requestHeaders: HeaderRulesConfig | null;
  readonly responseHeaders: HeaderRulesConfig | null;
  /** Requests (connections in TCP mode) waiting for a server slot at most; 0 = no queue. */
  readonly maxQueue: number;
  /** Time a request may wait in the queue (`timeouts.queue`, default `timeouts.connect`) before its 503. */
  readonly queueTimeoutMs: number;
  /** A sticky request whose server can no longer take it goes to another one (HAProxy `option redispatch`). */
  readonly redispatch: boolean;
  /** Weight ramp of a server that comes UP, is added or leaves MAINT; null: none. */
  readonly slowStart: SlowStartConfig | null;
  readonly circuitBreaker: CircuitBreakerConfig | null;
  /** TLS to the servers and their health checks; null: plain. */
  readonly tls: BackendTlsConfig | null;
  /** PROXY protocol header on every connection to its servers (`send_proxy: v1|v2`). */
  readonly sendProxy: ProxyVersion;
}

export interface SlowStartConfig {
  readonly durationMs: number;
  /** The weight starts at this share (0-100) of the server's weight. */
  readonly minWeightPercent: number;
}

/** Envoy's circuit breaker thresholds for one backend; 0 = not applied. */
export interface CircuitBreakerConfig {
  /** Connections open to the backend's servers (busy and pooled). */
  readonly maxConnections: number;
  /** Requests waiting in the queue. */
  readonly maxPending: number;
  /** Requests (TCP: connections) in flight. */
  readonly maxRequests: number;
  /** Retries in flight; -1 = not applied. */
  readonly maxRetries: number;
  /** Retries in flight at most max(minRetryConcurrency, percent of requests in flight); null: no budget. */
  readonly retryBudget: { readonly percent: number; readonly minRetryConcurrency: number } | null;
}

/** HAProxy `retry-on` keywords switchyard implements, and the statuses that are retried. */
export interface RetryOn {
  /** The connection failed (refused, reset before connect, connect timeout): nothing was sent. */
  readonly connFailure: boolean;
  /** The server closed without a byte of response after (part of) the request was sent. */
  readonly emptyResponse: boolean;
  /** The server answered something that is not a valid HTTP response head. */
  readonly junkResponse: boolean;
  /** `timeouts.server` passed before any byte of response. */
  readonly responseTimeout: boolean;
  /** Response statuses whose response is dropped and the request sent to another server. */
  readonly statuses: readonly number[];
}

export interface LoggingConfig {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Access log: one line per request/connection. */
  readonly access: { readonly enabled: boolean; readonly sample: number };
}

export interface Config {
  /** Absolute path of the file this came from; null for the embedded demo. */
  readonly source: string | null;
  readonly stats: StatsConfig;
  readonly consul: ConsulConfig | null;
  readonly workers: number | 'auto';
  readonly shutdownTimeoutMs: number;
  readonly logging: LoggingConfig;
  readonly frontends: readonly FrontendConfig[];
  readonly backends: readonly BackendConfig[];
}
