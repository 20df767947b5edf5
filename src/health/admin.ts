import type { AdminState, Server } from '../model/server.js';

// Admin states, the desired half of a server's state (contract "Server states"):
//   ready  — normal
//   drain  — DRAIN: no new traffic except sticky sessions already bound to it
//   maint  — MAINT: no traffic and no health checks
// The stats admin API (`POST /api/backends/NAME/servers/SERVER/state`) calls setAdminState.
// Observed flags (checkDown, ejected, consulCritical) are left alone: leaving MAINT, the health
// checker notices the event and checks the server at once (see checker.ts).

export const ADMIN_STATES: readonly AdminState[] = ['ready', 'drain', 'maint'];

export function isAdminState(value: unknown): value is AdminState {
  return typeof value === 'string' && (ADMIN_STATES as readonly string[]).includes(value);
}

/**
 * Set a server's admin state. Throws a TypeError (message naming the accepted values) on
 * anything else, before changing anything. Returns true when the visible state changed.
 * The transition reason is `admin: maint` / `admin: drain` / `admin: ready`.
 */
export function setAdminState(server: Server, state: unknown): boolean {
  if (!isAdminState(state)) {
    throw new TypeError(`state: expected one of ${ADMIN_STATES.join(', ')}, got ${JSON.stringify(state)}`);
  }
  if (server.admin === state) return false;
  server.admin = state;
  return server.noteChange(`admin: ${state}`);
}
