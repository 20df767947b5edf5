import type { PickContext, Strategy, StrategyServer } from './strategy.js';

// ip-hash: client affinity by a consistent, weight-aware hash of the client address.
//
// Shape: a Maglev-style lookup table (Eisenbud et al., "Maglev: A Fast and Reliable Software
// Network Load Balancer", NSDI 2016, §3.4): a prime number of slots, each naming a server; a pick
// is one hash of the client address, one modulo and two array reads, O(1) whatever the number of
// servers.
//
// Filling: the slots are NOT filled with Maglev's permutation population. Maglev trades a little
// disruption for perfect balance: removing a server reshuffles some slots of servers that stay
// (the paper measures it, §5.3). Our contract is stricter (removing a server moves only its own
// clients; adding one moves only the clients it takes), so each slot goes to the server with the
// highest weighted rendezvous score for that slot (highest-random-weight hashing, Thaler &
// Ravishankar 1998; weighted with the logarithmic method, score = weight / -ln(u), Schindelhauer
// & Schomaker 2005, which makes P(server owns a slot) exactly weight / total weight). Because a
// slot's owner is an argmax over the servers present:
//   - removing a server changes exactly the slots it owned (they go to each slot's runner-up);
//   - adding a server changes exactly the slots where it scores highest, ~weight/total of them;
//   - it depends only on the set of (id, weight), never on order or on earlier history, so two
//     instances with the same servers build the same table (scores are keyed by `server.id`;
//     an exact score tie goes to the smaller id).
// 65,537 slots give each of 30 servers ~2,200 slots, so the traffic share of a server is within
// a few percent of its weight share (binomial spread), better than a ring of 160 points each.
//
// Cost: the table is 65,537 × (Int32 owner + Float64 score) ≈ 768 KiB per backend using ip-hash.
// A full build is O(slots × servers), batched (see rebuild()); update() is otherwise
// incremental: a server leaving rescores only its own slots, a server joining (or reweighted)
// is one pass over the slots, ~1 ms either way.

