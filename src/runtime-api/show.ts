import { hostname } from 'node:os';
import { isIP } from 'node:net';
import type { StatsHost } from '../host.js';
import type { Backend } from '../model/backend.js';
import type { Server } from '../model/server.js';
import { COLUMNS, CSV_HEADER, cell, type Value } from '../stats/columns.js';
import type { RateSource, Row } from '../stats/row.js';
import { buildRows, renderCsv } from '../stats/snapshot.js';

// The read-only commands: show info, show stat, show servers state, show backend, show sess.
// `show stat` renders through the same rows and CSV renderer as `/stats;csv`, so the two are
// the same bytes; the others follow HAProxy 2.6's formats (src/stats.c, src/proxy.c,
// src/stream.c) with our values.

export interface SessionView {
  readonly id: number;
  readonly proto: string;
  readonly src: string;
  readonly frontend: string;
  readonly backend: string | null;
  readonly server: string | null;
  readonly ageMs: number;
}

export interface ShowHost extends StatsHost {
  /** Client sessions open in this process (empty in a cluster primary: its workers serve). */
  sessions(): SessionView[];
}

export const PRODUCT_NAME = 'switchyard';

// ---- show info ---------------------------------------------------------------------------

interface InfoField {
  readonly name: string;
  /** HAProxy's origin/nature/scope tags for the typed format (POS, CGS, MCP...). */
  readonly tags: string;
  readonly type: 'str' | 'u32' | 'u64';
  readonly value: string | number;
}

