import { isIP } from 'node:net';
import type { Backend } from '../model/backend.js';
import type { Runtime } from '../model/runtime.js';
import type { Server } from '../model/server.js';
import { RUNTIME_ID_PREFIX } from '../model/runtime-edits.js';
import { isAdminState, setAdminState } from '../model/admin-state.js';

// The commands that change servers, with HAProxy 2.6's wording for every answer and error
// (src/server.c, src/stream.c). They go through the same model calls as the HTTP admin API
// (setAdminState) or the backend's runtime edits (runtime-edits.ts), so the stats page, the
// CSV and the health checker see the change at once. Each returns the text to print ('' when
// HAProxy prints nothing); none throws on bad input.

export interface Found {
  readonly backend: Backend;
  readonly server: Server;
}

/** HAProxy cli_find_server: `backend/server`, names or `#id`. Returns the error text otherwise. */
export function findServer(rt: Runtime, arg: string | undefined, trailingNewline = true): Found | string {
  const nl = trailingNewline ? '\n' : '';
  const text = arg ?? '';
  const slash = text.indexOf('/');
  if (slash <= 0 || slash === text.length - 1) return `Require 'backend/server'.${nl}`;
  const backend = findBackend(rt, text.slice(0, slash));
  if (backend === undefined) return `No such backend.${nl}`;
  const name = text.slice(slash + 1);
  let server = backend.serverByName(name);
  if (server === undefined && name.startsWith('#')) server = backend.servers[Number(name.slice(1)) - 1];
  if (server === undefined) return `No such server.${nl}`;
  return { backend, server };
}

export function findBackend(rt: Runtime, name: string): Backend | undefined {
  const byName = rt.backends.get(name);
  if (byName !== undefined || !name.startsWith('#')) return byName;
  // `#<id>`: proxy ids count frontends first, then backends (as the stats `iid`).
  const id = Number(name.slice(1)) - rt.frontends.size;
  return [...rt.backends.values()][id - 1];
}

/** `set server <b>/<s> state ready|drain|maint` and `enable|disable server`. */
export function setState(found: Found, state: string): string {
  if (!isAdminState(state)) return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n";
  setAdminState(found.server, state);
  return '';
}

/** `set server <b>/<s> weight <w>[%]` (server.c server_parse_weight_change_request). */
export function setWeight(found: Found, text: string | undefined): string {
  const { backend, server } = found;
  if (text === undefined || text === '') return 'Require <weight> or <weight%>.\n';
  const m = /^([+-]?\d+)(.*)$/.exec(text);
  if (m === null) return 'Empty weight string empty or preceded by garbage';
  let w = Number(m[1]);
  if (m[2] === '%') {
    if (w < 0) return 'Relative weight must be positive.\n';
    w = Math.min(Math.floor((server.initialWeight * Math.min(w, 25600)) / 100), 256);
  } else if (w < 0 || w > 256) {
    return 'Absolute weight can only be between 0 and 256 inclusive.\n';
  } else if (m[2] !== '') {
    return 'Trailing garbage in weight string';
  }
  backend.edits.override(server.id, { weight: w });
  backend.applyEdits();
  return '';
}

/** `set server <b>/<s> addr <ip> [port <port>]` (server.c srv_update_addr_port). */
export function setAddr(found: Found, args: readonly string[]): string {
  const { backend, server } = found;
  const addr = args[4];
  if (addr === undefined || addr === '') return 'set server <b>/<s> addr requires an address and optionally a port.\n';
  const portText = args[5] === 'port' ? (args[6] ?? '') : null;
  if (isIP(addr) === 0) return `Invalid addr '${addr}' by 'stats socket command'\n`;
  let msg: string;
  const change: { host?: string; port?: number } = {};
  if (addr === server.host) msg = 'no need to change the addr';
  else {
    msg = `IP changed from '${server.host}' to '${addr}'`;
    change.host = addr;
  }
  if (portText !== null) {
    msg += ', ';
    if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      return `${msg}problem converting port '${portText}' to an int by 'stats socket command'\n`;
    }
    const port = Number(portText);
    if (port === server.port) msg += 'no need to change the port';
    else {
      msg += `port changed from '${server.port}' to '${port}'`;
      change.port = port;
    }
  }
  if (change.host !== undefined || change.port !== undefined) {
    // The backend moves the server (same identity: counters, health, state stay) and closes its
    // pooled connections to the old address, as HAProxy's srv_cleanup_connections does.
    backend.edits.override(server.id, change);
    backend.applyEdits();
  }
  return `${msg} by 'stats socket command'\n`;
}

