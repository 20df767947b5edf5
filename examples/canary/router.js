// @ts-check
// canary: a worked user router for switchyard (see README.md next to this file).
//
// Sends a request to the `canary` backend when the client asks for it (`x-canary: 1`), or when
// its address falls in the canary's share of clients (5%, by a stable hash: the same client
// always gets the same answer, on every switchyard instance, across reloads). `x-canary: 0`
// opts out. Anything else falls through (returns nothing) to the config's routes and
// default_backend.
//
// Edit PERCENT and save: the file watch loads the new version without dropping a request.
//
// The contract, as every router follows it:
//   - route(req) runs per request, synchronously: no await, no I/O, cheap;
//   - return a backend name, { redirect }, { deny }, { respond }, or nothing to fall through;
//   - a throw or an unknown backend name sends the request to the default backend (counted
//     per module in /api/stats `userCode` and /metrics `switchyard_user_code_errors_total`).

/** Share of clients sent to the canary, in percent. */
const PERCENT = 5;
const CANARY = 'canary';

/**
 * 32-bit FNV-1a of a string: stable across processes and versions (unlike a random seed).
 * @param {string} s
 */
function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** @type {import('switchyard').Router['route']} */
export function route(req) {
  const asked = req.header('x-canary');
  if (asked === '1') return CANARY;
  if (asked === '0') return undefined;
  return fnv1a(req.clientIp) % 100 < PERCENT ? CANARY : undefined;
}
