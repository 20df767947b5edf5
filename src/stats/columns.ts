import type { Backend } from '../model/backend.js';
import type { Server } from '../model/server.js';
import type { BackendRow, FrontendRow, Row, RowKind, ServerRow } from './row.js';

// The ONE column table. HAProxy 2.6's `show stat` columns, all 128 of them and in its order
// (test/fixtures/haproxy-2.6-stat-header.csv is the header HAProxy 2.6.12 printed), each with
// how a FRONTEND, BACKEND or server row reads it from the model. The CSV prints every column,
// the JSON API keys each row's values by these names (the HTML page reads that JSON), and the
// Prometheus collectors turn the columns that carry a `prom` spec into metric families: the same
// idea as HAProxy's `stat_cols_px` feeding both its CSV and its Prometheus exporter.
//
// A getter that is absent, or returns null, leaves the cell empty, as HAProxy does for values
// that do not apply (no queue limit, no agent, a frontend's server columns) and for what
// switchyard cannot know: a cell that looks measured must be measured.

export type Value = number | string | null;
type Get<R> = (row: R) => Value;

export interface PromSpec {
  /** Family name after `switchyard_<kind>_`: `bytes_in_total`. */
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  /** Rows that feed it (default: every kind whose getter exists). */
  readonly kinds?: readonly RowKind[];
  /** Fixed labels: several columns may feed one family (`responses_total{code="2xx"}`). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Turns the cell into the sample; null: no sample for this row. Default: numbers as they are. */
  readonly value?: (cell: Value, row: Row) => number | null;
}

export interface Column {
  readonly name: string;
  readonly frontend: Get<FrontendRow> | null;
  readonly backend: Get<BackendRow> | null;
  readonly server: Get<ServerRow> | null;
  readonly prom: readonly PromSpec[];
}

interface Getters {
  fe?: Get<FrontendRow>;
  be?: Get<BackendRow>;
  sv?: Get<ServerRow>;
}

function col(name: string, g: Getters = {}, ...prom: PromSpec[]): Column {
  return { name, frontend: g.fe ?? null, backend: g.be ?? null, server: g.sv ?? null, prom };
}

/** The same getter for the three kinds. */
function all(get: Get<Row>): Getters {
  return { fe: get, be: get, sv: get };
}

function px(get: Get<FrontendRow | BackendRow>, sv: Get<ServerRow> | null = null): Getters {
  return sv === null ? { fe: get, be: get } : { fe: get, be: get, sv };
}

function beSv(get: Get<BackendRow | ServerRow>): Getters {
  return { be: get, sv: get };
}

const ms = (v: number): number => Math.round(v);
const secondsSince = (now: number, t: number): number => Math.max(0, Math.floor((now - t) / 1000));
const zero = (): number => 0;
/** Weights to two decimals: a slow-start ramp makes them fractional. */
const weight2 = (w: number): number => Math.round(w * 100) / 100;
const isHttp = (r: Row): boolean => (r.kind === 'frontend' ? r.frontend.config.mode : r.backend.mode) === 'http';
/** HTTP-only columns are empty in TCP mode, as HAProxy leaves them. */
const http =
  (get: Get<Row>): Get<Row> =>
  (r) =>
    isHttp(r) ? get(r) : null;

export function checked(backend: Backend): boolean {
  return backend.config.health.type !== 'none';
}

/**
 * A server's status as HAProxy words it (srv_hlt_st): `UP`, `DOWN`, `MAINT`, `DRAIN`, `NOLB`
 * (UP with weight 0), and while checks move it between states `UP 2/3` (2 more failed checks
 * to DOWN, out of `fall`) or `DOWN 1/2` (1 of `rise` successes seen).
 */
