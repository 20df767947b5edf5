import { createHash } from 'node:crypto';
import type { BackendTlsConfig, HealthConfig } from '../config/types.js';
import type { RuntimeComponent } from '../host.js';
import { log as rootLog, type Logger } from '../log.js';
import type { Backend } from '../model/backend.js';
import { modelEvents, type ServerStateEvent } from '../model/events.js';
import type { Runtime } from '../model/runtime.js';
import type { Server } from '../model/server.js';
import { PassiveDetector } from './passive.js';
import { startProbe, type Probe, type ProbeResult } from './probes.js';
import { intervalFor, isUpBy, nextHealth, topOf } from './rise-fall.js';

// Active health checks and passive detection for every backend of the running config.
//
// One loop per checked server, keyed by the Server object (servers keep their identity across
// reloads and Consul updates, so a kept server keeps its loop, counter and history). A loop
// runs one check at a time: the next one is timed only once the current one finished, so a
// server is never checked twice at once. The first checks of the servers a sync starts are
// spread over one interval (one slot each, a random point inside it) and every later interval
// gets ±10%, so 200 servers on a 1 s interval are checked ~20 per 100 ms, not 200 at once
// (HAProxy: start_checks' spreading and `spread-checks`).
//
// Servers in MAINT are not checked (contract): a running check is cancelled when the server
// enters MAINT and its result dropped; leaving MAINT the counter restarts at `rise` (UP, one
// failure away from DOWN — what HAProxy does) and a check runs at once.
//
// Backends change without a runtime swap too (Consul snapshots, admin changes): the checker
// follows `backend-refresh` events and re-reads that backend's server list, coalesced per tick.

export interface HealthCheckerOptions {
  /** Defaults to the root logger's `health` child. */
  readonly log?: Logger;
  /** Run active checks (false in a cluster worker: the primary checks). Default true. */
  readonly active?: boolean;
  /** Install passive detectors as `backend.observer` (where traffic flows). Default true. */
  readonly passive?: boolean;
  /** Source of jitter, [0, 1). Default Math.random. */
  readonly random?: () => number;
  /**
   * Called as each check starts with the time it was due (performance.now() scale): tests
   * assert the spreading on it, a metric may report timer lag (start - due).
   */
  readonly onCheckStart?: (server: Server, dueAt: number) => void;
}

/** ±10% on every interval after the first. */
const JITTER = 0.1;

export class HealthChecker implements RuntimeComponent {
  private readonly log: Logger;
  private readonly active: boolean;
  private readonly passive: boolean;
  readonly random: () => number;
  readonly onCheckStart: ((server: Server, dueAt: number) => void) | null;
  private runtime: Runtime | null = null;
  private readonly loops = new Map<Server, CheckLoop>();
  private readonly detectors = new Map<Backend, PassiveDetector>();
  private readonly pendingBackends = new Set<string>();
  private stopped = false;
  private listening = false;

  constructor(options: HealthCheckerOptions = {}) {
    this.log = options.log ?? rootLog.child({ component: 'health' });
    this.active = options.active ?? true;
    this.passive = options.passive ?? true;
    this.random = options.random ?? Math.random;
    this.onCheckStart = options.onCheckStart ?? null;
  }

  /** Follow the runtime just swapped in: start, keep, restart or stop loops and detectors. */
  sync(runtime: Runtime): void {
    if (this.stopped) return;
    this.runtime = runtime;
    if (!this.listening) {
      modelEvents.on('server-state', this.onServerState);
      modelEvents.on('backend-refresh', this.onBackendRefresh);
      this.listening = true;
    }
    const live = new Set<Backend>(runtime.backends.values());
    for (const backend of live) this.syncBackend(backend);
    for (const [server, loop] of this.loops) {
      if (!live.has(loop.backend)) {
        void loop.stop(); // cancelled: only stop() waits for an in-flight check to settle
        this.loops.delete(server);
      }
    }
    for (const [backend, detector] of this.detectors) {
      if (live.has(backend)) continue;
      detector.stop('backend removed');
      if (backend.observer === detector) backend.observer = null;
      this.detectors.delete(backend);
    }
  }

