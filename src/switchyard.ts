import { watch, type FSWatcher } from 'node:fs';
import type { Config } from './config/types.js';
import { ConfigError, formatIssue } from './errors.js';
import { log as rootLog, setLogLevel, type Logger } from './log.js';
import type { ReloadResult, RuntimeComponent, StatsHost, WorkersInfo } from './host.js';
import { buildRuntime, retireRemoved, type Runtime } from './model/runtime.js';
import { modelEvents } from './model/events.js';
import { loadStrategyFactory } from './strategies/registry.js';
import { FrontendListener, bindKey } from './balancer/listener.js';
import { AccessLog } from './balancer/access-log.js';
import { trimIdle } from './balancer/upstream.js';

// The composition root: builds the runtime from a config, opens the frontends' listeners,
// wires health checks, discovery and stats, and owns reload and stop. Reload = build the next
// runtime beside the current one, then swap: listeners whose bind/mode stay keep their socket
// and get the new frontend in one assignment, so no connection is dropped.

export interface SwitchyardOptions {
  config: Config;
  /** File to re-read on reload (SIGHUP, watch, POST /api/reload); defaults to config.source. */
  configFile?: string | null;
  /** Watch the config file and apply changes (default: true when there is a file). */
  watch?: boolean;
  logger?: Logger;
  /** Reads and validates the config file on reload (main passes config/load's loadConfigFile). */
  loadConfig?: (file: string) => Promise<Config>;
  /** Open the frontends' listeners (false in a cluster primary: its workers serve). */
  serve?: boolean;
  /** With `workers: N`, what the stats report about the worker processes. */
  workers?: () => WorkersInfo | null;
  /** Told after a config was applied or a strategy changed (a cluster primary tells its workers). */
  hooks?: {
    applied?(config: Config): void;
    strategyChanged?(backend: string, strategy: string): void;
  };
  /** Components to run beside the proxy core (health checks, discovery, stats): built by main. */
  components?: (sy: Switchyard) => Promise<RuntimeComponent[]>;
}

export class Switchyard implements StatsHost {
  readonly startedAt = Date.now();
  private current: Runtime;
  private readonly listeners = new Map<string, FrontendListener>();
  private components: RuntimeComponent[] = [];
  private readonly logger: Logger;
  private readonly configFile: string | null;
  private readonly serve: boolean;
  private readonly hooks: NonNullable<SwitchyardOptions['hooks']>;
  private readonly workersInfo: (() => WorkersInfo | null) | null;
  private readonly loadConfig: ((file: string) => Promise<Config>) | null;
  private watcher: FSWatcher | null = null;
  private watchTimer: NodeJS.Timeout | null = null;
  private poolTimer: NodeJS.Timeout | null = null;
  private last: ReloadResult | null = null;
  private reloading: Promise<ReloadResult> | null = null;
  private stopped = false;
  private readonly onServerState;
  private readonly onStrategyError;

  private constructor(runtime: Runtime, options: SwitchyardOptions, logger: Logger) {
    this.current = runtime;
    this.logger = logger;
    this.configFile = options.configFile === undefined ? runtime.config.source : options.configFile;
    this.loadConfig = options.loadConfig ?? null;
    this.serve = options.serve !== false;
    this.hooks = options.hooks ?? {};
    this.workersInfo = options.workers ?? null;
    this.onServerState = (e: { server: { backendName: string; name: string }; from: string; to: string; reason: string }) => {
      this.logger.warn({ backend: e.server.backendName, server: e.server.name, from: e.from, to: e.to, reason: e.reason }, `server ${e.server.backendName}/${e.server.name} is ${e.to}`);
    };
    let lastStrategyLog = 0;
    this.onStrategyError = (e: { backend: string; error: unknown }) => {
      const now = Date.now();
      if (now - lastStrategyLog < 1000) return; // one line a second at most: it is per request
      lastStrategyLog = now;
      this.logger.error({ backend: e.backend, err: e.error }, 'strategy failed; request sent by round-robin fallback');
    };
    modelEvents.on('server-state', this.onServerState);
    modelEvents.on('strategy-error', this.onStrategyError);
  }

  static async start(options: SwitchyardOptions): Promise<Switchyard> {
    const logger = options.logger ?? rootLog;
    setLogLevel(options.config.logging.level);
    const runtime = await buildRuntime(options.config, null);
    const sy = new Switchyard(runtime, options, logger);
    try {
      for (const l of await sy.openListeners(runtime)) sy.listeners.set(l.frontend.name, l);
      if (options.components) sy.components = await options.components(sy);
      for (const c of sy.components) c.sync(runtime);
    } catch (error) {
      await sy.stop(0);
      throw error;
    }
    sy.poolTimer = setInterval(() => sy.trimPools(), 5000);
    sy.poolTimer.unref();
    if (sy.configFile !== null && options.watch !== false) sy.watchFile(sy.configFile);
    return sy;
  }

  runtime(): Runtime {
    return this.current;
  }

  lastReload(): ReloadResult | null {
    return this.last;
  }

  workers(): WorkersInfo | null {
    return this.workersInfo?.() ?? null;
  }

  frontendAddress(name: string): { host: string; port: number } {
    const l = this.listeners.get(name);
    if (!l) throw new Error(`no frontend ${name}`);
    return l.address();
  }