export function serverStatus(backend: Backend, server: Server): string {
  const state = server.state;
  if (state === 'MAINT') return 'MAINT';
  const h = backend.config.health;
  const health = server.check.health;
  const top = h.rise + h.fall - 1;
  const moving = checked(backend) && server.check.at !== 0;
  if (state === 'DOWN') {
    return moving && server.checkDown && health > 0 ? `DOWN ${health}/${h.rise}` : 'DOWN';
  }
  const base = state === 'DRAIN' ? 'DRAIN' : server.weight === 0 ? 'NOLB' : 'UP';
  return moving && health < top && health >= h.rise ? `${base} ${health - h.rise + 1}/${h.fall}` : base;
}

/** HAProxy's check_desc wording for our check codes. */
const CHECK_DESC: Readonly<Record<string, string>> = {
  INI: 'Initializing',
  L4OK: 'Layer4 check passed',
  L4TOUT: 'Layer4 timeout',
  L4CON: 'Layer4 connection problem',
  L6OK: 'Layer6 check passed',
  L6TOUT: 'Layer6 timeout',
  L6RSP: 'Layer6 invalid response',
  L7OK: 'Layer7 check passed',
  L7OKC: 'Layer7 check conditionally passed',
  L7TOUT: 'Layer7 timeout',
  L7RSP: 'Layer7 invalid response',
  L7STS: 'Layer7 wrong status',
  SOCKERR: 'Socket error',
};

function checkStatus(r: ServerRow): Value {
  if (!checked(r.backend) || r.server.admin === 'maint') return null;
  return r.server.check.code === '' ? 'INI' : r.server.check.code;
}

/** The HTTP status an L7 check saw, from its reason (`status 503`). */
function checkCode(r: ServerRow): Value {
  if (!checked(r.backend) || !r.server.check.code.startsWith('L7')) return null;
  const m = /\b([1-5]\d\d)\b/.exec(r.server.check.reason);
  return m ? Number(m[1]) : null;
}

const onlyChecked =
  (get: (r: ServerRow) => Value): Get<ServerRow> =>
  (r) =>
    checked(r.backend) ? get(r) : null;

function serverSum(r: BackendRow, field: 'cliAbrt' | 'srvAbrt'): number {
  let n = 0;
  for (const s of r.backend.servers) n += s.counters[field];
  return n;
}

/** Backends record ttime themselves; connect and first-byte times live on servers: average them. */
function serverAvg(r: BackendRow, field: 'ctimeAvg' | 'rtimeAvg'): number {
  let sum = 0;
  let n = 0;
  for (const s of r.backend.servers) {
    if (s.counters.latencyCount === 0 && s.counters[field] === 0) continue;
    sum += s.counters[field];
    n++;
  }
  return n === 0 ? 0 : ms(sum / n);
}

function usable(backend: Backend, backup: boolean): number {
  let n = 0;
  for (const s of backend.servers) if (s.backup === backup && s.up) n++;
  return n;
}

const UP_STATES = /^(UP|NOLB|DRAIN)/;
const HELP_STATES = ['UP', 'DOWN', 'MAINT', 'DRAIN', 'NOLB'] as const;

function stateIs(state: string): PromSpec {
  return {
    name: 'state',
    type: 'gauge',
    help: 'Current state, one series per state (1 for the current one): UP, DOWN, MAINT, DRAIN, NOLB.',
    kinds: ['server'],
    labels: { state },
    value: (cell) => (typeof cell === 'string' && cell.split(' ')[0] === state ? 1 : 0),
  };
}

const code = (c: string): Readonly<Record<string, string>> => ({ code: c });
const RESPONSES = 'HTTP responses by status class.';