  /** Stop every loop and detector: no timer left, in-flight checks cancelled. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.listening) {
      modelEvents.off('server-state', this.onServerState);
      modelEvents.off('backend-refresh', this.onBackendRefresh);
      this.listening = false;
    }
    const running: Promise<unknown>[] = [];
    for (const loop of this.loops.values()) {
      const p = loop.stop();
      if (p !== null) running.push(p);
    }
    this.loops.clear();
    for (const [backend, detector] of this.detectors) {
      detector.stop();
      if (backend.observer === detector) backend.observer = null;
    }
    this.detectors.clear();
    await Promise.all(running);
  }

  /** The loop checking `server`, if any (tests, stats). */
  loopOf(server: Server): CheckLoop | undefined {
    return this.loops.get(server);
  }

  private syncBackend(backend: Backend): void {
    const { health, passive } = backend.config;
    const current = new Set<Server>(backend.servers);

    if (this.active && health.type !== 'none') {
      const key = healthKey(health, backend.config.tls);
      const started: CheckLoop[] = [];
      for (const server of backend.servers) {
        // `disable health` (runtime API): unchecked, hence UP by checks, until `enable health`.
        if (server.checkDisabled) {
          if (server.checkDown) {
            server.checkDown = false;
            server.noteChange('health check disabled');
          }
          continue;
        }
        const loop = this.loops.get(server);
        if (loop !== undefined && loop.key === key) continue;
        if (loop !== undefined) void loop.stop(); // replaced: its in-flight check is cancelled, not awaited
        const next = new CheckLoop(this, backend, server, health, key, this.log);
        this.loops.set(server, next);
        started.push(next);
      }
      // Loops started together get one slot each of the interval, at a random point inside it
      // (HAProxy's start_checks spreads by position the same way, then adds random spread).
      for (let i = 0; i < started.length; i++) started[i]!.start((i + this.random()) / started.length);
    } else if (this.active) {
      // No active check (any more): nothing may keep a server DOWN by checks.
      for (const server of backend.servers) {
        if (server.checkDown) {
          server.checkDown = false;
          server.check.health = 0;
          server.noteChange('health check disabled');
        }
      }
    }
    for (const [server, loop] of this.loops) {
      if (loop.backend === backend && (!current.has(server) || health.type === 'none' || !this.active || server.checkDisabled)) {
        void loop.stop(); // cancelled: only stop() waits for an in-flight check to settle
        this.loops.delete(server);
      }
    }

    let detector = this.detectors.get(backend);
    if (this.passive && PassiveDetector.wanted(passive, health)) {
      if (detector === undefined) {
        detector = new PassiveDetector(backend, passive, health, this.log);
        this.detectors.set(backend, detector);
      } else {
        detector.configure(passive, health);
      }
      detector.forget(current);
      backend.observer = detector;
    } else if (detector !== undefined) {
      detector.stop('passive detection disabled');
      if (backend.observer === detector) backend.observer = null;
      this.detectors.delete(backend);
    }
  }

  private readonly onBackendRefresh = (event: { readonly backend: string }): void => {
    if (this.pendingBackends.size === 0) queueMicrotask(this.flushBackends);
    this.pendingBackends.add(event.backend);
  };

  private readonly flushBackends = (): void => {
    const names = [...this.pendingBackends];
    this.pendingBackends.clear();
    if (this.stopped || this.runtime === null) return;
    for (const name of names) {
      const backend = this.runtime.backends.get(name);
      if (backend !== undefined) this.syncBackend(backend);
    }
  };

  private readonly onServerState = (event: ServerStateEvent): void => {
    const loop = this.loops.get(event.server);
    if (loop === undefined) return;
    if (event.to === 'MAINT') loop.pause();
    else if (event.from === 'MAINT')
      queueMicrotask(() => {
        if (!this.stopped) loop.resumeFromMaint();
      });
  };
}

/** Settings that, when changed by a reload, restart a server's loop. */
/** Checks restart when the health settings or the backend's TLS settings change. */
function healthKey(health: HealthConfig, tls: BackendTlsConfig | null): string {
  // A digest, so the key holds no key material.
  return tls === null ? JSON.stringify(health) : `${JSON.stringify(health)} tls:${createHash('sha256').update(JSON.stringify(tls)).digest('base64')}`;
}

/** The check loop of one server. */
export class CheckLoop {
  private timer: NodeJS.Timeout | null = null;
  private dueAt = 0;
  private probe: Probe | null = null;
  private running: Promise<unknown> | null = null;
  private stopped = false;
  /** When the last check started (performance.now()), and how many ran: tests, debugging. */
  startedAt = -1;
  checks = 0;

