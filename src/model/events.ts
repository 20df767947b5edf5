import { EventEmitter } from 'node:events';
import type { Server, ServerState } from './server.js';

// The model's change feed. Health checks, discovery and admin actions change server flags;
// backends, logs and stats history listen here. Cold path only: never emitted per request.

export interface ServerStateEvent {
  readonly server: Server;
  readonly from: ServerState;
  readonly to: ServerState;
  readonly reason: string;
  /** Who already logged this transition in detail (null: nobody, the generic line is due). */
  readonly loggedBy: string | null;
}

export interface ModelEventMap {
  'server-state': [ServerStateEvent];
  /** A backend's eligible set was recomputed (servers added/removed, weights, states). */
  'backend-refresh': [{ readonly backend: string }];
  /** A strategy failed (user strategy threw or returned an ineligible server). */
  'strategy-error': [{ readonly backend: string; readonly error: unknown }];
}

export const modelEvents = new EventEmitter<ModelEventMap>();
modelEvents.setMaxListeners(100);
