import type { ServerSpec } from '../model/server.js';

// Turning one answer of GET /v1/health/service/<name> into a discovery snapshot: the servers
// (ServerSpec, identity `consul:<Service.ID>`) and which of them Consul reports critical.
// Pure functions: the watch loop and tests share them.

/** One element of /v1/health/service/<name> (the fields we read; Consul sends more). */
export interface HealthEntry {
  readonly Node?: { readonly Node?: string; readonly Address?: string; readonly Datacenter?: string };
  readonly Service?: {
    readonly ID?: string;
    readonly Service?: string;
    readonly Tags?: readonly string[] | null;
    readonly Address?: string;
    readonly Port?: number;
    readonly Meta?: Readonly<Record<string, string>> | null;
    readonly Weights?: { readonly Passing?: number; readonly Warning?: number } | null;
  };
  readonly Checks?: readonly { readonly CheckID?: string; readonly Status?: string; readonly ServiceID?: string }[] | null;
}

export interface Snapshot {
  /** Sorted by id, so that the same set always compares equal whatever Consul's order. */
  readonly specs: readonly ServerSpec[];
  /** Ids whose node or service check is critical (only possible with `passing: false`). */
  readonly critical: ReadonlySet<string>;
  /** Entries skipped, with why (no ID, no usable address or port). */
  readonly skipped: readonly string[];
  /** Comparison key: equal keys mean nothing to apply. */
  readonly key: string;
}

/** Same bounds as a static server's `weight` (config schema: integer 0-256, HAProxy's range). */
const MAX_WEIGHT = 256;

/** `Meta.weight` when it is an integer 0-256, else 1. */
export function weightFromMeta(meta: Readonly<Record<string, string>> | null | undefined): number {
  const raw = meta?.weight;
  if (typeof raw !== 'string' || !/^\s*\d{1,3}\s*$/.test(raw)) return 1;
  const n = Number(raw);
  return n <= MAX_WEIGHT ? n : 1;
}

export function toSnapshot(entries: unknown): Snapshot {
  const list = Array.isArray(entries) ? (entries as HealthEntry[]) : [];
  const specs: ServerSpec[] = [];
  const critical = new Set<string>();
  const skipped: string[] = [];
  const seen = new Map<string, number>();
  for (const e of list) {
    const svc = e?.Service;
    const serviceId = svc?.ID;
    if (!svc || typeof serviceId !== 'string' || serviceId === '') {
      skipped.push('entry without Service.ID');
      continue;
    }
    // Service.Address is optional in Consul: empty means "the node's address".
    const host = svc.Address || e.Node?.Address || '';
    const port = svc.Port;
    if (host === '' || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      skipped.push(`${serviceId}: no usable address (${host || '?'}:${port ?? '?'})`);
      continue;
    }
    // Service IDs are unique per agent, not per cluster: two nodes may both run "web-1". The
    // second one seen gets the node in its identity rather than silently replacing the first.
    let id = `consul:${serviceId}`;
    let name = serviceId;
    if (seen.has(id)) {
      const node = e.Node?.Node ?? host;
      id = `consul:${serviceId}@${node}`;
      name = `${serviceId}@${node}`;
    }
    seen.set(id, 1);
    specs.push({ id, name, host: stripBrackets(host), port, weight: weightFromMeta(svc.Meta), backup: false, maxconn: 0 });
    if ((e.Checks ?? []).some((c) => c?.Status === 'critical')) critical.add(id);
  }
  specs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const key = JSON.stringify([specs, [...critical].sort()]);
  return { specs, critical, skipped, key };
}

/**
 * X-Consul-Index as a bigint (Consul's index is a uint64: BigInt keeps it exact past 2^53);
 * null when missing or not a decimal integer. 0 is returned as is: the watch raises it to 1
 * (Consul's blocking-query docs, "sanity check index is greater than zero").
 */
export function parseIndex(header: string | string[] | undefined): bigint | null {
  const raw = Array.isArray(header) ? header[0] : header;
  if (typeof raw !== 'string' || !/^\d{1,20}$/.test(raw)) return null;
  return BigInt(raw);
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
