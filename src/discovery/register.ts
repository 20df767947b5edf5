import type { ConsulConfig, ConsulRegisterConfig, HostPort } from '../config/types.js';
import type { RuntimeComponent } from '../host.js';
import type { Logger } from '../log.js';
import { log as rootLog } from '../log.js';
import type { Runtime } from '../model/runtime.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { createConsulClient, describeError, goDuration, type ConsulClient } from './client.js';

// Self-registration (`consul.register`): the balancer registers itself with the local agent
// (PUT /v1/agent/service/register) with an HTTP check on the stats listener's /health, and
// deregisters on graceful stop. Consul being down never stops the balancer: errors are logged.

/** The agent reaps the registration if its check stays critical this long (a killed balancer). */
const DEREGISTER_CRITICAL_AFTER = '1m';
const REQUEST_TIMEOUT_MS = 5_000;

export interface RegisterOptions {
  logger?: Logger;
  /** Use this client instead of one built from the config. */
  client?: ConsulClient;
}

/** The service definition sent to the agent (Consul's ServiceDefinition, as JSON keys). */
export interface SelfRegistration {
  readonly ID: string;
  readonly Name: string;
  readonly Address?: string;
  readonly Port: number;
  readonly Tags: readonly string[];
  readonly Check: { readonly HTTP: string; readonly Interval: string; readonly Timeout: string; readonly DeregisterCriticalServiceAfter: string };
}

const WILDCARD = new Set(['0.0.0.0', '::', '']);

/**
 * What registerSelf sends. `statsBind` is where the stats listener is bound (its real port when
 * it was 0). The check targets the advertised address, else the bind host, else 127.0.0.1 (the
 * agent is local).
 */
export function selfRegistration(register: ConsulRegisterConfig, statsBind: HostPort): SelfRegistration {
  const checkHost = register.address ?? (WILDCARD.has(statsBind.host) ? '127.0.0.1' : statsBind.host);
  const url = `http://${checkHost.includes(':') ? `[${checkHost}]` : checkHost}:${statsBind.port}/health`;
  return {
    ID: register.id || register.name,
    Name: register.name,
    ...(register.address !== null ? { Address: register.address } : {}),
    Port: register.port ?? statsBind.port,
    Tags: [...register.tags],
    Check: {
      HTTP: url,
      Interval: goDuration(register.checkIntervalMs),
      Timeout: goDuration(Math.min(register.checkIntervalMs, 5_000)),
      DeregisterCriticalServiceAfter: DEREGISTER_CRITICAL_AFTER,
    },
  };
}

/** Register with the agent; true on success. Never throws: the balancer runs without Consul. */
export async function registerSelf(config: ConsulConfig, statsBind: HostPort, options: RegisterOptions = {}): Promise<boolean> {
  const logger = (options.logger ?? rootLog).child({ component: 'consul' });
  if (config.register === null) return false;
  const def = selfRegistration(config.register, statsBind);
  const client = options.client ?? createConsulClient(config);
  try {
    await client.agent.service.register({
      id: def.ID,
      name: def.Name,
      ...(def.Address !== undefined ? { address: def.Address } : {}),
      port: def.Port,
      tags: [...def.Tags],
      check: {
        name: `${def.Name} stats /health`,
        http: def.Check.HTTP,
        interval: def.Check.Interval,
        timeout: def.Check.Timeout,
        deregistercriticalserviceafter: def.Check.DeregisterCriticalServiceAfter,
      },
      ...(config.token ? { token: config.token } : {}),
      timeout: REQUEST_TIMEOUT_MS,
      // consul@2's typings omit `timeout` and check `timeout`, which lib/utils.js does read.
    } as never);
    logger.info({ id: def.ID, name: def.Name, port: def.Port, check: def.Check.HTTP }, 'registered with consul');
    return true;
  } catch (error) {
    logger.error({ err: describeError(error), id: def.ID, address: config.address }, 'consul registration failed; serving without it');
    return false;
  } finally {
    if (!options.client) client.destroy();
  }
}

