import type { RuntimeComponent } from './host.js';
import type { Switchyard } from './switchyard.js';
import { log } from './log.js';
import { HealthChecker } from './health/checker.js';
import { ConsulDiscovery } from './discovery/consul.js';
import { ConsulRegistration } from './discovery/register.js';
import { startStats } from './stats/listener.js';
import { startRuntimeApi } from './runtime-api/listener.js';
import { readFileSync } from 'node:fs';
import { TlsFileWatch } from './tls-file-watch.js';

// The components that run beside the proxy core, built once at start: health checks,
// Consul discovery, the stats listener and self-registration. Each follows the runtime through
// sync(). On SIGTERM registration leaves Consul as the drain starts (leave()); the rest stop in
// reverse order once in-flight requests are done, the stats listener among the last.

export async function buildComponents(sy: Switchyard): Promise<RuntimeComponent[]> {
  const config = sy.runtime().config;
  const components: RuntimeComponent[] = [
    new HealthChecker({ log: log.child({ component: 'health' }) }),
    new ConsulDiscovery(config.consul, log.child({ component: 'discovery' })),
    // Renewed certificate files reload the config (a config file of its own only: not the demo).
    new TlsFileWatch(() => sy.reload(), log.child({ component: 'tls' })),
  ];
  // Started here (not lazily) so a taken stats port fails the start with a clear error.
  const stats = await startStats(sy, config.stats, log.child({ component: 'stats' }));
  components.push(stats);
  // The runtime API socket(s) (`stats.socket`): read through the stats' own rates, so
  // `show stat` and `/stats;csv` are the same bytes.
  if ((config.stats.sockets ?? []).length > 0) {
    try {
      components.push(
        await startRuntimeApi(sy, config.stats.sockets, log.child({ component: 'runtime-api' }), { rates: stats.tracker, version: packageVersion() }),
      );
    } catch (error) {
      await stats.close();
      throw error;
    }
  }
  // Registration advertises the address the stats listener really bound (port 0 in tests).
  components.push(new ConsulRegistration(stats.address(), log.child({ component: 'consul-register' })));
  return components;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** In a cluster worker: passive detection only (the primary runs the active checks). */
export function buildWorkerComponents(): Promise<RuntimeComponent[]> {
  return Promise.resolve([new HealthChecker({ active: false, passive: true, log: log.child({ component: 'health' }) })]);
}
