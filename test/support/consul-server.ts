// A Consul HTTP API test server: the parts of Consul's documented API that switchyard (and users
// testing against it) need, on node:http at 127.0.0.1, port 0 by default.
//
// Follows https://developer.hashicorp.com/consul/api-docs: blocking queries (`index`, `wait`,
// up to wait/16 jitter, X-Consul-Index / X-Consul-KnownLeader / X-Consul-LastContact),
// /v1/health/service/:name (`passing`, `tag` (repeatable), `dc`), /v1/catalog/service/:name,
// /v1/agent/services, PUT /v1/agent/service/register (HTTP/TCP/TTL checks, run for real when
// `runChecks`), PUT /v1/agent/service/deregister/:id, /v1/status/leader, ACL tokens
// (X-Consul-Token, `Authorization: Bearer`, `?token=`).
//
// Tests drive it: addService / removeService / setStatus (flap), failNext (errors), setDelay
// (slow answers), stop / restart on the same port (outage), resetIndex (index goes backwards),
// setIndexHeader (a broken X-Consul-Index), and read `requests` and `registrations`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';

export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface AddServiceInput {
  id: string;
  name: string;
  address?: string;
  port: number;
  tags?: string[];
  meta?: Record<string, string>;
  status?: CheckStatus;
  /** Node the instance runs on (default: the agent's node, `node1` at 127.0.0.1). */
  node?: string;
  nodeAddress?: string;
  /** Datacenter of the node (default: the server's). */
  dc?: string;
  weights?: { Passing: number; Warning: number };
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  /** Token presented (header, bearer or query); null: none. */
  readonly token: string | null;
  readonly at: number;
}

export interface ConsulTestServerOptions {
  port?: number;
  /** When set, every /v1 call but /v1/status/* needs this token (403 otherwise). */
  token?: string | null;
  datacenter?: string;
  /** Run the HTTP/TCP checks of agent registrations at their Interval (default true). */
  runChecks?: boolean;
  /** Largest `wait` honoured; Consul caps it at 10 minutes. */
  maxWaitMs?: number;
}

interface Instance {
  id: string;
  name: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  weights: { Passing: number; Warning: number };
  node: string;
  nodeAddress: string;
  dc: string;
  status: CheckStatus;
  checkId: string;
  checkName: string;
  checkType: string;
  output: string;
  createIndex: number;
  modifyIndex: number;
  /** Registered through the agent API (listed by /v1/agent/services). */
  agent: boolean;
  criticalSince: number;
  deregisterAfterMs: number;
  timer: NodeJS.Timeout | null;
}

interface Waiter {
  readonly name: string | null;
  wake(): void;
}

const AGENT_NODE = 'node1';
const AGENT_ADDRESS = '127.0.0.1';

export class ConsulTestServer {
  readonly requests: RecordedRequest[] = [];
  /** Bodies received by PUT /v1/agent/service/register, in order. */
  readonly registrations: Record<string, unknown>[] = [];
  readonly deregistrations: string[] = [];
  port = 0;
  token: string | null;
  readonly datacenter: string;
  private readonly runChecks: boolean;
  private readonly maxWaitMs: number;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly instances = new Map<string, Instance>();
  /** Raft index: bumped by every write. */
  private index = 1;
  /** Per service name: index of the last write touching it (the blocking query's X-Consul-Index). */
  private readonly nameIndex = new Map<string, number>();
  private waiters = new Set<Waiter>();
  private failures: { count: number; status: number; body: string } = { count: 0, status: 500, body: '' };
  private delayMs = 0;
  private indexHeader: string | null = null;

  constructor(options: ConsulTestServerOptions = {}) {
    this.port = options.port ?? 0;
    this.token = options.token ?? null;
    this.datacenter = options.datacenter ?? 'dc1';
    this.runChecks = options.runChecks ?? true;
    this.maxWaitMs = options.maxWaitMs ?? 10 * 60_000;
  }

  static async start(options: ConsulTestServerOptions = {}): Promise<ConsulTestServer> {
    const s = new ConsulTestServer(options);
    await s.listen();
    return s;
  }

  /** Base URL, as `consul.address` takes it: http://127.0.0.1:PORT */
  get address(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.server !== null;
  }