/** Deregister (graceful stop); true on success. Never throws. */
export async function deregisterSelf(config: ConsulConfig, options: RegisterOptions = {}): Promise<boolean> {
  const logger = (options.logger ?? rootLog).child({ component: 'consul' });
  if (config.register === null) return false;
  const id = config.register.id || config.register.name;
  const client = options.client ?? createConsulClient(config);
  try {
    await client.agent.service.deregister({ id, ...(config.token ? { token: config.token } : {}), timeout: REQUEST_TIMEOUT_MS } as never);
    logger.info({ id }, 'deregistered from consul');
    return true;
  } catch (error) {
    logger.error({ err: describeError(error), id }, 'consul deregistration failed');
    return false;
  } finally {
    if (!options.client) client.destroy();
  }
}

export interface RegistrationOptions extends Omit<RegisterOptions, 'logger'> {
  /** Retry delays after a failed registration (default 1 s doubling to 30 s, jittered). */
  readonly backoff?: BackoffOptions;
}

/**
 * Registration as a runtime component: registers on the first sync (and again when a reload
 * changes `consul.register` or the agent), deregisters on stop. `statsBind` is the stats
 * listener's bound address. A failed registration is retried with capped backoff until it
 * succeeds: the agent may start after the balancer (compose `depends_on` does not wait for it)
 * or be restarting, and a balancer that silently stays unregistered gets no traffic.
 */
export class ConsulRegistration implements RuntimeComponent {
  /** What should be registered (the last sync's settings). */
  private wanted: ConsulConfig | null = null;
  /** What the agent holds from us: the settings of the last successful registration. */
  private held: ConsulConfig | null = null;
  /** Bumped when `wanted` changes: a retry of older settings then does nothing. */
  private generation = 0;
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private pending: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly backoff: BackoffOptions;

  constructor(
    private readonly statsBind: HostPort,
    private readonly logger: Logger,
    private readonly options: RegistrationOptions = {},
  ) {
    this.backoff = options.backoff ?? { baseMs: 1_000, capMs: 30_000 };
  }

  sync(runtime: Runtime): void {
    if (this.stopped) return;
    const next = runtime.config.consul?.register ? runtime.config.consul : null;
    if (settingsKey(next) === settingsKey(this.wanted)) return;
    this.wanted = next;
    const generation = ++this.generation;
    this.attempts = 0;
    this.cancelRetry();
    // Serialised: a reload never races its own deregistration.
    this.enqueue(async () => {
      const held = this.held;
      if (held !== null && (next === null || registrationId(held) !== registrationId(next) || held.address !== next.address)) {
        if (await deregisterSelf(held, this.clientOptions())) this.held = null;
      }
      await this.attempt(generation);
    });
  }

  /** Deregistered as soon as a graceful stop begins (RuntimeComponent.leave). */
  leave(): Promise<void> {
    return this.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelRetry();
    await this.pending;
    if (this.held !== null) await deregisterSelf(this.held, this.clientOptions());
    this.held = null;
  }

  private async attempt(generation: number): Promise<void> {
    const wanted = this.wanted;
    if (this.stopped || generation !== this.generation || wanted === null) return;
    if (await registerSelf(wanted, this.statsBind, this.clientOptions())) {
      this.held = wanted;
      return;
    }
    if (this.stopped || generation !== this.generation) return;
    const delay = backoffDelay(++this.attempts, this.backoff);
    this.logger.warn({ attempt: this.attempts, retryInMs: delay }, 'consul registration will be retried');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.enqueue(() => this.attempt(generation));
    }, delay);
  }

  private enqueue(step: () => Promise<void>): void {
    this.pending = this.pending.then(step);
  }

  private cancelRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private clientOptions(): RegisterOptions {
    return { ...(this.options.client ? { client: this.options.client } : {}), logger: this.logger };
  }
}

function settingsKey(c: ConsulConfig | null): string {
  return JSON.stringify(c && [c.address, c.token, c.register]);
}

function registrationId(c: ConsulConfig): string {
  return c.register ? c.register.id || c.register.name : '';
}
