// A hand-built, normalised BackendConfig for model and strategy tests (no YAML loader): servers
// s1..sN on 127.0.0.1:9001.. with the weights given, health `none` (every server starts UP).
// The other fixtures (proxy-harness.ts, stats-fixtures.ts, fake-servers.ts, consul-fixtures.ts)
// build on these, so a field added to the config types is filled in here once, with the value
// the loader gives it when the key is absent (src/config/load.ts).
import type { BackendConfig, HealthConfig, ServerConfig } from '../../src/config/types.js';

export interface ServerSketch {
  readonly name?: string;
  /** `host:port`; default 127.0.0.1:9001, 9002... by position. */
  readonly address?: string;
  readonly weight?: number;
  readonly backup?: boolean;
  readonly maxconn?: number;
  readonly sendProxy?: ServerConfig['sendProxy'];
}

export function serverConfigs(servers: readonly (number | ServerSketch)[]): ServerConfig[] {
  return servers.map((s, i) => {
    const sk: ServerSketch = typeof s === 'number' ? { weight: s } : s;
    return {
      name: sk.name ?? `s${i + 1}`,
      address: sk.address === undefined ? { host: '127.0.0.1', port: 9001 + i } : hostPort(sk.address),
      weight: sk.weight ?? 1,
      backup: sk.backup ?? false,
      maxconn: sk.maxconn ?? 0,
      sendProxy: sk.sendProxy ?? null,
    };
  });
}

/** `127.0.0.1:8080` → { host, port }. */
function hostPort(address: string): ServerConfig['address'] {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

/** Health settings with checks off (`type: 'none'`), HAProxy's counts (rise 2, fall 3). */
export function healthConfig(over: Partial<HealthConfig> = {}): HealthConfig {
  return {
    type: 'none',
    method: 'GET',
    path: '/',
    host: null,
    expect: [[200, 399]],
    body: null,
    intervalMs: 1000,
    fastIntervalMs: 1000,
    downIntervalMs: 1000,
    timeoutMs: 500,
    rise: 2,
    fall: 3,
    onMarkedDown: 'none',
    sendProxy: 'auto',
    ...over,
  };
}

/** `servers`: weights (`[1, 2, 1]`) or sketches. */
export function backendConfig(servers: readonly (number | ServerSketch)[], over: Partial<BackendConfig> = {}): BackendConfig {
  return {
    name: 'b',
    mode: 'http',
    strategy: 'round-robin',
    strategyOptions: {},
    sticky: null,
    health: healthConfig(),
    passive: { consecutiveFailures: 0, baseEjectionMs: 30000, maxEjectionMs: 300000, maxEjectedPercent: 50 },
    timeouts: { connectMs: 2000, serverMs: 10000, serverKeepAliveMs: 4000 },
    retries: 2,
    retryOn: { connFailure: true, emptyResponse: false, junkResponse: false, responseTimeout: false, statuses: [] },
    servers: serverConfigs(servers),
    discovery: null,
    maxQueue: 0,
    queueTimeoutMs: 2000,
    redispatch: true,
    slowStart: null,
    circuitBreaker: null,
    tls: null,
    requestHeaders: null,
    responseHeaders: null,
    sendProxy: 0,
    ...over,
  };
}
