import type { Backend } from './backend.js';

// TCP frontends with `sni_routes`: which backend a TLS connection goes to by the server name
// of its ClientHello (read by balancer/sni-route.ts). Built with each runtime generation.

/** Backends by server name for one frontend generation. */
export class SniRoutes {
  private readonly exact = new Map<string, Backend>();
  private readonly wildcard = new Map<string, Backend>();

  constructor(routes: Readonly<Record<string, string>>, backends: ReadonlyMap<string, Backend>) {
    for (const [name, backendName] of Object.entries(routes)) {
      const backend = backends.get(backendName);
      if (backend === undefined) continue; // the config check refused this already
      if (name.startsWith('*.')) this.wildcard.set(name.slice(2), backend);
      else this.exact.set(name, backend);
    }
  }

  /** Exact name, then a wildcard covering its first label; null: the frontend's own backend. */
  lookup(serverName: string | null): Backend | null {
    if (serverName === null) return null;
    const exact = this.exact.get(serverName);
    if (exact !== undefined) return exact;
    const dot = serverName.indexOf('.');
    return dot > 0 ? (this.wildcard.get(serverName.slice(dot + 1)) ?? null) : null;
  }
}
