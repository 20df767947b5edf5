// Small builders for discovery tests: a Runtime with hand-built backends (no YAML loader, no
// listeners), a ConsulConfig pointing at the test server, a logger that keeps its lines, and
// setupDiscovery() wiring them to a ConsulDiscovery.
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { Test } from 'tap';
import type { BackendConfig, Config, ConsulConfig, ConsulDiscoveryConfig } from '../../src/config/types.js';
import { ConsulDiscovery, type ConsulDiscoveryOptions } from '../../src/discovery/consul.js';
import { Backend } from '../../src/model/backend.js';
import { Runtime } from '../../src/model/runtime.js';
import { roundRobin } from '../../src/strategies/round-robin.js';
import { backendConfig } from './backend-config.js';
import { config } from './proxy-harness.js';
import { ConsulTestServer, type ConsulTestServerOptions } from './consul-server.js';

export function discoveryBackend(name: string, consul: Partial<ConsulDiscoveryConfig> | null, over: Partial<BackendConfig> = {}): BackendConfig {
  const discovery = consul === null ? null : { consul: { service: name, tag: null, passing: true, dc: null, ...consul } };
  return backendConfig([], { name, discovery, ...over });
}

// The blocking wait is a minute, and the tests wait 10 s for a change: a change seen in time woke
// the blocking query (a watch that only saw it when the wait expired fails), and a loaded machine
// is far from either limit.
export function consulConfig(address: string, over: Partial<ConsulConfig> = {}): ConsulConfig {
  return { address, token: null, register: null, waitMs: 60_000, ...over };
}

/** No frontends: discovery and registration need only the backends and the stats listener. */
export function testConfig(consul: ConsulConfig | null, backends: BackendConfig[]): Config {
  return config([], backends, { consul });
}

/** A runtime of these backends; with `previous`, backends of the same name are kept (like a reload). */
export function testRuntime(config: Config, previous: Runtime | null = null): Runtime {
  const backends = new Map<string, Backend>();
  for (const b of config.backends) {
    const old = previous?.backends.get(b.name);
    if (old) {
      old.apply(b, roundRobin);
      backends.set(b.name, old);
    } else {
      backends.set(b.name, new Backend(b, roundRobin));
    }
  }
  return new Runtime(config, new Map(), backends, (previous?.generation ?? 0) + 1);
}

/** A pino logger whose JSON lines are kept in `lines` (level debug). */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'debug' }, stream), lines };
}

/** Poll `cond` every 10ms until true; throws after `timeoutMs` with `what`. Returns the elapsed ms. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what = 'condition'): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Names of a backend's servers that are in its list (not retired), sorted. */
export function liveNames(b: Backend): string[] {
  return b.servers
    .filter((s) => !s.retired)
    .map((s) => s.name)
    .sort();
}

/**
 * Short delays for tests that make many changes in a row (the rate limit and the backoff have
 * tests of their own with the sizes that matter there).
 */
export const FAST_DISCOVERY: ConsulDiscoveryOptions = { backoffBaseMs: 20, backoffCapMs: 200, timeoutMs: 1000, rateLimitMs: 20 };

export interface DiscoverySetupOptions {
  server?: ConsulTestServerOptions;
  consul?: Partial<ConsulConfig>;
  discovery?: ConsulDiscoveryOptions;
}

/** A Consul test server, a runtime of `backends` and a ConsulDiscovery on them (not synced yet). */
export async function setupDiscovery(t: Test, backends: BackendConfig[], opts: DiscoverySetupOptions = {}) {
  const consul = await ConsulTestServer.start(opts.server);
  const { logger, lines } = captureLogger();
  const cfg = consulConfig(consul.address, opts.consul);
  const runtime = testRuntime(testConfig(cfg, backends));
  const discovery = new ConsulDiscovery(cfg, logger, { ...FAST_DISCOVERY, ...opts.discovery });
  t.teardown(async () => {
    await discovery.stop();
    await consul.close();
  });
  const backend = (name: string): Backend => runtime.backends.get(name)!;
  return { consul, discovery, runtime, backend, lines, cfg };
}

/** Count setDiscovered calls on a backend object. */
export function spyDiscovered(b: Backend): { calls: number } {
  const counter = { calls: 0 };
  const orig = b.setDiscovered.bind(b);
  b.setDiscovered = (specs) => {
    counter.calls++;
    orig(specs);
  };
  return counter;
}
