import type { Runtime } from '../model/runtime.js';
import { snapshotCounters } from '../model/counters.js';
import { snapshotTls } from '../model/tls-counters.js';
import { collectRouteHits } from '../routing/route-stats.js';
import { log } from '../log.js';
import { startSwitchyard, type Switchyard } from '../switchyard.js';
import { buildWorkerComponents } from '../components.js';
import { isSwitchyardMessage, type PrimaryMessage, type ServerFlags, type WorkerCounters, type WorkerMessage } from './messages.js';
import { installUncaughtPolicy, uncaughtCount } from '../uncaught.js';

// A cluster worker: serves the frontends on the config the primary sends (each listener
// shared with the other workers, see listen-mode.ts), applies the server flags, discovered
// servers and strategy changes the primary broadcasts, and reports its counters every second.
// It never runs active checks, watches Consul or reloads on its own: those happen once, in the
// primary. Passive detection runs here, where the traffic is.

const COUNTERS_EVERY_MS = 1000;

function send(message: WorkerMessage): void {
  process.send?.(message);
}

export function collectCounters(runtime: Runtime): WorkerCounters {
  const frontends: WorkerCounters['frontends'] = {};
  const backends: WorkerCounters['backends'] = {};
  const servers: WorkerCounters['servers'] = {};
  for (const [name, f] of runtime.frontends) frontends[name] = snapshotCounters(f.counters);
  for (const [name, b] of runtime.backends) {
    backends[name] = snapshotCounters(b.counters);
    const byId: Record<string, number[]> = {};
    for (const s of b.servers) byId[s.id] = snapshotCounters(s.counters);
    servers[name] = byId;
  }
  const tls: Record<string, number[]> = {};
  for (const [name, f] of runtime.frontends) if (f.config.tls !== null || f.config.sniRoutes !== null) tls[name] = snapshotTls(f.tls);
  return { frontends, backends, servers, tls, uncaught: uncaughtCount(), routes: collectRouteHits(runtime) };
}

/**
 * Mirror the primary's view of each server. A server the primary's checks just marked DOWN
 * loses its pooled connections here too (all of them with `on_marked_down: shutdown_sessions`),
 * as it would in a single process where the checker does this itself.
 */
export function applyFlags(runtime: Runtime, flags: readonly ServerFlags[]): void {
  for (const f of flags) {
    const backend = runtime.backends.get(f.backend);
    const server = backend?.serverById(f.id);
    if (!backend || !server) continue;
    const markedDown = f.checkDown && !server.checkDown;
    const backUp = !f.checkDown && server.checkDown;
    server.admin = f.admin;
    server.checkDown = f.checkDown;
    server.consulCritical = f.consulCritical;
    server.noteChange('primary', 'primary');
    // The primary's checks brought it back UP (`rise` passes there): an ejection here ends too.
    if (backUp && server.ejected) backend.observer?.checked?.(server, true, 1);
    if (markedDown) {
      if (backend.config.health.onMarkedDown === 'shutdown_sessions') server.shutdownSessions();
      else server.closeIdle();
    }
  }
}

export function runWorker(): void {
  let sy: Switchyard | null = null;
  let queue: Promise<void> = Promise.resolve();
  const report = () => {
    if (sy) send({ type: 'sy:counters', counters: collectCounters(sy.runtime()) });
  };
  const handle = async (m: PrimaryMessage): Promise<void> => {
    switch (m.type) {
      case 'sy:config': {
        if (sy === null) {
          try {
            sy = await startSwitchyard({ config: m.config, watch: false, components: buildWorkerComponents });
          } catch (error) {
            // A frontend cannot bind (or a strategy cannot load): say why, and leave.
            const failed: WorkerMessage = { type: 'sy:failed', error: (error as Error).message };
            // Exit once the message is out (exiting at once could lose it).
            if (process.send) process.send(failed, () => process.exit(1));
            else process.exit(1);
            return;
          }
          send({ type: 'sy:ready', generation: sy.runtime().generation });
          setInterval(report, COUNTERS_EVERY_MS).unref();
        } else {
          const r = await sy.apply(m.config);
          send({ type: 'sy:applied', ok: r.ok, errors: r.errors });
        }
        return;
      }
      case 'sy:discovered':
        sy?.runtime().backends.get(m.backend)?.setDiscovered(m.specs);
        return;
      case 'sy:flags':
        if (sy) applyFlags(sy.runtime(), m.flags);
        return;
      case 'sy:strategy':
        await sy?.setStrategy(m.backend, m.strategy);
        return;
      case 'sy:stop':
        if (sy) {
          report();
          await sy.stop(m.timeoutMs);
        }
        process.exit(0);
    }
  };
  process.on('message', (m: unknown) => {
    if (!isSwitchyardMessage(m)) return;
    // One at a time, in order: a config must be applied before the flags that follow it.
    queue = queue
      .then(() => handle(m as PrimaryMessage))
      .catch((error: unknown) => log.error({ err: error }, 'worker could not apply a message from the primary'));
  });
  send({ type: 'sy:hello' });
  // Signals go to the primary, which stops the workers in order (Ctrl-C reaches the whole
  // process group: a worker that stopped on its own would cut its requests short).
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  process.on('SIGHUP', () => {});
  // The primary is gone: finish what is in flight and leave.
  process.on('disconnect', () => {
    void (sy?.stop(5000) ?? Promise.resolve()).then(() => process.exit(0));
  });
  installUncaughtPolicy(log, 'uncaught exception in worker (kept running)');
}
