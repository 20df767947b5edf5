import type { StatsHost } from '../host.js';
import type { Backend } from '../model/backend.js';
import type { DiscoveryStatus } from '../model/discovery-status.js';
import type { Collector } from './collector.js';
import { labelPairs } from './exposition.js';

// Where each discovered backend's servers come from and how that source is doing, for the JSON
// (and so the page) and Prometheus: the Consul service, servers in the last answer, answers
// applied, consecutive and total failures, the last error and the last good answer. Envoy keeps
// the same figures per cluster (`update_success`, `update_failure`); Traefik shows its
// providers. Alert on `time() - switchyard_backend_discovery_last_success_timestamp_seconds`.

export interface DiscoveryJson {
  provider: 'consul';
  service: string;
  index: string;
  servers: number;
  applied: number;
  unchanged: number;
  rateLimited: number;
  failures: number;
  errors: number;
  lastError: string | null;
  /** ms since epoch; null before the first good answer. */
  lastSuccessAt: number | null;
}

/** The backend's discovery status while its config has `discovery:`; null otherwise. */
function statusOf(b: Backend): DiscoveryStatus | null {
  return b.config.discovery ? b.discovery : null;
}

/** The `discovery` part of a backend's JSON; null for a backend of static servers only. */
export function discoveryJson(b: Backend): DiscoveryJson | null {
  const d = statusOf(b);
  if (d === null) return null;
  return {
    provider: d.provider,
    service: d.service,
    index: d.index,
    servers: d.servers,
    applied: d.applied,
    unchanged: d.unchanged,
    rateLimited: d.rateLimited,
    failures: d.failures,
    errors: d.errors,
    lastError: d.lastError,
    lastSuccessAt: d.lastSuccessAt === 0 ? null : d.lastSuccessAt,
  };
}

/** Prometheus families (read at scrape time, like the others in metrics.ts). */
export function discoveryCollectors(host: StatsHost): Collector[] {
  const family = (name: string, help: string, type: Collector['type'], value: (d: DiscoveryStatus) => number | null): Collector => ({
    name,
    help,
    type,
    collect(out) {
      for (const b of host.runtime().backends.values()) {
        const d = statusOf(b);
        if (d === null) continue;
        const v = value(d);
        if (v !== null) out.sample(name, labelPairs({ backend: b.name, provider: d.provider, service: d.service }), v);
      }
    },
  });
  return [
    family('switchyard_backend_discovery_servers', 'Servers in the last discovery answer applied to the backend.', 'gauge', (d) => d.servers),
    family(
      'switchyard_backend_discovery_updates_total',
      'Discovery answers that changed the backend (new servers, addresses, weights or health).',
      'counter',
      (d) => d.applied,
    ),
    family(
      'switchyard_backend_discovery_errors_total',
      'Discovery requests that failed (the backend kept its last known servers).',
      'counter',
      (d) => d.errors,
    ),
    family('switchyard_backend_discovery_failing', 'Consecutive failed discovery requests; 0 while the source answers.', 'gauge', (d) => d.failures),
    family(
      'switchyard_backend_discovery_rate_limited_total',
      'Discovery answers after which the watch waited for its rate limit (a churning result).',
      'counter',
      (d) => d.rateLimited,
    ),
    family(
      'switchyard_backend_discovery_last_success_timestamp_seconds',
      'When the discovery source last answered (Unix time); absent before the first answer.',
      'gauge',
      (d) => (d.lastSuccessAt === 0 ? null : d.lastSuccessAt / 1000),
    ),
  ];
}
