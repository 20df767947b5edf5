import type { HealthConfig, PassiveHealthConfig } from '../config/types.js';
import type { Backend, TrafficObserver } from '../model/backend.js';
import type { Server } from '../model/server.js';
import type { Logger } from '../log.js';

// Passive detection (Envoy's outlier detection, consecutive-failures flavour): the proxy core
// reports what real traffic saw through `backend.observer`; `consecutiveFailures` failures in a
// row (connect failure, reset, server timeout, 5xx) eject the server for
// `baseEjectionMs × 2^level`, capped at `maxEjectionMs`. `level` is how many times it was
// ejected recently: it restarts at 0 once the server stayed in for `maxEjectionMs` after its
// last ejection (Envoy decays its multiplier the same way while a host stays healthy).
//
// Cap: at most `maxEjectedPercent` of the backend's servers are ejected at once, rounded down,
// but one server may always be ejected when the percent is above 0 (Envoy: "will eject at
// least one host regardless of the value"). 0 disables ejection by passive failures.
//
// Backends with `health.type: none` have no other way to learn that a server is gone, so there
// a refused connection (reason `connect`) ejects the server at once, without the cap: the
// contract says such a server is DOWN when connections to it fail. It comes back when the
// ejection period ends, like any ejected server (the proxy core's own `connectFailed` flag
// would keep it out forever, since an ineligible server never gets the traffic that clears it).
//
// With active checks, an ejection ends as soon as the checks pass `rise` times in a row after
// it (Envoy's `successful_active_health_check_uneject_host`, on by default; HAProxy brings a
// server back by `rise`): the ejection period only bounds servers nobody checks. A rolling
// deploy that restarts a server in 2 s then loses it for 2 s, not for 30 s and doubling.
//
// Hot path: success() is one field write; failure() is a compare unless it ejects.

export class PassiveDetector implements TrafficObserver {
  private passive: PassiveHealthConfig;
  private noCheck: boolean;
  /** One un-eject timer per ejected server. */
  private readonly timers = new Map<Server, NodeJS.Timeout>();
  /** Recent ejection level and when the last ejection ended, per server. */
  private readonly levels = new WeakMap<Server, { level: number; endedAt: number; passes: number }>();

  constructor(
    readonly backend: Backend,
    passive: PassiveHealthConfig,
    health: HealthConfig,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.passive = passive;
    this.noCheck = health.type === 'none';
  }

  /** A reload changed the settings: new failures follow the new ones. */
  configure(passive: PassiveHealthConfig, health: HealthConfig): void {
    this.passive = passive;
    this.noCheck = health.type === 'none';
  }

  /** Whether a backend with these settings needs a detector at all. */
  static wanted(passive: PassiveHealthConfig, health: HealthConfig): boolean {
    return passive.consecutiveFailures > 0 || health.type === 'none';
  }

  success(server: Server): void {
    server.consecutiveFailures = 0;
  }

  failure(server: Server, reason: 'connect' | 'reset' | 'timeout' | '5xx'): void {
    const n = ++server.consecutiveFailures;
    if (server.ejected) return;
    if (this.noCheck && reason === 'connect') {
      this.eject(server, `connection failed (no health check)`);
      return;
    }
    const threshold = this.passive.consecutiveFailures;
    if (threshold > 0 && n >= threshold && this.mayEject()) {
      this.eject(server, `${n} consecutive failures (last: ${reason})`);
    }
  }

  /** An active check result: `rise` passes in a row since the ejection bring the server back. */
  checked(server: Server, ok: boolean, rise: number): void {
    if (!server.ejected) return;
    const entry = this.levels.get(server);
    if (entry === undefined) return;
    if (!ok) {
      entry.passes = 0;
      return;
    }
    if (++entry.passes >= rise) this.uneject(server, `active checks passed ${entry.passes} time${entry.passes === 1 ? '' : 's'} (rise ${rise})`);
  }

  /** Ejected now, in the backend's current server set. */
  ejectedCount(): number {
    let n = 0;
    for (const s of this.backend.servers) if (s.ejected && !s.retired) n++;
    return n;
  }

  private mayEject(): boolean {
    const percent = this.passive.maxEjectedPercent;
    if (percent <= 0) return false;
    const total = this.backend.servers.length;
    const allowed = Math.max(1, Math.floor((total * percent) / 100));
    return this.ejectedCount() < allowed;
  }

  private eject(server: Server, why: string): void {
    const now = this.now();
    const { baseEjectionMs, maxEjectionMs } = this.passive;
    let entry = this.levels.get(server);
    if (entry === undefined) {
      entry = { level: 0, endedAt: 0, passes: 0 };
      this.levels.set(server, entry);
    } else if (entry.endedAt > 0 && now - entry.endedAt >= maxEjectionMs) {
      entry.level = 0;
    }
    const ms = Math.min(baseEjectionMs * 2 ** Math.min(entry.level, 30), maxEjectionMs);
    entry.level++;
    entry.passes = 0;
    server.ejected = true;
    server.ejectedUntil = now + ms;
    server.ejections++;
    const timer = setTimeout(() => this.uneject(server, 'ejection period ended'), ms);
    this.timers.set(server, timer);
    const reason = `ejected for ${ms}ms: ${why}`;
    server.noteChange(reason, 'passive');
    this.log.warn(
      { backend: this.backend.name, server: server.name, reason: why, ejectionMs: ms, ejections: server.ejections },
      `server ${server.name} ejected for ${ms}ms: ${why}`,
    );
  }

  private uneject(server: Server, why: string): void {
    const timer = this.timers.get(server);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(server);
    const entry = this.levels.get(server);
    if (entry !== undefined) entry.endedAt = this.now();
    if (!server.ejected) return;
    server.ejected = false;
    server.ejectedUntil = 0;
    server.consecutiveFailures = 0;
    server.noteChange(why, 'passive');
    this.log.info({ backend: this.backend.name, server: server.name, reason: why }, `server ${server.name} back from ejection: ${why}`);
  }

  /** Servers no longer in the backend: their timers go (the flags no longer matter). */
  forget(keep: ReadonlySet<Server>): void {
    for (const [server, timer] of this.timers) {
      if (keep.has(server)) continue;
      clearTimeout(timer);
      this.timers.delete(server);
    }
  }

  /** Stop: no timers left, and no server left ejected with nobody to bring it back. */
  stop(reason = 'passive detection stopped'): void {
    for (const server of [...this.timers.keys()]) this.uneject(server, reason);
  }
}
