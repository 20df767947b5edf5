import { basename } from 'node:path';
import type { StatsHost } from '../host.js';
import { labelPairs } from './exposition.js';
import type { Collector } from './collector.js';
import type { Frontend } from '../model/frontend.js';
import { TLS_FAILURE_REASONS } from '../model/tls-counters.js';

// TLS figures of the frontends, for the JSON (and so the page) and Prometheus: handshakes by
// protocol version, resumptions, failures by reason, and per certificate the days left before
// it expires. Certificates are shown by file name, DNS names and expiry only; nothing of a key.
// HAProxy's CSV has no TLS columns, so the CSV stays as HAProxy writes it.

const DAY_MS = 86_400_000;

export interface TlsCertificateJson {
  file: string;
  names: readonly string[];
  notAfter: number;
  /** Whole days left (negative once expired). */
  daysLeft: number;
}

export interface TlsJson {
  /** `terminate` (tls:) or `sni-route` (TCP passthrough by SNI). */
  kind: 'terminate' | 'sni-route';
  handshakes: number;
  versions: { 'TLSv1.2': number; 'TLSv1.3': number };
  resumed: number;
  failures: Record<string, number>;
  certificates: TlsCertificateJson[];
}

/** Days left, floored: 0 on the last day, negative once expired. */
export function daysLeft(notAfter: number, now: number): number {
  return Math.floor((notAfter - now) / DAY_MS);
}

/** The TLS part of a frontend's JSON; null for a frontend without TLS or SNI routing. */
export function tlsJson(frontend: Frontend, now: number): TlsJson | null {
  const config = frontend.config;
  if (config.tls === null && config.sniRoutes === null) return null;
  const c = frontend.tls;
  const failures: Record<string, number> = {};
  for (const r of TLS_FAILURE_REASONS) failures[r] = c.failures[r];
  return {
    kind: config.tls !== null ? 'terminate' : 'sni-route',
    handshakes: c.handshakes,
    versions: { 'TLSv1.2': c.tls12, 'TLSv1.3': c.tls13 },
    resumed: c.resumed,
    failures,
    certificates: (config.tls?.certificates ?? []).map((p) => ({
      file: p.certFile,
      names: p.names,
      notAfter: p.notAfter,
      daysLeft: daysLeft(p.notAfter, now),
    })),
  };
}

function tlsFrontends(host: StatsHost): Frontend[] {
  const out: Frontend[] = [];
  for (const f of host.runtime().frontends.values()) if (f.config.tls !== null || f.config.sniRoutes !== null) out.push(f);
  return out;
}

/** Prometheus families (read at scrape time, like the others in metrics.ts). */
export function tlsCollectors(host: StatsHost): Collector[] {
  const handshakes = 'switchyard_frontend_tls_handshakes_total';
  const resumed = 'switchyard_frontend_tls_resumed_total';
  const failures = 'switchyard_frontend_tls_handshake_failures_total';
  const expiry = 'switchyard_frontend_tls_certificate_expiry_days';
  return [
    {
      name: handshakes,
      help: 'Completed TLS handshakes (SNI routing: ClientHellos routed), by protocol version.',
      type: 'counter',
      collect(out) {
        for (const f of tlsFrontends(host)) {
          if (f.config.tls === null) out.sample(handshakes, labelPairs({ frontend: f.name, version: 'passthrough' }), f.tls.handshakes);
          else {
            out.sample(handshakes, labelPairs({ frontend: f.name, version: 'TLSv1.2' }), f.tls.tls12);
            out.sample(handshakes, labelPairs({ frontend: f.name, version: 'TLSv1.3' }), f.tls.tls13);
          }
        }
      },
    },
    {
      name: resumed,
      help: 'TLS handshakes that resumed a session.',
      type: 'counter',
      collect(out) {
        for (const f of tlsFrontends(host)) if (f.config.tls !== null) out.sample(resumed, labelPairs({ frontend: f.name }), f.tls.resumed);
      },
    },
    {
      name: failures,
      help: 'TLS handshakes (or ClientHello reads) that failed, by reason.',
      type: 'counter',
      collect(out) {
        for (const f of tlsFrontends(host))
          for (const reason of TLS_FAILURE_REASONS) out.sample(failures, labelPairs({ frontend: f.name, reason }), f.tls.failures[reason]);
      },
    },
    {
      name: expiry,
      help: 'Days until a frontend certificate expires (negative: expired).',
      type: 'gauge',
      collect(out) {
        const now = Date.now();
        for (const f of tlsFrontends(host)) {
          for (const p of f.config.tls?.certificates ?? [])
            out.sample(expiry, labelPairs({ frontend: f.name, certificate: basename(p.certFile), name: p.names[0] ?? '' }), (p.notAfter - now) / DAY_MS);
        }
      },
    },
  ];
}