  constructor(
    private readonly checker: HealthChecker,
    readonly backend: Backend,
    readonly server: Server,
    readonly health: HealthConfig,
    readonly key: string,
    private readonly log: Logger,
  ) {
    const { rise, fall } = health;
    const check = server.check;
    // Kept server, new settings: keep what checks last said, on the new scale.
    check.health = server.checkDown ? Math.min(Math.max(check.health, 0), rise - 1) : topOf(rise, fall);
  }

  /** First check after `share` (0..1) of the interval: callers spread their loops over it. */
  start(share: number): void {
    this.schedule(Math.floor(share * this.health.intervalMs));
  }

  /** Entering MAINT: cancel what runs; only a slow idle tick remains until it leaves. */
  pause(): void {
    if (this.stopped) return;
    this.cancelProbe();
    this.schedule(this.health.intervalMs);
  }

  /** Leaving MAINT: HAProxy's "start OK but check immediately". */
  resumeFromMaint(): void {
    if (this.stopped || this.server.admin === 'maint') return;
    const server = this.server;
    server.check.health = this.health.rise;
    if (server.checkDown) {
      server.checkDown = false;
      server.noteChange('leaving maintenance: checking');
    }
    this.cancelProbe();
    this.schedule(0);
  }

  /** Returns the in-flight check's settlement, if any, so stop() can wait for it. */
  stop(): Promise<unknown> | null {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const running = this.running;
    this.cancelProbe();
    return running;
  }

  private cancelProbe(): void {
    const probe = this.probe;
    this.probe = null;
    this.running = null;
    if (probe !== null) probe.cancel();
  }

  private schedule(ms: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.dueAt = performance.now() + ms;
    this.timer = setTimeout(this.run, ms);
  }

  private readonly run = (): void => {
    this.timer = null;
    if (this.stopped) return;
    if (this.server.admin === 'maint' || this.probe !== null) {
      this.schedule(this.health.intervalMs);
      return;
    }
    const started = performance.now();
    this.startedAt = started;
    this.checks++;
    this.checker.onCheckStart?.(this.server, this.dueAt);
    const probe = startProbe(this.server, this.health, this.backend.config.tls);
    this.probe = probe;
    this.running = probe.done.then((result) => {
      if (this.probe !== probe) return; // cancelled (MAINT, stop, restart): result dropped
      this.probe = null;
      this.running = null;
      if (this.stopped) return;
      this.apply(result);
      this.scheduleNext(started);
    });
  };

  /** Next check: the interval for the counter's position, ±10%, from this check's start. */
  private scheduleNext(started: number): void {
    const h = this.health;
    const base = intervalFor(this.server.check.health, h.rise, h.fall, h.intervalMs, h.fastIntervalMs, h.downIntervalMs);
    const interval = base * (1 - JITTER + 2 * JITTER * this.checker.random());
    const elapsed = performance.now() - started;
    // At least a tenth of the interval of rest after a slow check (a timeout near the interval).
    this.schedule(Math.max(Math.round(interval - elapsed), Math.round(base * JITTER)));
  }

  private apply(result: ProbeResult): void {
    const server = this.server;
    const check = server.check;
    const { rise, fall } = this.health;
    check.code = result.code;
    check.reason = result.reason;
    check.durationMs = result.durationMs;
    check.at = Date.now();
    if (!result.ok) check.failures++;
    check.health = nextHealth(check.health, result.ok, rise, fall);
    const upByChecks = isUpBy(check.health, rise);
    if (server.checkDown && upByChecks) this.transition('UP', result);
    else if (!server.checkDown && !upByChecks) this.transition('DOWN', result);
    // A passively ejected server returns once checks pass `rise` times (health/passive.ts).
    if (server.ejected) this.backend.observer?.checked?.(server, result.ok, rise);
  }

  private transition(to: 'UP' | 'DOWN', result: ProbeResult): void {
    const server = this.server;
    const from = to === 'UP' ? 'DOWN' : 'UP';
    server.checkDown = to === 'DOWN';
    if (to === 'DOWN') server.check.downTransitions++;
    server.noteChange(result.reason, 'health');
    this.log.warn(
      {
        backend: this.backend.name,
        server: server.name,
        address: server.address,
        from,
        to,
        reason: result.reason,
        code: result.code,
        durationMs: result.durationMs,
        state: server.state,
      },
      `server ${server.name} ${to}: ${result.reason}`,
    );
    if (to === 'DOWN') {
      // Pooled idle sockets to a DOWN server are useless; busy ones go only when asked.
      if (this.health.onMarkedDown === 'shutdown_sessions') server.shutdownSessions();
      else server.closeIdle();
    }
  }
}
