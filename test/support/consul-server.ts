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
// Tests drive it: addService / removeService / setStatus / flap, failNext (errors), setDelay
// (slow answers), stop / restart on the same port (outage), resetIndex (index goes backwards),
// setIndexHeader (a broken X-Consul-Index), and read `requests` and `registrations`. The JSON
// shapes, parameter parsing and the agent's check runs are in consul-wire.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  agentService,
  blockingParams,
  catalogEntry,
  cmp,
  healthEntry,
  json,
  newInstance,
  parseGoDuration,
  parseRegistration,
  readBody,
  runCheck,
  sleep,
  text,
  tokenOf,
  type AddServiceInput,
  type CheckStatus,
  type Instance,
} from './consul-wire.js';

export { parseGoDuration, type AddServiceInput, type CheckStatus } from './consul-wire.js';

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

interface Waiter {
  readonly name: string | null;
  readonly wake: () => void; // a closure: passed around unbound
}

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
    const inst = newInstance(input, index, old, this.datacenter);
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

  /**
   * Flap: toggle the instance's check between critical and passing `changes` times, one change
   * every `everyMs` (starting with the opposite of its status now). Resolves after the last one.
   */
  async flap(id: string, changes: number, everyMs: number): Promise<void> {
    for (let i = 0; i < changes; i++) {
      const inst = this.instances.get(id);
      if (!inst) throw new Error(`no service ${id}`);
      this.setStatus(id, inst.status === 'passing' ? 'critical' : 'passing', `flap ${i + 1}`);
      if (i + 1 < changes) await sleep(everyMs);
    }
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
    const server = createServer((req, res) => {
      void this.handle(req, res);
    });
    server.keepAliveTimeout = 60_000;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
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
        out[i.id] = agentService(i);
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
    const params = blockingParams(q, this.maxWaitMs);
    if ('error' in params) return text(res, 400, params.error);
    const { minIndex, waitMs } = params;
    if (minIndex > 0 && minIndex >= this.indexOf(name)) {
      const deadline = waitMs + Math.random() * (waitMs / 16);
      await new Promise<void>((resolve) => {
        const waiter: Waiter = {
          name,
          wake: () => {
            clearTimeout(timer);
            this.waiters.delete(waiter);
            resolve();
          },
        };
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
      out.push(healthEntry(i));
    }
    return out;
  }

  private catalogEntries(name: string, q: URLSearchParams): unknown[] {
    const out: unknown[] = [];
    for (const i of this.sorted()) {
      if (!this.matches(i, name, q)) continue;
      out.push(catalogEntry(i));
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
    const parsed = parseRegistration(body);
    if ('error' in parsed) return text(res, 400, parsed.error);
    const { service, check } = parsed;
    this.addService(service);
    const inst = this.instances.get(service.id)!;
    if (check) {
      inst.checkType = check.HTTP ? 'http' : check.TCP ? 'tcp' : 'ttl';
      inst.checkId = typeof check.CheckID === 'string' ? check.CheckID : `service:${service.id}`;
      inst.checkName = typeof check.Name === 'string' ? check.Name : `Service '${service.name}' check`;
      inst.criticalSince = inst.status === 'critical' ? Date.now() : 0;
      const after = typeof check.DeregisterCriticalServiceAfter === 'string' ? parseGoDuration(check.DeregisterCriticalServiceAfter) : null;
      inst.deregisterAfterMs = after ?? 0;
      if (this.runChecks && inst.checkType !== 'ttl') this.scheduleCheck(inst, check);
    }
    json(res, 200, null);
  }

  private scheduleCheck(inst: Instance, check: Record<string, unknown>): void {
    const interval = parseGoDuration(String(check.Interval))!;
    const timeout = typeof check.Timeout === 'string' ? (parseGoDuration(check.Timeout) ?? 10_000) : 10_000;
    const run = async (): Promise<void> => {
      if (this.instances.get(inst.id) !== inst) return;
      const { status, output } = await runCheck(inst.checkType, check, timeout);
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
