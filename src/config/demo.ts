import type { Config } from './types.js';
import { normalizeConfig } from './load.js';

// The embedded demo (`npm start` with no config file): an HTTP and a TCP frontend in front of
// the three local echo servers, each with its own backend and active checks every 2s, so the
// stats page shows checks, states and traffic right away. Built through the same validation
// as a file, so the demo cannot drift from what a user could write.

export interface DemoPorts {
  readonly http: number;
  readonly tcp: number;
  readonly stats: number;
  readonly echo: readonly number[];
}

/**
 * `adminPassword`: the demo's stats login (user `admin`), so a newcomer can try the admin
 * buttons; null leaves admin off. The listener binds 127.0.0.1 only.
 */
export function demoConfig(ports: DemoPorts, adminPassword: string | null = null): Config {
  const servers = ports.echo.map((port, i) => ({ name: `echo${i + 1}`, address: `127.0.0.1:${port}` }));
  return normalizeConfig(
    {
      stats: {
        bind: `127.0.0.1:${ports.stats}`,
        ...(adminPassword !== null ? { auth: { username: 'admin', password: adminPassword } } : {}),
      },
      frontends: {
        'demo-http': { mode: 'http', bind: `127.0.0.1:${ports.http}`, backend: 'demo-http' },
        'demo-tcp': { mode: 'tcp', bind: `127.0.0.1:${ports.tcp}`, backend: 'demo-tcp' },
      },
      backends: {
        'demo-http': {
          mode: 'http',
          strategy: 'round-robin',
          health: { type: 'http', method: 'GET', path: '/health', interval: '2s' },
          servers,
        },
        'demo-tcp': {
          mode: 'tcp',
          strategy: 'round-robin',
          health: { type: 'tcp', interval: '2s' },
          servers,
        },
      },
    },
    null,
  );
}
