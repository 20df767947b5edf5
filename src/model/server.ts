import type { ServerSocket } from './proxy-socket.js';
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { StrategyServer } from '../strategies/strategy.js';
import type { ProxyVersion } from '../config/types.js';
import { Counters } from './counters.js';
import { SlotList } from './slot-list.js';

/** Where a socket keeps its index in its server's `sessions`. */
const kSessionSlot = Symbol('switchyard.serverSessionSlot');

export type ServerState = 'UP' | 'DOWN' | 'MAINT' | 'DRAIN';
export type AdminState = 'ready' | 'drain' | 'maint';
export type ServerSource = 'static' | 'consul' | 'runtime';

/** A server as a discovery source describes it; the backend keeps identity by `id`. */
export interface ServerSpec {
  readonly id: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly backup: boolean;
  readonly maxconn: number;
  /** PROXY protocol to this server; null or absent: the backend's `send_proxy`. */
  readonly sendProxy?: ProxyVersion | null;
}

/**
 * The connections open to a backend's servers and their limit (`circuit_breaker.max_connections`),
 * kept by overload/backend-overload.ts and counted by the upstream pool through each server.
 */
export interface ConnectionSlots {
  connections: number;
  readonly maxConnections: number;
  /** At the limit: close the oldest idle pooled connection of the backend to make room. */
  makeRoomForConnection(): void;
}

/** What a server needs of the backend that owns it (model/backend.ts). */
export interface ServerOwner {
  readonly name: string;
  readonly overload: ConnectionSlots;
  /** The server's visible state changed: refresh the eligible set, then tell the model's listeners. */
  serverStateChanged(server: Server, from: ServerState, to: ServerState, reason: string, loggedBy: string | null): void;
}

/** What an active health check last saw; written by src/health, read by stats. */
export class CheckStatus {
  /** HAProxy's check->health: 0..rise+fall-1; the server is up by checks while >= rise. */
  health = 0;
  /** 'L4OK', 'L4TOUT', 'L4CON', 'L7OK', 'L7STS', 'L7TOUT', 'L7RSP', '' (not checked yet) */
  code = '';
  /** Human reason of the last result: `connection refused`, `timeout after 2s`, `status 503`. */
  reason = '';
  durationMs = -1;
  /** When the last check finished, ms since epoch; 0 = never. */
  at = 0;
  failures = 0;
  /** UP -> DOWN transitions caused by checks. */
  downTransitions = 0;
}

/**
 * A server of one backend: desired settings (weight, admin state) apart from what is observed
 * (check, passive ejection, Consul health). It is eligible when no DOWN flag is set and admin
 * state is `ready`. Its identity (`id`) survives reloads and discovery updates so that counters,
 * health and pooled connections are kept.
 */
export class Server implements StrategyServer {
  readonly id: string;
  readonly backendName: string;
  /** Opaque, stable id for the sticky cookie: derived from backend + server name, not the address. */
  readonly stickyId: string;
  name: string;
  // Where it is: set together by moveTo().
  host!: string;
  port!: number;
  address!: string;
  /** 4 or 6 when `host` is an IP address (a server connection needs no lookup), 0 for a name. */
  ipFamily!: number;
  weight: number;
  /** The weight strategies balance with now: below `weight` while slow start ramps it up (src/overload/slow-start.ts). */
  effectiveWeight: number;
  /** When its slow-start ramp began (came UP, left MAINT, was added); 0: not ramping. */
  rampSince = 0;
  backup: boolean;
  maxconn: number;
  source: ServerSource;

  admin: AdminState = 'ready';
  /** Active checks say DOWN. */
  checkDown = false;
  /** Passive detection ejected it until `ejectedUntil`. */
  ejected = false;
  ejectedUntil = 0;
  ejections = 0;
  /** Consecutive failures seen on real traffic (passive detection). */
  consecutiveFailures = 0;
  /** Consul reports a critical check for it. */
  consulCritical = false;
  /** Connections refused/reset on a server with no health check make it DOWN until one succeeds. */
  connectFailed = false;
  /** Removed from its backend (reload or discovery): finishing what it holds, no new traffic. */
  retired = false;
  /** In its backend's eligible set now (kept by Backend.refresh): a queue slot freed here may go to anyone. */
  eligibleNow = false;

