import type { Config } from './types.js';
import { formatHostPort } from './checks.js';

// The one line `switchyard check` prints for a valid config:
// `ok: 2 frontends (http 1, tcp 1), 2 backends, 5 servers, stats on 0.0.0.0:11099`

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

export function summarizeConfig(config: Config): string {
  const http = config.frontends.filter((f) => f.mode === 'http').length;
  const tcp = config.frontends.length - http;
  const servers = config.backends.reduce((n, b) => n + b.servers.length, 0);
  const discovered = config.backends.filter((b) => b.discovery !== null).length;
  const parts = [
    `${count(config.frontends.length, 'frontend')} (http ${http}, tcp ${tcp})`,
    count(config.backends.length, 'backend'),
    count(servers, 'server'),
  ];
  if (discovered > 0) parts.push(`${count(discovered, 'backend')} from consul`);
  parts.push(`stats on ${formatHostPort(config.stats.bind)}`);
  return `ok: ${parts.join(', ')}`;
}