  /** The X-Consul-Index health/service/:name answers with now. */
  indexOf(name: string): number {
    return this.nameIndex.get(name) ?? this.index;
  }

  // ---- programmatic API ----------------------------------------------------------------------

  addService(input: AddServiceInput): void {
    const old = this.instances.get(input.id);
    const index = this.bump();
    const inst: Instance = {
      id: input.id,
      name: input.name,
      address: input.address ?? '',
      port: input.port,
      tags: [...(input.tags ?? [])],
      meta: { ...(input.meta ?? {}) },
      weights: input.weights ?? { Passing: 1, Warning: 1 },
      node: input.node ?? AGENT_NODE,
      nodeAddress: input.nodeAddress ?? AGENT_ADDRESS,
      dc: input.dc ?? this.datacenter,
      status: input.status ?? 'passing',
      checkId: `service:${input.id}`,
      checkName: `Service '${input.name}' check`,
      checkType: 'ttl',
      output: '',
      createIndex: old?.createIndex ?? index,
      modifyIndex: index,
      agent: (input.node ?? AGENT_NODE) === AGENT_NODE,
      criticalSince: 0,
      deregisterAfterMs: 0,
      timer: null,
    };
    if (old) this.clearTimer(old);
    if (old && old.name !== inst.name) this.touch(old.name, index);
    this.instances.set(inst.id, inst);
    this.touch(inst.name, index);
  }

  removeService(id: string): boolean {
    const inst = this.instances.get(id);
    if (!inst) return false;
    this.clearTimer(inst);
    this.instances.delete(id);
    this.touch(inst.name, this.bump());
    return true;
  }

  setStatus(id: string, status: CheckStatus, output = ''): void {
    const inst = this.instances.get(id);
    if (!inst) throw new Error(`no service ${id}`);
    if (inst.status === status && inst.output === output) return; // Consul writes only on change
    if (status === 'critical' && inst.status !== 'critical') inst.criticalSince = Date.now();
    inst.status = status;
    inst.output = output;
    const index = this.bump();
    inst.modifyIndex = index;
    this.touch(inst.name, index);
  }

  /** The next `n` requests (any path) answer `status` with a plain-text error. */
  failNext(n: number, status = 500, body = 'rpc error making call: No cluster leader'): void {
    this.failures = { count: n, status, body };
  }

  /** Every answer waits this long first (slow network or overloaded servers). */
  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  /** Answer with this raw X-Consul-Index (e.g. '0' or 'abc') instead of the real one; null: real. */
  setIndexHeader(value: string | null): void {
    this.indexHeader = value;
  }

  /**
   * Indexes go backwards, as after a snapshot restore: the raft index restarts at 1 (every
   * result answers X-Consul-Index 1 until the next write). Blocked queries are woken.
   */
  resetIndex(): void {
    this.index = 1;
    this.nameIndex.clear();
    for (const inst of this.instances.values()) {
      inst.createIndex = 1;
      inst.modifyIndex = 1;
      this.nameIndex.set(inst.name, 1);
    }
    this.wake(null);
  }

  /** Stop listening and drop every connection (an outage). State is kept for restart(). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    this.wake(null);
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((r) => server.close(() => r()));
  }

  /** Listen again on the same port. */
  async restart(): Promise<void> {
    if (this.server) return;
    await this.listen();
  }