/** HAProxy's uptime text: `0d 0h00m04s`. */
function uptimeText(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${d}d ${h}h${String(m).padStart(2, '0')}m${String(s).padStart(2, '0')}s`;
}

/** HAProxy's info fields (names, order and positions of 2.6) that have a meaning here. */
function infoFields(host: ShowHost, rates: RateSource, version: string): (InfoField & { pos: number })[] {
  const rt = host.runtime();
  const now = Date.now();
  const up = Math.floor((now - host.startedAt) / 1000);
  let curr = 0;
  let cum = 0;
  let req = 0;
  let rate = 0;
  let rateMax = 0;
  let bout = 0;
  for (const f of rt.frontends.values()) {
    curr += f.counters.scur;
    cum += f.counters.stot;
    req += f.counters.reqTot;
    bout += f.counters.bout;
    const r = rates.ratesOf(f.counters);
    rate += r.rate;
    rateMax = Math.max(rateMax, r.rateMax);
  }
  const maxconn = [...rt.frontends.values()].reduce((n, f) => n + f.config.maxconn, 0);
  const workers = host.workers();
  const mem = process.memoryUsage();
  const list: [number, string, string, InfoField['type'], string | number][] = [
    [0, 'Name', 'POS', 'str', PRODUCT_NAME],
    [1, 'Version', 'POS', 'str', version],
    [3, 'Nbthread', 'CGS', 'u32', workers?.count ?? 1],
    [4, 'Nbproc', 'CGS', 'u32', 1],
    [5, 'Process_num', 'KGP', 'u32', 1],
    [6, 'Pid', 'SGP', 'u32', process.pid],
    [7, 'Uptime', 'MDP', 'str', uptimeText(up)],
    [8, 'Uptime_sec', 'MDP', 'u32', up],
    [9, 'Start_time_sec', 'MDP', 'u32', Math.floor(host.startedAt / 1000)],
    [12, 'PoolAlloc_MB', 'MGP', 'u32', Math.floor(mem.rss / 1048576)],
    [13, 'PoolAlloc_bytes', 'MGP', 'u32', mem.rss],
    [14, 'PoolUsed_MB', 'MGP', 'u32', Math.floor(mem.heapUsed / 1048576)],
    [15, 'PoolUsed_bytes', 'MGP', 'u32', mem.heapUsed],
    [19, 'Maxconn', 'CLP', 'u32', maxconn],
    [21, 'CurrConns', 'MGP', 'u32', curr],
    [22, 'CumConns', 'MCP', 'u32', cum],
    [23, 'CumReq', 'MCP', 'u32', req],
    [30, 'ConnRate', 'MRP', 'u32', rate],
    [32, 'MaxConnRate', 'MMP', 'u32', rateMax],
    [33, 'SessRate', 'MRP', 'u32', rate],
    [35, 'MaxSessRate', 'MRP', 'u32', rateMax],
    [54, 'node', 'COS', 'str', hostname()],
    [56, 'Stopping', 'MGP', 'u32', 0],
    [57, 'Jobs', 'MGP', 'u32', curr],
    [58, 'Unstoppable Jobs', 'MGP', 'u32', 0],
    [59, 'Listeners', 'MGP', 'u32', rt.frontends.size],
    [65, 'TotalBytesOut', 'MGP', 'u64', bout],
  ];
  return list.map(([pos, name, tags, type, value]) => ({ pos, name, tags, type, value }));
}

export function showInfo(host: ShowHost, rates: RateSource, version: string, args: readonly string[]): string {
  const typed = args.includes('typed');
  const desc = args.includes('desc');
  let out = '';
  for (const f of infoFields(host, rates, version)) {
    if (typed) out += `${f.pos}.${f.name}.1:${f.tags}:${f.type}:${f.value}`;
    else out += `${f.name}: ${f.value}`;
    if (desc) out += ':""';
    out += '\n';
  }
  return out;
}

// ---- show stat ----------------------------------------------------------------------------

const TYPE_FE = 1;
const TYPE_BE = 2;
const TYPE_SV = 4;

/** `show stat [{<iid>|<proxy>} <type> <sid>] [typed] [up|no-maint]` (HAProxy cli_parse_show_stat). */
export function showStat(host: ShowHost, rates: RateSource, args: readonly string[]): string {
  let rows = buildRows(host.runtime(), rates);
  let i = 2;
  if (args[i] === 'domain') {
    if (args[i + 1] !== 'proxy') return 'Invalid statistics domain.\n';
    i += 2;
  }
  if (args[i] !== undefined && args[i + 1] !== undefined && args[i + 2] !== undefined && !isFlag(args[i]!)) {
    const px = args[i]!;
    const type = toInt(args[i + 1]!);
    const sid = toInt(args[i + 2]!);
    const byName = rows.some((r) => r.pxname === px);
    const iid = byName ? -2 : toInt(px);
    if (!byName && iid === 0) return 'No such proxy.\n';
    rows = rows.filter((r) => {
      if (iid !== -1 && (byName ? r.pxname !== px : r.iid !== iid)) return false;
      if (type !== -1) {
        const bit = r.kind === 'frontend' ? TYPE_FE : r.kind === 'backend' ? TYPE_BE : TYPE_SV;
        if ((type & bit) === 0) return false;
      }
      return r.kind !== 'server' || sid === -1 || r.sid === sid;
    });
    i += 3;
  }
  const flags = args.slice(i);
  if (flags.includes('no-maint')) rows = rows.filter((r) => r.kind !== 'server' || r.server.state !== 'MAINT');
  if (flags.includes('up')) rows = rows.filter((r) => r.kind !== 'server' || r.server.state === 'UP' || r.server.state === 'DRAIN');
  if (flags.includes('typed')) return renderTyped(rows, flags.includes('desc'));
  if (flags.includes('json')) return 'show stat json is not supported: use typed, or GET /api/stats on the stats listener.\n';
  return renderCsv(rows, CSV_HEADER);
}

function isFlag(word: string): boolean {
  return word === 'typed' || word === 'json' || word === 'desc' || word === 'up' || word === 'no-maint';
}

/** C's atoi: leading digits (with sign), 0 otherwise. */
function toInt(text: string): number {
  const m = /^\s*([+-]?\d+)/.exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** Key fields, as HAProxy tags them (origin Key, nature Name/Gauge, scope Service/Process). */
const KEY_TAGS: Readonly<Record<string, string>> = {
  pxname: 'KNS',
  svname: 'KNS',
  pid: 'KGP',
  iid: 'KGS',
  sid: 'KGS',
  type: 'CGS',
  status: 'SOS',
  check_status: 'SOS',
  check_desc: 'SOS',
  last_chk: 'SOS',
  addr: 'COS',
  cookie: 'COS',
  mode: 'COS',
  algo: 'COS',
  slim: 'CLP',
  weight: 'MAS',
  uweight: 'MAS',
  act: 'MGS',
  bck: 'MGS',
  lastchg: 'MAS',
  lastsess: 'MAS',
};

function typedValue(v: Value): string {
  if (typeof v === 'string') return `str:${v}`;
  return Number.isInteger(v) ? `u64:${v}` : `u64:${Math.round(v as number)}`;
}

/** `show stat typed`: `F.<iid>.<sid>.<pos>.<name>.<pid>:<tags>:<type>:<value>` per non-empty cell. */
function renderTyped(rows: readonly Row[], desc: boolean): string {
  let out = '';
  for (const row of rows) {
    const letter = row.kind === 'frontend' ? 'F' : row.kind === 'backend' ? 'B' : 'S';
    for (let pos = 0; pos < COLUMNS.length; pos++) {
      const column = COLUMNS[pos]!;
      if (column.name === '-') break;
      const v = cell(column, row);
      if (v === null) continue;
      const spec = column.prom[0];
      const tags = KEY_TAGS[column.name] ?? (spec?.type === 'counter' ? 'MCP' : typeof v === 'string' ? 'SOS' : 'MGP');
      out += `${letter}.${row.iid}.${row.sid}.${pos}.${column.name}.1:${tags}:${typedValue(v)}${desc ? ':""' : ''}\n`;
    }
  }
  return out;
}

// ---- show servers state / show backend -----------------------------------------------------

/** HAProxy's enum healthcheck_status positions (include/haproxy/check-t.h, 2.6). */
const CHECK_STATUS: Readonly<Record<string, number>> = {
  '': 1,
  L4OK: 6,
  L4TOUT: 7,
  L4CON: 8,
  L6OK: 9,
  L6TOUT: 10,
  L6RSP: 11,
  L7TOUT: 12,
  L7RSP: 13,
  L7OK: 15,
  L7OKC: 16,
  L7STS: 17,
};

const SERVERS_STATE_HEADER =
  '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n';

/** One line of `show servers state` (proxy.c dump_servers_state, format version 1). */
function serverStateLine(beId: number, backend: Backend, sid: number, s: Server, now: number): string {
  const state = s.state;
  // srv_op_state: 0 stopped, 2 running (DRAIN is running, drained by its admin state).
  const op = state === 'UP' || state === 'DRAIN' ? 2 : 0;
  const admin = (s.admin === 'maint' ? 0x01 : 0) | (s.admin === 'drain' ? 0x08 : 0);
  const configured = backend.config.health.type !== 'none';
  const running = configured && !s.checkDisabled;
  // Unchecked servers read as HAProxy 2.6 prints them: status INI (1), health at `rise`.
  const checkStatus = configured ? (CHECK_STATUS[s.check.code] ?? 0) : 1;
  const checkHealth = configured ? s.check.health : backend.config.health.rise;
  const checkResult = !running || s.check.at === 0 || s.check.code === '' ? 0 : s.checkDown ? 2 : 3;
  // CHK_ST_CONFIGURED 0x02 | CHK_ST_ENABLED 0x04 | CHK_ST_PAUSED 0x08 (maintenance)
  const checkState = backend.config.health.type === 'none' ? 0 : 0x02 | (s.checkDisabled ? 0 : 0x04) | (s.admin === 'maint' ? 0x08 : 0);
  const ip = isIP(s.host) !== 0;
  return (
    `${beId} ${backend.name} ${sid} ${s.name} ${ip ? s.host : '-'} ${op} ${admin} ${s.weight} ${s.initialWeight} ${Math.floor((now - s.stateSince) / 1000)} ` +
    `${checkStatus} ${checkResult} ${checkHealth} ${checkState} 0 0 0 ${ip ? '-' : s.host} ${s.port} - 0 0 - - 0\n`
  );
}

export function showServersState(host: ShowHost, args: readonly string[]): string {
  const rt = host.runtime();
  const only = args[3];
  let id = rt.frontends.size;
  const now = Date.now();
  let body = '';
  let found = only === undefined;
  for (const backend of rt.backends.values()) {
    id++;
    if (only !== undefined && backend.name !== only && String(id) !== only.replace(/^#/, '')) continue;
    found = true;
    let sid = 0;
    for (const s of backend.servers) body += serverStateLine(id, backend, ++sid, s, now);
  }
  if (!found) return `Can't find backend.\n`;
  return SERVERS_STATE_HEADER + body;
}

export function showBackend(host: ShowHost): string {
  let out = '# name\n';
  for (const b of host.runtime().backends.values()) out += `${b.name}\n`;
  return out;
}

// ---- show sess --------------------------------------------------------------------------------

/** `show sess`: one line per session, HAProxy's leading fields (stream.c), no internals. */
export function showSess(host: ShowHost): string {
  let out = '';
  for (const s of host.sessions()) {
    out += `0x${s.id.toString(16).padStart(8, '0')}: proto=${s.proto} src=${s.src} fe=${s.frontend} be=${s.backend ?? '<NONE>'} srv=${s.server ?? '<none>'} age=${formatAge(s.ageMs)}\n`;
  }
  return out;
}

/** HAProxy's human_time: `3s`, `1m20s`, `2h5m`, `1d3h`. */
function formatAge(ms: number): string {
  let s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${m}m`;
  return `${m}m${s}s`;
}
