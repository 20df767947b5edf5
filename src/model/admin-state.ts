import type { AdminState, Server } from './server.js';

// Admin states, the desired half of a server's state (contract "Server states"):
//   ready  — normal
//   drain  — DRAIN: no new traffic except sticky sessions already bound to it
//   maint  — MAINT: no traffic and no health checks
// Every admin surface (the stats admin API, the runtime API's `set server ... state`) checks the
// value it was sent with isAdminState, then calls setAdminState. Observed flags (checkDown,
// ejected, consulCritical) are left alone: leaving MAINT, the health checker notices the event
// and checks the server at once (health/checker.ts).

export const ADMIN_STATES: readonly AdminState[] = ['ready', 'drain', 'maint'];

export function isAdminState(value: unknown): value is AdminState {
  return typeof value === 'string' && (ADMIN_STATES as readonly string[]).includes(value);
}

/** The error for a value that is not an admin state: `state: expected one of ready, drain, maint, got "off"`. */
export function adminStateError(value: unknown): string {
  return `state: expected one of ${ADMIN_STATES.join(', ')}, got ${JSON.stringify(value)}`;
}

/**
 * Set a server's admin state. Callers check what they were sent with isAdminState and answer
 * in their own protocol; anything else still throws a TypeError (adminStateError) before
 * changing anything. Returns true when the visible state changed. The transition reason is
 * `admin: maint` / `admin: drain` / `admin: ready`.
 */
export function setAdminState(server: Server, state: AdminState): boolean {
  if (!isAdminState(state)) throw new TypeError(adminStateError(state));
  if (server.admin === state) return false;
  server.admin = state;
  return server.noteChange(`admin: ${state}`);
}