// Small, stable, non-cryptographic 32-bit hashes. Stable means: the same input gives the same
// output on every machine and Node version, which is what lets instances agree without talking.

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the UTF-16 code units of `s` from `start` (no allocation, no crypto). */
export function fnv1a32(s: string, start = 0, basis = FNV_OFFSET): number {
  let h = basis | 0;
  for (let i = start; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/**
 * MurmurHash3's fmix32 finaliser: a bijection on 32-bit integers with full avalanche. FNV-1a's
 * low bits mix poorly on short, similar keys (IPv4 addresses differ in their last characters),
 * so its output goes through this before being reduced modulo a table size.
 */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hash of a client address for affinity. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a
 * dual-stack socket reports) hashes like the plain IPv4 address, so a listener's address family
 * does not change which server a client lands on.
 */
export function hashClientIp(ip: string): number {
  const start = ip.length > 7 && ip.startsWith('::ffff:') && ip.indexOf('.', 7) !== -1 ? 7 : 0;
  return fmix32(fnv1a32(ip, start));
}

/** Table size: prime (Maglev's advice, so slot = hash mod size uses every hash bit). */
export const IP_HASH_TABLE_SIZE = 65537;

const M = IP_HASH_TABLE_SIZE;
const TWO_POW_32 = 4294967296;

/** Per-slot hash, shared by every instance: computed once at module load. */
const SLOT_HASH = new Uint32Array(M);
for (let j = 0; j < M; j++) SLOT_HASH[j] = fmix32(Math.imul(j + 1, 0x9e3779b1));

interface Member {
  readonly id: string;
  server: StrategyServer;
  readonly weight: number;
  /** Per-server seed of its rendezvous scores, from its id only. */
  readonly seed: number;
  readonly handle: number;
}

function slotHash(slot: number, m: Member): number {
  return fmix32(SLOT_HASH[slot]! ^ m.seed);
}

/** Weighted rendezvous score from a slot hash: weight / -ln(u), u in (0, 1). */
function scoreOf(h: number, weight: number): number {
  // h + 0.5 keeps u off both ends, so ln(u) is finite and negative.
  return weight / -Math.log((h + 0.5) / TWO_POW_32);
}

/**
 * Equal scores (rounding can map two slot hashes to one float): the higher slot hash wins, then
 * the smaller id. The same total order on every path (batched build, leave, join), so a table
 * built incrementally equals one built from scratch, bit for bit.
 */
function tieWins(h: number, m: Member, topHash: number, top: Member): boolean {
  return h > topHash || (h === topHash && m.id < top.id);
}

function byId(a: Member, b: Member): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

class IpHash implements Strategy {
  private readonly byId = new Map<string, Member>();
  /** Handle -> member; a handle is a small stable integer so slots need not be rewritten when others change. */
  private members: (Member | null)[] = [];
  /** Handle -> server: what pick() reads. */
  private servers: (StrategyServer | null)[] = [];
  private readonly freeHandles: number[] = [];
  /** Slot -> owner handle (-1: no server). */
  private readonly owner = new Int32Array(M).fill(-1);
  /** Slot -> the owner's score, to decide a joining server's slots without rescoring the others. */
  private readonly best = new Float64Array(M);
  private count = 0;

  update(eligible: readonly StrategyServer[]): void {
    const next = new Map<string, StrategyServer>();
    for (const s of eligible) if (s.weight > 0) next.set(s.id, s);

    // Leaving (or reweighted: leaves and rejoins with its new weight).
    const leaving: Member[] = [];
    for (const m of this.byId.values()) {
      const s = next.get(m.id);
      if (s === undefined || s.weight !== m.weight) leaving.push(m);
      else {
        m.server = s;
        this.servers[m.handle] = s;
      }
    }
    const joining: StrategyServer[] = [];
    for (const s of next.values()) {
      const m = this.byId.get(s.id);
      if (m === undefined || m.weight !== s.weight) joining.push(s);
    }
    if (leaving.length === 0 && joining.length === 0) return;

    // Many joining at once (first build, strategy swap, a big discovery change): one batched
    // build is cheaper than a pass per joiner. Either way the table is the same argmax.
    if (joining.length * 4 > next.size) {
      this.rebuild(next);
      return;
    }
    if (leaving.length > 0) this.remove(leaving);
    for (const s of joining) this.add(s);
  }

  private newMember(server: StrategyServer): Member {
    const handle = this.freeHandles.length > 0 ? this.freeHandles.pop()! : this.members.length;
    const m: Member = { id: server.id, server, weight: server.weight, seed: fmix32(fnv1a32(server.id)), handle };
    this.byId.set(m.id, m);
    this.members[handle] = m;
    this.servers[handle] = server;
    this.count++;
    return m;
  }

  /**
   * Fill every slot from scratch. Servers are grouped by weight: within a group the highest slot
   * hash wins (scores are monotonic in it), so only one logarithm per group and slot is taken;
   * groups are scanned in id order with a strict `>` so an exact tie goes to the smaller id.
   * ~3 ns per (slot, server): 65,537 slots × 300 servers ≈ 60 ms, once.
   */
  private rebuild(next: ReadonlyMap<string, StrategyServer>): void {
    this.byId.clear();
    this.members = [];
    this.servers = [];
    this.freeHandles.length = 0;
    this.count = 0;
    const all = [...next.values()].map((s) => this.newMember(s)).sort(byId);
    const groups = new Map<number, Member[]>();
    for (const m of all) {
      const g = groups.get(m.weight);
      if (g === undefined) groups.set(m.weight, [m]);
      else g.push(m);
    }
    const classes = [...groups.values()];
    const { owner, best } = this;
    for (let j = 0; j < M; j++) {
      let winner: Member | null = null;
      let top = -Infinity;
      let topHash = 0;
      for (const group of classes) {
        let gw = group[0]!;
        let gh = slotHash(j, gw);
        for (let i = 1; i < group.length; i++) {
          const h = slotHash(j, group[i]!);
          if (h > gh) {
            gh = h;
            gw = group[i]!;
          }
        }
        const sc = scoreOf(gh, gw.weight);
        if (winner === null || sc > top || (sc === top && tieWins(gh, gw, topHash, winner))) {
          top = sc;
          topHash = gh;
          winner = gw;
        }
      }
      owner[j] = winner === null ? -1 : winner.handle;
      best[j] = top;
    }
  }

  private remove(leaving: readonly Member[]): void {
    const gone = new Uint8Array(this.members.length);
    for (const m of leaving) {
      gone[m.handle] = 1;
      this.byId.delete(m.id);
      this.members[m.handle] = null;
      this.servers[m.handle] = null;
      this.count--;
    }
    const stay = [...this.byId.values()];
    const { owner, best } = this;
    for (let j = 0; j < M; j++) {
      const o = owner[j]!;
      if (o === -1 || gone[o] === 0) continue;
      // Its owner left: the slot goes to the runner-up among those who stay.
      let winner: Member | null = null;
      let top = -Infinity;
      let topHash = 0;
      for (const m of stay) {
        const h = slotHash(j, m);
        const sc = scoreOf(h, m.weight);
        if (winner === null || sc > top || (sc === top && tieWins(h, m, topHash, winner))) {
          top = sc;
          topHash = h;
          winner = m;
        }
      }
      owner[j] = winner === null ? -1 : winner.handle;
      best[j] = top;
    }
    // Handles are released only now that no slot names them.
    for (const m of leaving) this.freeHandles.push(m.handle);
  }

  private add(server: StrategyServer): void {
    const m = this.newMember(server);
    const { owner, best, members } = this;
    for (let j = 0; j < M; j++) {
      const h = slotHash(j, m);
      const sc = scoreOf(h, m.weight);
      const o = owner[j]!;
      if (o === -1 || sc > best[j]! || (sc === best[j]! && tieWins(h, m, slotHash(j, members[o]!), members[o]!))) {
        owner[j] = m.handle;
        best[j] = sc;
      }
    }
  }

  pick(ctx: PickContext): StrategyServer | null {
    if (this.count === 0) return null;
    const owner = this.owner;
    const servers = this.servers;
    let slot = hashClientIp(ctx.clientIp) % M;
    const s = servers[owner[slot]!]!;
    const avoid = ctx.avoid;
    if (s !== avoid || this.count === 1) return s;
    // A retry: the next slot owned by someone else. Deterministic, so every instance retries a
    // given client on the same server; slots are shuffled, so that is ~1 step.
    for (let k = 1; k < M; k++) {
      slot = slot + 1 === M ? 0 : slot + 1;
      const t = servers[owner[slot]!]!;
      if (t !== avoid) return t;
    }
    return s;
  }
}

export function ipHash(): Strategy {
  return new IpHash();
}
