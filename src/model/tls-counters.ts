// TLS counters of one frontend: handshakes by protocol version, failures by reason, and what
// SNI passthrough saw. Plain fields (the handshake path increments them); stats read them.

/** Why a handshake (or a ClientHello read, for SNI routing) ended without a connection. */
export const TLS_FAILURE_REASONS = [
  /** Not TLS at all: plain HTTP on the TLS port, random bytes, a malformed ClientHello. */
  'protocol',
  /** The client and the frontend share no protocol version. */
  'version',
  /** No cipher (or signature algorithm) in common. */
  'cipher',
  /** An SNI that no certificate names, with strict_sni (or no SNI route and no default). */
  'no_certificate',
  /** The client refused our certificate (an alert: unknown CA, bad certificate). */
  'client_rejected',
  /** timeouts.handshake passed mid-handshake (a stalled or slow client). */
  'timeout',
  /** The client closed or reset the connection before the handshake completed. */
  'client_closed',
  /** A ClientHello over the size we read before routing (SNI routing). */
  'oversized',
  'other',
] as const;

export type TlsFailureReason = (typeof TLS_FAILURE_REASONS)[number];

export class TlsCounters {
  /** Completed handshakes (terminating frontends) or routed ClientHellos (SNI routing). */
  handshakes = 0;
  tls12 = 0;
  tls13 = 0;
  /** Handshakes that resumed a session (a ticket or session id). */
  resumed = 0;
  readonly failures: Record<TlsFailureReason, number> = {
    protocol: 0,
    version: 0,
    cipher: 0,
    no_certificate: 0,
    client_rejected: 0,
    timeout: 0,
    client_closed: 0,
    oversized: 0,
    other: 0,
  };

  failed(reason: TlsFailureReason): void {
    this.failures[reason]++;
  }

  get failuresTotal(): number {
    let n = 0;
    for (const r of TLS_FAILURE_REASONS) n += this.failures[r];
    return n;
  }
}

/** Absolute values as a cluster worker reports them: handshakes, tls12, tls13, resumed, failures. */
export type TlsSnapshot = number[];

export function snapshotTls(c: TlsCounters): TlsSnapshot {
  return [c.handshakes, c.tls12, c.tls13, c.resumed, ...TLS_FAILURE_REASONS.map((r) => c.failures[r])];
}

/** `target` := the sum of `snapshots` (the primary's totals over workers, dead ones included). */
export function combineTls(target: TlsCounters, snapshots: readonly (TlsSnapshot | undefined)[]): void {
  const sum = new Array<number>(4 + TLS_FAILURE_REASONS.length).fill(0);
  let any = false;
  for (const s of snapshots) {
    if (s === undefined) continue;
    any = true;
    for (let i = 0; i < sum.length; i++) sum[i]! += s[i] ?? 0;
  }
  if (!any) return;
  [target.handshakes, target.tls12, target.tls13, target.resumed] = sum as [number, number, number, number];
  TLS_FAILURE_REASONS.forEach((r, i) => {
    target.failures[r] = sum[4 + i]!;
  });
}
