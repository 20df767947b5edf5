import type { ServerSpec } from './server.js';

// What the runtime API changed on a backend's servers (add server, del server, set server
// weight / addr, set maxconn server), kept apart from the specs the config and discovery give:
// every rebuild of the server list (a discovery snapshot, another edit) lays these over the
// specs again, so a weight set by hand is not undone by the next Consul update. A reload drops
// them: the file wins, as in HAProxy, whose runtime changes last until the next reload.

export interface ServerOverride {
  weight?: number;
  host?: string;
  port?: number;
  maxconn?: number;
}

export const RUNTIME_ID_PREFIX = 'runtime:';

export class RuntimeEdits {
  /** Servers added at run time, in the order added (after the config's and discovered ones). */
  readonly added: ServerSpec[] = [];
  /** Ids of servers deleted at run time. */
  readonly deleted = new Set<string>();
  readonly overrides = new Map<string, ServerOverride>();

  get empty(): boolean {
    return this.added.length === 0 && this.deleted.size === 0 && this.overrides.size === 0;
  }

  /** The specs with the edits laid over: deleted ones out, overrides in, added ones last. */
  apply(specs: readonly ServerSpec[]): ServerSpec[] {
    if (this.empty) return specs as ServerSpec[];
    const out: ServerSpec[] = [];
    for (const spec of [...specs, ...this.added]) {
      if (this.deleted.has(spec.id)) continue;
      const o = this.overrides.get(spec.id);
      out.push(o === undefined ? spec : { ...spec, ...o });
    }
    return out;
  }

  override(id: string, change: ServerOverride): void {
    this.overrides.set(id, { ...this.overrides.get(id), ...change });
  }

  add(spec: ServerSpec): void {
    this.deleted.delete(spec.id);
    this.added.push(spec);
  }

  delete(id: string): void {
    const i = this.added.findIndex((s) => s.id === id);
    if (i >= 0) this.added.splice(i, 1);
    else this.deleted.add(id);
    this.overrides.delete(id);
  }

  clear(): void {
    this.added.length = 0;
    this.deleted.clear();
    this.overrides.clear();
  }
}