  /** Open listeners for frontends that need one; close those no longer used (after the swap). */
  private async openListeners(runtime: Runtime): Promise<FrontendListener[]> {
    if (!this.serve) return [];
    const accessLog = runtime.config.logging.access.enabled
      ? new AccessLog(this.logger.child({ component: 'access' }), runtime.config.logging.access.sample)
      : null;
    const opened: FrontendListener[] = [];
    try {
      for (const frontend of runtime.frontends.values()) {
        const existing = this.listeners.get(frontend.name);
        if (existing && existing.bindKey === bindKey(frontend)) continue;
        const l = new FrontendListener(frontend, accessLog, this.logger);
        await l.listen();
        opened.push(l);
      }
    } catch (error) {
      for (const l of opened) await l.stopAccepting();
      throw error;
    }
    return opened;
  }

  /** Re-read the config file and apply it. Concurrent calls share one attempt. */
  reload(): Promise<ReloadResult> {
    if (this.reloading) return this.reloading;
    this.reloading = (async () => {
      try {
        if (this.configFile === null || this.loadConfig === null) return this.record(false, ['no config file to reload (running the embedded demo)']);
        let config: Config;
        try {
          config = await this.loadConfig(this.configFile);
        } catch (error) {
          const errors = error instanceof ConfigError ? error.issues.map(formatIssue) : [(error as Error).message];
          return this.record(false, errors);
        }
        return await this.apply(config);
      } finally {
        this.reloading = null;
      }
    })();
    return this.reloading;
  }

  /** Apply a validated config: build beside, open new listeners, swap, then retire the old. */
  async apply(config: Config): Promise<ReloadResult> {
    if (this.stopped) return this.record(false, ['stopping']);
    let next: Runtime;
    let opened: FrontendListener[];
    try {
      // Fails before touching anything when a strategy module cannot load.
      next = await buildRuntime(config, this.current);
    } catch (error) {
      return this.record(false, [(error as Error).message]);
    }
    try {
      opened = await this.openListeners(next);
    } catch (error) {
      // A bind failed: put the kept backends and frontends back as they were.
      await buildRuntime(this.current.config, this.current);
      return this.record(false, [`cannot listen: ${(error as Error).message}`]);
    }
    // The swap: from here new connections and new requests see the new runtime.
    const previous = this.current;
    this.current = next;
    retireRemoved(previous, next);
    setLogLevel(config.logging.level);
    const accessLog = config.logging.access.enabled ? new AccessLog(this.logger.child({ component: 'access' }), config.logging.access.sample) : null;
    const replaced: FrontendListener[] = [];
    for (const l of opened) {
      const old = this.listeners.get(l.frontend.name);
      if (old) replaced.push(old);
      this.listeners.set(l.frontend.name, l);
    }
    for (const [name, l] of this.listeners) {
      const f = next.frontends.get(name);
      if (!f) {
        replaced.push(l);
        this.listeners.delete(name);
      } else {
        l.frontend = f;
        l.accessLog = accessLog;
      }
    }
    for (const c of this.components) c.sync(next);
    this.hooks.applied?.(config);
    // Old listeners stop accepting; their connections finish on what they hold.
    for (const l of replaced) void l.drain(config.shutdownTimeoutMs);
    this.logger.info({ generation: next.generation, previous: previous.generation }, 'config applied');
    return this.record(true, []);
  }

  async setStrategy(backendName: string, strategy: string): Promise<void> {
    const backend = this.current.backends.get(backendName);
    if (!backend) throw new Error(`unknown backend "${backendName}"`);
    const factory = await loadStrategyFactory(strategy, this.current.config.source);
    backend.setStrategy(strategy, factory);
    this.hooks.strategyChanged?.(backendName, strategy);
    this.logger.info({ backend: backendName, strategy }, 'strategy changed');
  }

  private record(ok: boolean, errors: string[]): ReloadResult {
    const result: ReloadResult = { ok, at: Date.now(), errors, generation: this.current.generation };
    this.last = result;
    if (ok) this.logger.info({ generation: result.generation }, 'reload ok');
    else this.logger.error({ errors }, 'reload rejected; the running config stays');
    return result;
  }

  private watchFile(file: string): void {
    try {
      // Editors replace files (rename) as often as they write them: debounce and re-read.
      this.watcher = watch(file, () => {
        if (this.watchTimer) clearTimeout(this.watchTimer);
        this.watchTimer = setTimeout(() => void this.reload(), 200);
        this.watchTimer.unref();
      });
      this.watcher.unref();
      this.watcher.on('error', () => {});
    } catch (error) {
      this.logger.warn({ err: error, file }, 'cannot watch the config file; SIGHUP still reloads');
    }
  }

  private trimPools(): void {
    const now = Date.now();
    for (const b of this.current.backends.values()) for (const s of b.servers) if (s.idle.length > 0) trimIdle(s, now);
  }

  /** Graceful stop: stop accepting, let in-flight requests finish (bounded), stop components. */
  async stop(timeoutMs = this.current.config.shutdownTimeoutMs): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.watcher?.close();
    if (this.watchTimer) clearTimeout(this.watchTimer);
    if (this.poolTimer) clearInterval(this.poolTimer);
    await Promise.all([...this.listeners.values()].map((l) => l.drain(timeoutMs)));
    this.listeners.clear();
    for (const c of this.components.reverse()) {
      try {
        await c.stop();
      } catch (error) {
        this.logger.warn({ err: error }, 'component stop failed');
      }
    }
    for (const b of this.current.backends.values()) for (const s of b.servers) s.closeIdle();
    modelEvents.off('server-state', this.onServerState);
    modelEvents.off('strategy-error', this.onStrategyError);
  }
}

export function startSwitchyard(options: SwitchyardOptions): Promise<Switchyard> {
  return Switchyard.start(options);
}
