import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, sep } from 'node:path';
import type { Config } from './config/types.js';
import { ConfigError, formatIssue } from './errors.js';
import { log as rootLog, setLogLevel, type Logger } from './log.js';
import type { ReloadResult, RuntimeComponent, StatsHost, WorkersInfo } from './host.js';
import { buildRuntime, planRuntime, retireRemoved, type Runtime, type RuntimePlan } from './model/runtime.js';
import { listenReusePort } from './cluster/listen-mode.js';
import { uncaughtCount } from './uncaught.js';
import { modelEvents, type ServerStateEvent } from './model/events.js';
import { isStrategyPath } from './strategies/names.js';
import { loadStrategyFactory } from './strategies/registry.js';
import { FileWatch } from './file-watch.js';
import { fileChanged, resolveModulePath } from './usercode/loader.js';
import { userCodeEvents, type UserCodeErrorEvent } from './usercode/ledger.js';
import { FrontendListener, bindKey } from './balancer/listener.js';
import { AccessLog } from './balancer/access-log.js';
import { trimIdle } from './balancer/upstream.js';
import { describeSessions } from './runtime-api/sessions.js';
import type { SessionView } from './runtime-api/show.js';

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
  private watcher: FileWatch | null = null;
  private poolTimer: NodeJS.Timeout | null = null;
  private last: ReloadResult | null = null;
  /** The config file's text as the last reload read it: the watcher reloads only on a change. */
  private seenText: string | null = null;
  private reloading: Promise<ReloadResult> | null = null;
  private reloadAgain: Promise<ReloadResult> | null = null;
  /** Applies run one after another: two builds must never interleave on the same backends. */
  private applying: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly onServerState;
  private readonly onStrategyError;
  private readonly onUserCodeError;

  private constructor(runtime: Runtime, options: SwitchyardOptions, logger: Logger) {
    this.current = runtime;
    this.logger = logger;
    this.configFile = options.configFile === undefined ? runtime.config.source : options.configFile;
    this.loadConfig = options.loadConfig ?? null;
    this.serve = options.serve !== false;
    this.hooks = options.hooks ?? {};
    this.workersInfo = options.workers ?? null;
    this.onServerState = (e: ServerStateEvent) => {
      if (e.loggedBy !== null) return; // its source wrote a detailed line already
      this.logger.warn(
        { backend: e.server.backendName, server: e.server.name, from: e.from, to: e.to, reason: e.reason },
        `server ${e.server.backendName}/${e.server.name} is ${e.to}`,
      );
    };
    let lastStrategyLog = 0;
    this.onStrategyError = (e: { backend: string; error: unknown }) => {
      const now = Date.now();
      if (now - lastStrategyLog < 1000) return; // one line a second at most: it is per request
      lastStrategyLog = now;
      this.logger.error({ backend: e.backend, err: e.error }, 'strategy failed; request sent by round-robin fallback');
    };
    const lastUserCodeLog = new Map<string, number>();
    this.onUserCodeError = (e: UserCodeErrorEvent) => {
      const now = Date.now();
      if (now - (lastUserCodeLog.get(e.file) ?? 0) < 1000) return; // per module, one line a second at most
      lastUserCodeLog.set(e.file, now);
      this.logger.error(
        { module: e.file, kind: e.kind, err: e.error },
        `user ${e.kind} module failed; ${e.kind === 'router' ? 'request sent to the default backend' : e.kind === 'hooks' ? 'hook skipped' : 'request sent by round-robin fallback'}`,
      );
    };
    modelEvents.on('server-state', this.onServerState);
    modelEvents.on('strategy-error', this.onStrategyError);
    userCodeEvents.on('error', this.onUserCodeError);
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
    sy.poolTimer = setInterval(() => sy.trimPools(), 1000);
    sy.poolTimer.unref();
    if (sy.configFile !== null && options.watch !== false) {
      sy.seenText = await readFile(sy.configFile, 'utf8').catch(() => null);
      sy.watcher = new FileWatch(() => void sy.reloadIfChanged(), logger);
      sy.watchFiles(runtime);
    }
    return sy;
  }

  runtime(): Runtime {
    return this.current;
  }

  lastReload(): ReloadResult | null {
    return this.last;
  }

  uncaughtExceptions(): number {
    return uncaughtCount() + (this.workers()?.uncaught ?? 0);
  }

  workers(): WorkersInfo | null {
    return this.workersInfo?.() ?? null;
  }

  /** Client sessions open in this process (the runtime API's `show sess`). */
  sessions(): SessionView[] {
    const out: SessionView[] = [];
    const now = Date.now();
    for (const l of this.listeners.values()) describeSessions(l.frontend.name, l.mode, l.openSessions(), now, out);
    return out;
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
        const l = new FrontendListener(frontend, accessLog, this.logger, listenReusePort(frontend.config.bind.port));
        await l.listen();
        opened.push(l);
      }
    } catch (error) {
      for (const l of opened) await l.stopAccepting();
      throw error;
    }
    return opened;
  }

  /**
   * Re-read the config file and apply it. One at a time: a call during a reload gets one more
   * reload after it (the file may have changed since the running one read it), shared by every
   * call made meanwhile.
   */
  reload(): Promise<ReloadResult> {
    // Answered at once, never through `reloading`: an attempt that awaits nothing would run its
    // `finally` before `reloading` is even assigned, leaving it set for good.
    const file = this.configFile;
    const load = this.loadConfig;
    if (file === null || load === null) return Promise.resolve(this.record(false, ['no config file to reload (running the embedded demo)']));
    if (this.reloading) {
      this.reloadAgain ??= this.reloading.then(() => {
        this.reloadAgain = null;
        return this.reload();
      });
      return this.reloadAgain;
    }
    this.reloading = (async () => {
      try {
        let config: Config;
        try {
          this.seenText = await readFile(file, 'utf8');
          config = await load(file);
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
  apply(config: Config): Promise<ReloadResult> {
    const run = this.applying.then(() => this.applyNow(config));
    this.applying = run.catch(() => undefined);
    return run;
  }

  /**
   * Build and swap. The build step makes the whole next generation beside the running one
   * (modules loaded and dry-run, backends and frontends, changes to the backends that stay
   * prepared: runtime.ts planRuntime) and opens the listeners it needs; only when every part of
   * it succeeded does the swap step run, synchronously: commit the prepared changes, assign the
   * runtime, hand listeners their new frontend. A failed build or bind leaves nothing behind
   * (the listeners it opened are closed) and the running generation exactly as it was.
   */
  private async applyNow(config: Config): Promise<ReloadResult> {
    if (this.stopped) return this.record(false, ['stopping']);
    let plan: RuntimePlan;
    let opened: FrontendListener[];
    try {
      plan = await planRuntime(config, this.current);
    } catch (error) {
      return this.record(false, [(error as Error).message]);
    }
    try {
      opened = await this.openListeners(plan.runtime);
    } catch (error) {
      return this.record(false, [`cannot listen: ${(error as Error).message}`]);
    }
    // The swap: from here new connections and new requests see the new generation.
    const next = plan.runtime;
    plan.commit();
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
    this.watchFiles(next);
    // Old listeners stop accepting; their connections finish on what they hold.
    for (const l of replaced) void l.drain(config.shutdownTimeoutMs);
    this.logger.info({ generation: next.generation, previous: previous.generation }, 'config applied');
    return this.record(true, []);
  }

  /** PUT /api/backends/NAME/strategy; in turn with reloads, so a rollback cannot undo it. */
  setStrategy(backendName: string, strategy: string): Promise<void> {
    const run = this.applying.then(() => this.setStrategyNow(backendName, strategy));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async setStrategyNow(backendName: string, strategy: string): Promise<void> {
    const backend = this.current.backends.get(backendName);
    if (!backend) throw new Error(`unknown backend "${backendName}"`);
    if (isStrategyPath(strategy)) this.checkAdminModulePath(strategy);
    const factory = await loadStrategyFactory(strategy, this.current.config.source);
    backend.setStrategy(strategy, factory);
    this.hooks.strategyChanged?.(backendName, strategy);
    this.logger.info({ backend: backendName, strategy }, 'strategy changed');
  }

  /**
   * An admin request may name a module only inside the config file's folder (or the working
   * directory when there is no file), symlinks resolved: the admin API must not become a way
   * to run any file on the machine.
   */
  private checkAdminModulePath(path: string): void {
    const source = this.current.config.source;
    const root = realpathOr(source === null ? process.cwd() : dirname(source));
    const file = realpathOr(resolveModulePath(path, source));
    if (!file.startsWith(root + sep)) throw new Error(`an admin request can load modules only from the config's folder ${root}: ${path} is outside it`);
  }

  private record(ok: boolean, errors: string[]): ReloadResult {
    const result: ReloadResult = { ok, at: Date.now(), errors, generation: this.current.generation };
    this.last = result;
    if (ok) this.logger.info({ generation: result.generation }, 'reload ok');
    else this.logger.error({ errors }, 'reload rejected; the running config stays');
    return result;
  }

  /** Watch the config file and the user modules the running generation uses. */
  private watchFiles(runtime: Runtime): void {
    if (this.watcher === null || this.configFile === null) return;
    this.watcher.set([this.configFile, ...runtime.userFiles]);
  }

  /**
   * A watched file changed: reload when the config text differs from what the last reload
   * read, or a module file differs from what its loaded version was built from (so a save
   * that fires several events, or a POST /api/reload that already applied it, reloads once).
   */
  private async reloadIfChanged(): Promise<void> {
    const file = this.configFile;
    if (file === null) return;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      return; // between an unlink and a rename: the next event brings the new file
    }
    if (text !== this.seenText || this.current.userFiles.some(fileChanged)) await this.reload();
  }

  private trimPools(): void {
    const now = Date.now();
    for (const b of this.current.backends.values()) {
      const maxIdleMs = b.config.timeouts.serverKeepAliveMs;
      for (const s of b.servers) if (s.idle.length > 0) trimIdle(s, now, maxIdleMs);
    }
  }

  /** Graceful stop: stop accepting, let in-flight requests finish (bounded), stop components. */
  async stop(timeoutMs = this.current.config.shutdownTimeoutMs): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.watcher?.close();
    if (this.poolTimer) clearInterval(this.poolTimer);
    // Leave Consul and drain at once: new clients go elsewhere while in-flight requests finish.
    const leaving: Promise<void>[] = [];
    for (const c of this.components) {
      if (c.leave !== undefined) leaving.push(c.leave().catch((error: unknown) => this.logger.warn({ err: error }, 'leaving failed')));
    }
    await Promise.all([...this.listeners.values()].map((l) => l.drain(timeoutMs)));
    await Promise.all(leaving);
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
    userCodeEvents.off('error', this.onUserCodeError);
  }
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

export function startSwitchyard(options: SwitchyardOptions): Promise<Switchyard> {
  return Switchyard.start(options);
}
