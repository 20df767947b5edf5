import type { ClientSocket } from '../model/proxy-socket.js';
import { clientIpOf } from '../balancer/client-address.js';
import type { SessionView } from './show.js';

// `show sess` reads the sessions the listeners hold. Sessions keep their state in their own
// fields (the proxy core's hot objects); this reads the few it prints through a narrow view,
// on the cold path, without adding anything to the session classes.

interface SessionFields {
  readonly socket: ClientSocket;
  readonly frontend?: { readonly name: string };
  readonly backend?: { readonly name: string } | null;
  readonly server?: { readonly name: string } | null;
  readonly start?: number;
}

const ids = new WeakMap<object, number>();
let nextId = 1;

export function describeSessions(frontend: string, mode: string, sessions: Iterable<unknown>, now: number, out: SessionView[]): void {
  for (const s of sessions) {
    const f = s as SessionFields;
    let id = ids.get(f);
    if (id === undefined) {
      id = nextId++;
      ids.set(f, id);
    }
    const ip = clientIpOf(f.socket);
    const port = f.socket.remotePort ?? 0;
    out.push({
      id,
      proto: `${mode}${ip.includes(':') ? 'v6' : 'v4'}`,
      src: ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`,
      frontend,
      backend: f.backend?.name ?? null,
      server: f.server?.name ?? null,
      ageMs: f.start !== undefined && f.start > 0 ? now - f.start : 0,
    });
  }
}