export const COLUMNS: readonly Column[] = [
  col(
    'pxname',
    all((r) => r.pxname),
  ),
  col(
    'svname',
    all((r) => r.svname),
  ),
  col(
    'qcur',
    beSv((r) => r.counters.qcur),
    { name: 'current_queue', type: 'gauge', help: "Requests waiting in the queue: the backend's (no server yet) or a server's own (sticky)." },
  ),
  col(
    'qmax',
    beSv((r) => r.counters.qmax),
    { name: 'max_queue', type: 'gauge', help: 'Most requests seen waiting in the queue.' },
  ),
  col(
    'scur',
    all((r) => r.counters.scur),
    { name: 'current_sessions', type: 'gauge', help: 'Current sessions: connections (TCP, frontends) or requests in flight (HTTP servers).' },
    { name: 'active', type: 'gauge', help: 'Connections or requests the server carries now.', kinds: ['server'] },
  ),
  col(
    'smax',
    all((r) => r.counters.smax),
    { name: 'max_sessions', type: 'gauge', help: 'Highest number of concurrent sessions seen.' },
  ),
  col(
    'slim',
    { fe: (r) => r.frontend.config.maxconn || null, sv: (r) => r.server.maxconn || null },
    { name: 'limit_sessions', type: 'gauge', help: 'Configured maxconn (absent when unlimited).' },
  ),
  col(
    'stot',
    all((r) => r.counters.stot),
    { name: 'sessions_total', type: 'counter', help: 'Sessions (connections or HTTP requests) handled.' },
  ),
  col(
    'bin',
    all((r) => r.counters.bin),
    { name: 'bytes_in_total', type: 'counter', help: 'Bytes received from clients (frontend) or sent to servers.' },
  ),
  col(
    'bout',
    all((r) => r.counters.bout),
    { name: 'bytes_out_total', type: 'counter', help: 'Bytes sent to clients (frontend) or received from servers.' },
  ),
  col(
    'dreq',
    px((r) => r.counters.dreq),
    { name: 'requests_denied_total', type: 'counter', help: 'Requests or connections denied (maxconn, per-source limits).' },
  ),
  col(
    'dresp',
    all((r) => r.counters.dresp),
    { name: 'responses_denied_total', type: 'counter', help: 'Responses denied.' },
  ),
  col('ereq', { fe: (r) => r.counters.ereq }, { name: 'request_errors_total', type: 'counter', help: 'Bad or aborted requests (400, 408, 414, 431...).' }),
  col(
    'econ',
    beSv((r) => r.counters.econ),
    { name: 'connection_errors_total', type: 'counter', help: 'Failed connections to servers.' },
  ),
  col(
    'eresp',
    beSv((r) => r.counters.eresp),
    { name: 'response_errors_total', type: 'counter', help: 'Response errors: resets, malformed responses, timeouts.' },
  ),
  col(
    'wretr',
    beSv((r) => r.counters.wretr),
    { name: 'retry_warnings_total', type: 'counter', help: 'Connection attempts retried.' },
  ),
  col(
    'wredis',
    beSv((r) => r.counters.wredis),
    { name: 'redispatch_warnings_total', type: 'counter', help: 'Retries sent to another server.' },
  ),
  col(
    'status',
    { fe: () => 'OPEN', be: (r) => r.backend.state, sv: (r) => serverStatus(r.backend, r.server) },
    {
      name: 'up',
      type: 'gauge',
      help: '1 when UP (or DRAIN/NOLB: still serving its sessions), else 0.',
      kinds: ['backend', 'server'],
      value: (c) => (typeof c === 'string' && UP_STATES.test(c) ? 1 : 0),
    },
    ...HELP_STATES.map(stateIs),
  ),
  // HAProxy: `weight` is the effective weight (slow start ramps it), `uweight` the configured one.
  col(
    'weight',
    { be: (r) => weight2(r.backend.eligible.reduce((n, s) => n + s.effectiveWeight, 0)), sv: (r) => weight2(r.server.effectiveWeight) },
    {
      name: 'weight',
      type: 'gauge',
      help: 'Effective server weight (below the configured one while slow start ramps it); for a backend the total of its eligible servers.',
    },
  ),
  col(
    'act',
    { be: (r) => usable(r.backend, false), sv: (r) => (r.server.backup ? 0 : 1) },
    { name: 'active_servers', type: 'gauge', help: 'Active (non-backup) servers UP.', kinds: ['backend'] },
  ),
  col(
    'bck',
    { be: (r) => usable(r.backend, true), sv: (r) => (r.server.backup ? 1 : 0) },
    { name: 'backup_servers', type: 'gauge', help: 'Backup servers UP.', kinds: ['backend'] },
  ),
  col('chkfail', { sv: onlyChecked((r) => r.server.check.failures) }, { name: 'check_failures_total', type: 'counter', help: 'Failed health checks.' }),
  col(
    'chkdown',
    { be: (r) => r.rates.downs, sv: onlyChecked((r) => r.server.check.downTransitions) },
    { name: 'check_down_transitions_total', type: 'counter', help: 'UP to DOWN transitions.' },
  ),
  col(
    'lastchg',
    { be: (r) => secondsSince(r.now, r.backend.stateSince), sv: (r) => secondsSince(r.now, r.server.stateSince) },
    { name: 'last_change_seconds', type: 'gauge', help: 'Seconds since the last state change.' },
  ),
  col(
    'downtime',
    beSv((r) => Math.floor(r.rates.downtimeMs / 1000)),
    { name: 'downtime_seconds_total', type: 'counter', help: 'Time spent DOWN since the stats listener started.' },
  ),
  col('qlimit'),
  col(
    'pid',
    all((r) => r.pid),
  ),
  col(
    'iid',
    all((r) => r.iid),
  ),
  col(
    'sid',
    all((r) => r.sid),
  ),
  col('throttle'),
  col(
    'lbtot',
    beSv((r) => r.counters.lbtot),
    { name: 'loadbalanced_total', type: 'counter', help: 'Times a server was picked by the balancer.' },
  ),
  col('tracked'),
  col('type', { fe: () => 0, be: () => 1, sv: () => 2 }),
  col(
    'rate',
    all((r) => r.rates.rate),
    { name: 'session_rate', type: 'gauge', help: 'Sessions per second over the last second.' },
  ),
  col('rate_lim', { fe: zero }),
  col(
    'rate_max',
    all((r) => r.rates.rateMax),
    { name: 'max_session_rate', type: 'gauge', help: 'Highest sessions per second seen.' },
  ),
  col('check_status', { sv: checkStatus }),
  col('check_code', { sv: checkCode }),
  col(
    'check_duration',
    { sv: onlyChecked((r) => (r.server.check.durationMs >= 0 ? ms(r.server.check.durationMs) : null)) },
    { name: 'check_duration_seconds', type: 'gauge', help: 'Duration of the last health check.', value: (c) => (typeof c === 'number' ? c / 1000 : null) },
  ),
  col('hrsp_1xx', all(http((r) => r.counters.hrsp1xx)), { name: 'responses_total', type: 'counter', help: RESPONSES, labels: code('1xx') }),
  col('hrsp_2xx', all(http((r) => r.counters.hrsp2xx)), { name: 'responses_total', type: 'counter', help: RESPONSES, labels: code('2xx') }),
  col('hrsp_3xx', all(http((r) => r.counters.hrsp3xx)), { name: 'responses_total', type: 'counter', help: RESPONSES, labels: code('3xx') }),
  col('hrsp_4xx', all(http((r) => r.counters.hrsp4xx)), { name: 'responses_total', type: 'counter', help: RESPONSES, labels: code('4xx') }),
  col('hrsp_5xx', all(http((r) => r.counters.hrsp5xx)), { name: 'responses_total', type: 'counter', help: RESPONSES, labels: code('5xx') }),
  col('hrsp_other', all(http((r) => r.counters.hrspOther)), { name: 'responses_total', type: 'counter', help: RESPONSES, labels: code('other') }),
  col('hanafail'),
  col('req_rate', { fe: http((r) => r.rates.reqRate) }, { name: 'http_requests_rate', type: 'gauge', help: 'HTTP requests per second over the last second.' }),
  col(
    'req_rate_max',
    { fe: http((r) => r.rates.reqRateMax) },
    { name: 'http_requests_rate_max', type: 'gauge', help: 'Highest HTTP requests per second seen.' },
  ),
  col('req_tot', all(http((r) => r.counters.reqTot)), {
    name: 'requests_total',
    type: 'counter',
    help: 'HTTP requests received (frontend) or sent (backend, server).',
  }),
  col(
    'cli_abrt',
    { be: (r) => serverSum(r, 'cliAbrt'), sv: (r) => r.counters.cliAbrt },
    { name: 'client_aborts_total', type: 'counter', help: 'Transfers aborted by the client.' },
  ),
  col(
    'srv_abrt',
    { be: (r) => serverSum(r, 'srvAbrt'), sv: (r) => r.counters.srvAbrt },
    { name: 'server_aborts_total', type: 'counter', help: 'Transfers aborted by the server.' },
  ),
  col('comp_in', px(zero)),
  col('comp_out', px(zero)),
  col('comp_byp', px(zero)),
  col('comp_rsp', px(zero)),
  col(
    'lastsess',
    beSv((r) => (r.counters.lastSess === 0 ? -1 : secondsSince(r.now, r.counters.lastSess))),
    {
      name: 'last_session_seconds',
      type: 'gauge',
      help: 'Seconds since the last session (absent when none yet).',
      value: (c) => (typeof c === 'number' && c >= 0 ? c : null),
    },
  ),
  col('last_chk', { sv: onlyChecked((r) => r.server.check.reason || null) }),
  col('last_agt'),
  col(
    'qtime',
    beSv((r) => ms(r.counters.qtimeAvg)),
    {
      name: 'queue_time_average_seconds',
      type: 'gauge',
      help: 'Average time spent in the queue (recent dequeues).',
      value: (c) => (typeof c === 'number' ? c / 1000 : null),
    },
  ),
  col(
    'ctime',
    { be: (r) => serverAvg(r, 'ctimeAvg'), sv: (r) => ms(r.counters.ctimeAvg) },
    {
      name: 'connect_time_average_seconds',
      type: 'gauge',
      help: 'Average connect time (recent connections).',
      value: (c) => (typeof c === 'number' ? c / 1000 : null),
    },
  ),
  col(
    'rtime',
    { be: (r) => serverAvg(r, 'rtimeAvg'), sv: (r) => ms(r.counters.rtimeAvg) },
    {
      name: 'response_time_average_seconds',
      type: 'gauge',
      help: 'Average time to the first response byte (recent requests).',
      value: (c) => (typeof c === 'number' ? c / 1000 : null),
    },
  ),
  col(
    'ttime',
    beSv((r) => ms(r.counters.ttimeAvg)),
    {
      name: 'total_time_average_seconds',
      type: 'gauge',
      help: 'Average total request time (recent requests).',
      value: (c) => (typeof c === 'number' ? c / 1000 : null),
    },
  ),
  col('agent_status'),
  col('agent_code'),
  col('agent_duration'),
  col('check_desc', {
    sv: (r) => {
      const s = checkStatus(r);
      return s === null ? null : (CHECK_DESC[s] ?? s);
    },
  }),
  col('agent_desc'),
  col('check_rise', { sv: onlyChecked((r) => r.backend.config.health.rise) }),
  col('check_fall', { sv: onlyChecked((r) => r.backend.config.health.fall) }),
  col('check_health', { sv: onlyChecked((r) => r.server.check.health) }),
  col('agent_rise'),
  col('agent_fall'),
  col('agent_health'),
  col('addr', { sv: (r) => r.server.address }),
  col('cookie', {
    be: (r) => (r.backend.config.sticky?.type === 'cookie' ? r.backend.config.sticky.name : null),
    sv: (r) => (r.backend.config.sticky?.type === 'cookie' ? r.server.stickyId : null),
  }),
  col('mode', { fe: (r) => r.frontend.config.mode, be: (r) => r.backend.mode, sv: (r) => r.backend.mode }),
  col('algo', { be: (r) => r.backend.strategyName }),
  col('conn_rate', { fe: (r) => r.rates.rate }),
  col('conn_rate_max', { fe: (r) => r.rates.rateMax }),
  col('conn_tot', { fe: (r) => r.counters.stot }),
  col('intercepted', { fe: zero }),
  // Connections refused before any request: a bad, missing, slow or untrusted PROXY header.
  col(
    'dcon',
    { fe: (r) => r.frontend.proxyRefused },
    {
      name: 'connections_denied_total',
      type: 'counter',
      help: 'Connections refused at accept: bad, missing, slow or untrusted PROXY protocol header.',
      kinds: ['frontend'],
    },
  ),
  col('dses', { fe: zero }),
  col('wrew', all(zero)),
  col('connect'),
  col('reuse'),
  col('cache_lookups'),
  col('cache_hits'),
  col('srv_icur', { sv: (r) => r.server.idle.length }, { name: 'idle_connections', type: 'gauge', help: 'Idle keep-alive connections pooled to the server.' }),
  col('src_ilim'),
  col(
    'qtime_max',
    beSv((r) => ms(r.counters.qtimeMax)),
    {
      name: 'max_queue_time_seconds',
      type: 'gauge',
      help: 'Longest time a request spent in the queue.',
      value: (c) => (typeof c === 'number' ? c / 1000 : null),
    },
  ),
  col('ctime_max'),
  col('rtime_max'),
  col('ttime_max'),
  // Internal errors per proxy: switchyard cannot pin an exception on a proxy, so the cells stay
  // empty (as HAProxy leaves unknown fields); the process-wide count is /metrics'
  // switchyard_uncaught_exceptions_total.
  col('eint'),
  col('idle_conn_cur', { sv: (r) => r.server.idle.length }),
  col('safe_conn_cur', { sv: (r) => r.server.idle.length }),
  col('used_conn_cur', { sv: (r) => r.server.sessions.size }),
  col('need_conn_est'),
  col('uweight', { be: (r) => r.backend.servers.reduce((n, s) => n + s.weight, 0), sv: (r) => r.server.weight }),
  col('agg_server_status'),
  col('agg_server_check_status'),
  col('agg_check_status'),
  // HAProxy prints '-' here: the boundary between its own columns and the stats modules'.
  col(
    '-',
    all(() => '-'),
  ),
  ...[
    'ssl_sess',
    'ssl_reused_sess',
    'ssl_failed_handshake',
    'h2_headers_rcvd',
    'h2_data_rcvd',
    'h2_settings_rcvd',
    'h2_rst_stream_rcvd',
    'h2_goaway_rcvd',
    'h2_detected_conn_protocol_errors',
    'h2_detected_strm_protocol_errors',
    'h2_rst_stream_resp',
    'h2_goaway_resp',
    'h2_open_connections',
    'h2_backend_open_streams',
    'h2_total_connections',
    'h2_backend_total_streams',
    'h1_open_connections',
    'h1_open_streams',
    'h1_total_connections',
    'h1_total_streams',
    'h1_bytes_in',
    'h1_bytes_out',
    'h1_spliced_bytes_in',
    'h1_spliced_bytes_out',
  ].map((name) => col(name)),
];

export const COLUMN_NAMES: readonly string[] = COLUMNS.map((c) => c.name);

/** HAProxy's header line: `# ` then every name followed by a comma. */
export const CSV_HEADER = `# ${COLUMN_NAMES.map((n) => `${n},`).join('')}\n`;

/** The cell of `column` for `row` (null: empty). */
export function cell(column: Column, row: Row): Value {
  switch (row.kind) {
    case 'frontend':
      return column.frontend === null ? null : column.frontend(row);
    case 'backend':
      return column.backend === null ? null : column.backend(row);
    case 'server':
      return column.server === null ? null : column.server(row);
  }
}

/** Every cell of a row, in column order. */
export function values(row: Row): Value[] {
  const out = new Array<Value>(COLUMNS.length);
  for (let i = 0; i < COLUMNS.length; i++) out[i] = cell(COLUMNS[i]!, row);
  return out;
}
