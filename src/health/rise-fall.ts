// Rise/fall as one counter, HAProxy's `check->health` (src/check.c, set_server_check_status):
//
//   0 ............ rise-1 | rise ............ rise+fall-1
//   DOWN by checks        | UP by checks
//
// A success adds one (reaching `rise` jumps to the top: UP, `fall` failures away from DOWN);
// a failure takes one away (dropping below `rise` falls to 0: DOWN, `rise` successes away from
// UP). So an UP server goes DOWN after exactly `fall` consecutive failures and a DOWN one comes
// back after exactly `rise` consecutive successes; one success in between restarts the count.
//
// Start: switchyard starts a server at the top (HAProxy's `init-state fully-up`), so `fall: 3`
// means a new server is DOWN after three failed checks, not one; the proxy's retries cover a
// dead server meanwhile. Leaving MAINT starts at `rise` instead (HAProxy's behaviour there):
// UP, and one failed check marks it DOWN.

export function topOf(rise: number, fall: number): number {
  return rise + fall - 1;
}

export function isUpBy(health: number, rise: number): boolean {
  return health >= rise;
}

/** The counter after one check result. */
export function nextHealth(health: number, ok: boolean, rise: number, fall: number): number {
  const top = topOf(rise, fall);
  if (ok) {
    if (health >= top) return top;
    const h = health + 1;
    return h >= rise ? top : h;
  }
  if (health <= 0) return 0;
  const h = health - 1;
  return h < rise ? 0 : h;
}

/**
 * Which interval the next check waits (HAProxy `srv_getinter`): `downinter` while fully DOWN,
 * `fastinter` while the counter is between the ends (changing state), `inter` at the top.
 */
export function intervalFor(health: number, rise: number, fall: number, inter: number, fastinter: number, downinter: number): number {
  if (health <= 0) return downinter;
  if (health < topOf(rise, fall)) return fastinter;
  return inter;
}