  /** In-flight connections (TCP) or requests (HTTP). */
  active = 0;
  readonly counters = new Counters();
  readonly check = new CheckStatus();
  /** Idle keep-alive connections to this server (HTTP mode), most recently used last. */
  readonly idle: ServerSocket[] = [];
  /** Upstream sockets carrying traffic now (kept by the proxy core), for `shutdown_sessions`. */
  readonly sessions = new SlotList<ServerSocket>(kSessionSlot);
  /** Last state seen, for transition events. */
  private lastState: ServerState;
  stateSince = Date.now();
  /** Why the last state change happened. */
  stateReason = '';
  /** PROXY protocol version sent on its connections (0: none); set by the backend. */
  sendProxy: ProxyVersion = 0;
  /** Active checks stopped by the runtime API (`disable health`): unchecked, so UP by checks. */
  checkDisabled = false;
  /** The weight its config or discovery gave it (HAProxy `iweight`; `weight N%` is relative to it). */
  initialWeight = 0;

  /** The owning backend's open connections and their limit (counted there). */
  readonly overload: ConnectionSlots;

  constructor(
    /** The backend that owns it: refreshed when this server's state changes. */
    private readonly owner: ServerOwner,
    init: { id: string; name: string; host: string; port: number; weight: number; backup: boolean; maxconn: number; source: ServerSource },
  ) {
    this.id = init.id;
    this.name = init.name;
    this.moveTo(init.host, init.port);
    this.weight = init.weight;
    this.effectiveWeight = init.weight;
    this.initialWeight = init.weight;
    this.backup = init.backup;
    this.maxconn = init.maxconn;
    this.source = init.source;
    this.backendName = owner.name;
    // From the identity (static:NAME or the Consul service ID), never the address: every
    // instance with the same config and Consul derives the same cookie value.
    this.stickyId = createHash('sha256').update(`${owner.name}\0${init.id}`).digest('base64url').slice(0, 16);
    this.lastState = this.state;
    this.overload = owner.overload;
  }

  get state(): ServerState {
    if (this.admin === 'maint') return 'MAINT';
    if (this.checkDown || this.ejected || this.consulCritical || this.connectFailed) return 'DOWN';
    if (this.admin === 'drain') return 'DRAIN';
    return 'UP';
  }

  /** UP: may take new traffic. */
  get up(): boolean {
    return this.state === 'UP' && !this.retired;
  }

  /** May serve a sticky session already bound to it (UP or DRAIN). */
  get stickable(): boolean {
    const s = this.state;
    return (s === 'UP' || s === 'DRAIN') && !this.retired;
  }

  /** Below its maxconn (or unlimited). */
  get hasRoom(): boolean {
    return this.maxconn === 0 || this.active < this.maxconn;
  }

  /**
   * Call after changing any flag: emits a transition event (log, stats history, backend
   * refresh) when the visible state changed. Returns true when it did. `loggedBy`: the caller
   * writes its own, more detailed log line (health checks, passive ejection, a worker echoing
   * its primary), so the generic one is skipped.
   */
  noteChange(reason: string, loggedBy: string | null = null): boolean {
    const now = this.state;
    if (now === this.lastState) return false;
    const from = this.lastState;
    this.lastState = now;
    this.stateSince = Date.now();
    this.stateReason = reason;
    // Back to taking traffic after DOWN or MAINT: slow start ramps its weight (when configured).
    if (now === 'UP' && (from === 'DOWN' || from === 'MAINT')) this.rampSince = this.stateSince;
    this.owner.serverStateChanged(this, from, now, reason, loggedBy);
    return true;
  }

  /** Close every connection this server carries (`on_marked_down: shutdown_sessions`). */
  shutdownSessions(): void {
    for (const socket of this.sessions) socket.destroy();
    this.sessions.clear();
    this.closeIdle();
  }

  /** Where connections go from now on (at creation, and when discovery or an edit moves it). */
  moveTo(host: string, port: number): void {
    this.host = host;
    this.port = port;
    this.address = `${host}:${port}`;
    this.ipFamily = isIP(host);
  }

  /** Drop pooled idle connections (server removed, DOWN, or address changed). */
  closeIdle(): void {
    const idle = this.idle;
    while (idle.length > 0) idle.pop()!.destroy();
  }
}