  /** Stop for good: also stops check timers. */
  async close(): Promise<void> {
    for (const inst of this.instances.values()) this.clearTimer(inst);
    await this.stop();
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  private async listen(): Promise<void> {
    const server = createServer((req, res) => { void this.handle(req, res); });
    server.keepAliveTimeout = 60_000;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://consul');
    const token = tokenOf(req, url);
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, token, at: Date.now() });
    const body = await readBody(req);
    if (this.delayMs > 0) await sleep(this.delayMs);
    if (res.destroyed || !this.server) return;
    if (this.failures.count > 0) {
      this.failures.count--;
      return text(res, this.failures.status, this.failures.body);
    }
    const path = url.pathname;
    if (!path.startsWith('/v1/status/') && this.token !== null && token !== this.token) {
      return text(res, 403, 'ACL not found');
    }
    try {
      await this.route(req.method ?? 'GET', path, url.searchParams, body, res);
    } catch (error) {
      if (!res.headersSent) text(res, 500, (error as Error).message);
    }
  }

  private async route(method: string, path: string, q: URLSearchParams, body: string, res: ServerResponse): Promise<void> {
    let m: RegExpExecArray | null;
    if (method === 'GET' && (m = /^\/v1\/health\/service\/([^/]+)$/.exec(path))) {
      const name = decodeURIComponent(m[1]!);
      return this.blocking(q, name, res, () => this.healthEntries(name, q));
    }
    if (method === 'GET' && (m = /^\/v1\/catalog\/service\/([^/]+)$/.exec(path))) {
      const name = decodeURIComponent(m[1]!);
      return this.blocking(q, name, res, () => this.catalogEntries(name, q));
    }
    if (method === 'GET' && path === '/v1/agent/services') {
      const out: Record<string, unknown> = {};
      for (const i of this.instances.values()) {
        if (!i.agent) continue;
        out[i.id] = { ID: i.id, Service: i.name, Tags: i.tags, Meta: i.meta, Port: i.port, Address: i.address, Weights: i.weights, EnableTagOverride: false, Datacenter: i.dc };
      }
      return json(res, 200, out);
    }
    if (method === 'PUT' && path === '/v1/agent/service/register') return this.register(body, res);
    if (method === 'PUT' && (m = /^\/v1\/agent\/service\/deregister\/([^/]+)$/.exec(path))) {
      const id = decodeURIComponent(m[1]!);
      const inst = this.instances.get(id);
      if (!inst || !inst.agent) return text(res, 404, `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
      this.deregistrations.push(id);
      this.removeService(id);
      return json(res, 200, null);
    }
    if (method === 'GET' && path === '/v1/status/leader') return json(res, 200, '127.0.0.1:8300');
    if (method === 'GET' && path === '/v1/status/peers') return json(res, 200, ['127.0.0.1:8300']);
    if (/^\/v1\/(health|catalog|agent|status)\//.test(path)) return text(res, 405, 'method not allowed');
    return text(res, 404, '404 page not found');
  }

  /**
   * A blocking query (https://developer.hashicorp.com/consul/api-docs/features/blocking): with
   * `index` at or past the current index for this result, hold until a write touches it or
   * `wait` (default 5m, at most 10m, plus up to wait/16 jitter) elapses; then answer.
   */
  private async blocking(q: URLSearchParams, name: string, res: ServerResponse, body: () => unknown[]): Promise<void> {
    const dc = q.get('dc');
    if (dc !== null && dc !== this.datacenter && ![...this.instances.values()].some((i) => i.dc === dc)) {
      return text(res, 500, `No path to datacenter`);
    }
    const rawIndex = q.get('index');
    let minIndex = 0;
    if (rawIndex !== null) {
      if (!/^\d+$/.test(rawIndex)) return text(res, 400, 'Invalid index');
      minIndex = Number(rawIndex);
    }
    let waitMs = 5 * 60_000;
    const rawWait = q.get('wait');
    if (rawWait !== null) {
      const parsed = parseGoDuration(rawWait);
      if (parsed === null) return text(res, 400, 'Invalid wait time');
      waitMs = parsed;
    }
    waitMs = Math.min(waitMs, this.maxWaitMs);
    if (minIndex > 0 && minIndex >= this.indexOf(name)) {
      const deadline = waitMs + Math.random() * (waitMs / 16);
      await new Promise<void>((resolve) => {
        const waiter: Waiter = { name, wake: () => { clearTimeout(timer); this.waiters.delete(waiter); resolve(); } };
        const timer = setTimeout(waiter.wake, deadline);
        this.waiters.add(waiter);
        res.once('close', waiter.wake);
      });
      if (res.destroyed || !this.server) return;
    }
    const out = body();
    const index = this.indexHeader ?? String(this.indexOf(name));
    res.setHeader('X-Consul-Index', index);
    res.setHeader('X-Consul-KnownLeader', 'true');
    res.setHeader('X-Consul-LastContact', '0');
    res.setHeader('X-Consul-Effective-Consistency', 'leader');
    json(res, 200, out);
  }

  private matches(i: Instance, name: string, q: URLSearchParams): boolean {
    if (i.name !== name) return false;
    if (i.dc !== (q.get('dc') ?? this.datacenter)) return false;
    for (const tag of q.getAll('tag')) if (!i.tags.includes(tag)) return false;
    return true;
  }

  private healthEntries(name: string, q: URLSearchParams): unknown[] {
    // `?passing` alone or `passing=true`: only entries whose checks are all passing (warning is
    // filtered too, as Consul's HTTP API does).
    const passing = q.has('passing') && !/^(false|0)$/i.test(q.get('passing') ?? '');
    const out: unknown[] = [];
    for (const i of this.sorted()) {
      if (!this.matches(i, name, q)) continue;
      if (passing && i.status !== 'passing') continue;
      out.push({
        Node: { ID: '', Node: i.node, Address: i.nodeAddress, Datacenter: i.dc, TaggedAddresses: { lan: i.nodeAddress, wan: i.nodeAddress }, Meta: {}, CreateIndex: 1, ModifyIndex: 1 },
        Service: { ID: i.id, Service: i.name, Tags: i.tags, Address: i.address, Meta: i.meta, Port: i.port, Weights: i.weights, EnableTagOverride: false, CreateIndex: i.createIndex, ModifyIndex: i.modifyIndex },
        Checks: [
          { Node: i.node, CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', Notes: '', Output: 'Agent alive and reachable', ServiceID: '', ServiceName: '', ServiceTags: [], Type: '', CreateIndex: 1, ModifyIndex: 1 },
          { Node: i.node, CheckID: i.checkId, Name: i.checkName, Status: i.status, Notes: '', Output: i.output, ServiceID: i.id, ServiceName: i.name, ServiceTags: i.tags, Type: i.checkType, CreateIndex: i.createIndex, ModifyIndex: i.modifyIndex },
        ],
      });
    }
    return out;
  }

  private catalogEntries(name: string, q: URLSearchParams): unknown[] {
    const out: unknown[] = [];
    for (const i of this.sorted()) {
      if (!this.matches(i, name, q)) continue;
      out.push({
        ID: '', Node: i.node, Address: i.nodeAddress, Datacenter: i.dc, TaggedAddresses: { lan: i.nodeAddress, wan: i.nodeAddress }, NodeMeta: {},
        ServiceID: i.id, ServiceName: i.name, ServiceTags: i.tags, ServiceAddress: i.address, ServicePort: i.port, ServiceMeta: i.meta,
        ServiceWeights: i.weights, ServiceEnableTagOverride: false, CreateIndex: i.createIndex, ModifyIndex: i.modifyIndex,
      });
    }
    return out;
  }

  /** Consul orders health and catalog answers by node, then service ID. */
  private sorted(): Instance[] {
    return [...this.instances.values()].sort((a, b) => (a.node === b.node ? cmp(a.id, b.id) : cmp(a.node, b.node)));
  }

  /** PUT /v1/agent/service/register: the ServiceDefinition body, one Check (or Checks). */
  private register(raw: string, res: ServerResponse): void {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw || '{}') as Record<string, unknown>;
    } catch {
      return text(res, 400, 'Request decode failed: invalid JSON');
    }
    this.registrations.push(body);
    const name = body.Name;
    if (typeof name !== 'string' || name === '') return text(res, 400, 'Missing service name');
    const id = typeof body.ID === 'string' && body.ID !== '' ? body.ID : name;
    const checks = [body.Check, ...(Array.isArray(body.Checks) ? body.Checks : [])].filter((c) => c && typeof c === 'object') as Record<string, unknown>[];
    for (const c of checks) {
      const kind = c.HTTP ? 'http' : c.TCP ? 'tcp' : c.TTL ? 'ttl' : null;
      if (kind === null) return text(res, 400, 'Invalid check: TTL or Script/Interval needed');
      if (kind !== 'ttl' && (typeof c.Interval !== 'string' || parseGoDuration(c.Interval) === null)) {
        return text(res, 400, 'Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks');
      }
    }
    const check = checks[0];
    this.addService({
      id, name,
      address: typeof body.Address === 'string' ? body.Address : '',
      port: typeof body.Port === 'number' ? body.Port : 0,
      tags: Array.isArray(body.Tags) ? body.Tags.map(String) : [],
      meta: (body.Meta && typeof body.Meta === 'object' ? body.Meta : {}) as Record<string, string>,
      // Consul starts a new check critical unless the definition gives a Status.
      status: check ? ((check.Status as CheckStatus | undefined) ?? 'critical') : 'passing',
    });
    const inst = this.instances.get(id)!;
    if (check) {
      inst.checkType = check.HTTP ? 'http' : check.TCP ? 'tcp' : 'ttl';
      inst.checkId = typeof check.CheckID === 'string' ? check.CheckID : `service:${id}`;
      inst.checkName = typeof check.Name === 'string' ? check.Name : `Service '${name}' check`;
      inst.criticalSince = inst.status === 'critical' ? Date.now() : 0;
      const after = typeof check.DeregisterCriticalServiceAfter === 'string' ? parseGoDuration(check.DeregisterCriticalServiceAfter) : null;
      inst.deregisterAfterMs = after ?? 0;
      if (this.runChecks && inst.checkType !== 'ttl') this.scheduleCheck(inst, check);
    }
    json(res, 200, null);
  }

  private scheduleCheck(inst: Instance, check: Record<string, unknown>): void {
    const interval = parseGoDuration(String(check.Interval))!;
    const timeout = typeof check.Timeout === 'string' ? parseGoDuration(check.Timeout) ?? 10_000 : 10_000;
    const run = async (): Promise<void> => {
      if (this.instances.get(inst.id) !== inst) return;
      let status: CheckStatus;
      let output: string;
      if (inst.checkType === 'http') {
        try {
          const r = await fetch(String(check.HTTP), { method: typeof check.Method === 'string' ? check.Method : 'GET', signal: AbortSignal.timeout(timeout), redirect: 'manual' });
          await r.arrayBuffer();
          // Consul: 2xx passing, 429 warning, anything else critical.
          status = r.status >= 200 && r.status < 300 ? 'passing' : r.status === 429 ? 'warning' : 'critical';
          output = `HTTP ${check.Method ?? 'GET'} ${check.HTTP}: ${r.status}`;
        } catch (error) {
          status = 'critical';
          output = `Get "${check.HTTP}": ${(error as Error).message}`;
        }
      } else {
        const [host, port] = splitHostPort(String(check.TCP));
        status = await new Promise<CheckStatus>((resolve) => {
          const s = connect({ host, port, timeout });
          s.once('connect', () => { s.destroy(); resolve('passing'); });
          s.once('error', () => resolve('critical'));
          s.once('timeout', () => { s.destroy(); resolve('critical'); });
        });
        output = `TCP connect ${check.TCP}: ${status === 'passing' ? 'Success' : 'failed'}`;
      }
      if (this.instances.get(inst.id) !== inst) return;
      this.setStatus(inst.id, status, output);
      if (inst.status === 'critical' && inst.deregisterAfterMs > 0 && Date.now() - inst.criticalSince >= inst.deregisterAfterMs) {
        this.removeService(inst.id);
        return;
      }
      inst.timer = setTimeout(() => void run(), interval);
      inst.timer.unref();
    };
    inst.timer = setTimeout(() => void run(), 0);
    inst.timer.unref();
  }

  private clearTimer(inst: Instance): void {
    if (inst.timer) clearTimeout(inst.timer);
    inst.timer = null;
  }

  private bump(): number {
    return ++this.index;
  }

  private touch(name: string, index: number): void {
    this.nameIndex.set(name, index);
    this.wake(name);
  }

  private wake(name: string | null): void {
    for (const w of [...this.waiters]) if (name === null || w.name === name) w.wake();
  }
}

function tokenOf(req: IncomingMessage, url: URL): string | null {
  const header = req.headers['x-consul-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^bearer /i.test(auth)) return auth.slice(7).trim();
  return url.searchParams.get('token');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', () => resolve(''));
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration, as Consul reads `wait` and check intervals: `100ms`, `5s`, `1m30s`. */
export function parseGoDuration(s: string): number | null {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while (re.lastIndex < s.length && (m = re.exec(s)) !== null) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === s.length && matched > 0 ? total : null;
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