/** `set maxconn server <b>/<s> <n>` (server.c server_parse_maxconn_change_request). */
export function setMaxconn(found: Found, text: string | undefined): string {
  if (text === undefined || text === '') return 'Require <maxconn>.\n';
  const m = /^([+-]?\d+)(.*)$/.exec(text);
  if (m === null) return 'maxconn string empty or preceded by garbage';
  if (m[2] !== '') return 'Trailing garbage in maxconn string';
  const n = Number(m[1]);
  if (n < 0) return 'Require <maxconn>.\n';
  found.backend.edits.override(found.server.id, { maxconn: n });
  found.backend.applyEdits();
  return '';
}

/** `enable|disable health <b>/<s>`. */
export function setHealth(found: Found, enable: boolean): string {
  const { backend, server } = found;
  if (enable && backend.config.health.type === 'none') return 'Health check was not configured on this server, cannot enable.\n';
  if (server.checkDisabled === !enable) return '';
  server.checkDisabled = !enable;
  // The checker follows backend-refresh events: it stops or restarts this server's loop.
  backend.refresh();
  return '';
}

/** `shutdown sessions server <b>/<s>`: every connection it carries is closed now. */
export function shutdownSessions(found: Found): string {
  found.server.shutdownSessions();
  return '';
}

const ADD_USAGE = "'add server' expects <backend>/<server> <addr>:<port> [weight <w>] [maxconn <n>] [backup] [enabled|disabled]";

/**
 * `add server <b>/<s> <addr>:<port> [weight <w>] [maxconn <n>] [backup] [enabled|disabled]`.
 * As in HAProxy, the new server starts in maintenance unless `enabled` is given, and it lasts
 * until the next reload (add it to the config file to keep it).
 */
export function addServer(rt: Runtime, args: readonly string[]): string {
  const target = args[2] ?? '';
  const slash = target.indexOf('/');
  if (slash <= 0 || slash === target.length - 1) return "Require 'backend/server'.";
  const backend = findBackend(rt, target.slice(0, slash));
  if (backend === undefined) return 'No such backend.';
  const name = target.slice(slash + 1);
  if (!/^[A-Za-z0-9_.:[\]-]+$/.test(name)) return `invalid server name '${name}'.`;
  if (backend.serverByName(name) !== undefined) return 'Already exists a server with the same name in backend.\n';
  const address = parseAddress(args[3]);
  if (address === null) return ADD_USAGE + '.';
  let weight = 1;
  let maxconn = 0;
  let backup = false;
  let enabled = false;
  for (let i = 4; i < args.length; i++) {
    const word = args[i]!;
    if (word === 'weight' || word === 'maxconn') {
      const v = args[++i];
      if (v === undefined || !/^\d+$/.test(v)) return `'${word}' expects an integer argument.`;
      const n = Number(v);
      if (word === 'weight') {
        if (n > 256) return 'weight of server must be between 0 and 256.';
        weight = n;
      } else maxconn = n;
    } else if (word === 'backup') backup = true;
    else if (word === 'enabled') enabled = true;
    else if (word === 'disabled') enabled = false;
    else return `'${word}' : unknown or unsupported keyword (${ADD_USAGE}).`;
  }
  const id = `${RUNTIME_ID_PREFIX}${name}`;
  backend.edits.add({ id, name, host: address.host, port: address.port, weight, backup, maxconn });
  backend.applyEdits();
  // Synchronous with the rebuild: no pick can happen before it is in maintenance.
  const created = backend.serverById(id);
  if (created !== undefined && !enabled) {
    created.admin = 'maint';
    created.noteChange('added through the runtime API (MAINT until enabled)');
  }
  return 'New server registered.\n';
}

/** `del server <b>/<s>`: only a server in maintenance, with no connection left (HAProxy 2.6). */
export function delServer(rt: Runtime, arg: string | undefined): string {
  const found = findServer(rt, arg, false);
  if (typeof found === 'string') return found;
  const { backend, server } = found;
  if (server.admin !== 'maint') return 'Only servers in maintenance mode can be deleted.';
  if (server.active > 0 || server.sessions.size > 0) return 'Server still has connections attached to it, cannot remove it.';
  backend.edits.delete(server.id);
  backend.applyEdits();
  server.closeIdle();
  return 'Server deleted.';
}

/** `ip:port`, `[v6]:port` (an IP, as HAProxy's dynamic servers take no resolution). */
function parseAddress(text: string | undefined): { host: string; port: number } | null {
  if (text === undefined) return null;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (m === null || isIP(m[1]!) === 0) return null;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : null;
}
