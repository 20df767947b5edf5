// The wire side of the Consul test server (consul-server.ts): the JSON shapes Consul answers
// with (https://developer.hashicorp.com/consul/api-docs/health, sample response of
// /health/service/:service; /catalog/service/:service; /agent/services), the agent's HTTP/TCP
// check as Consul runs it, and small HTTP helpers. Pure functions over one instance.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';

export type CheckStatus = 'passing' | 'warning' | 'critical';

/** What addService takes (and a registration turns into). */
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

/** One service instance as the test server holds it. */
export interface Instance {
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

const AGENT_NODE = 'node1';
const AGENT_ADDRESS = '127.0.0.1';

/** An instance from addService input; `old` (same ID) keeps its CreateIndex. */
export function newInstance(input: AddServiceInput, index: number, old: Instance | undefined, datacenter: string): Instance {
  return {
    id: input.id,
    name: input.name,
    address: input.address ?? '',
    port: input.port,
    tags: [...(input.tags ?? [])],
    meta: { ...(input.meta ?? {}) },
    weights: input.weights ?? { Passing: 1, Warning: 1 },
    node: input.node ?? AGENT_NODE,
    nodeAddress: input.nodeAddress ?? AGENT_ADDRESS,
    dc: input.dc ?? datacenter,
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
}

/**
 * A blocking query's `index` and `wait` (https://developer.hashicorp.com/consul/api-docs/features/blocking):
 * `index` a decimal integer (0 or absent: no blocking), `wait` a Go duration (`10s`, `5m`),
 * 5 minutes by default, capped (Consul: 10 minutes).
 */
export function blockingParams(q: URLSearchParams, maxWaitMs: number): { minIndex: number; waitMs: number } | { error: string } {
  const rawIndex = q.get('index');
  let minIndex = 0;
  if (rawIndex !== null) {
    if (!/^\d+$/.test(rawIndex)) return { error: 'Invalid index' };
    minIndex = Number(rawIndex);
  }
  let waitMs = 5 * 60_000;
  const rawWait = q.get('wait');
  if (rawWait !== null) {
    const parsed = parseGoDuration(rawWait);
    if (parsed === null) return { error: 'Invalid wait time' };
    waitMs = parsed;
  }
  return { minIndex, waitMs: Math.min(waitMs, maxWaitMs) };
}

export function healthEntry(i: Instance): unknown {
  return {
    Node: {
      ID: '',
      Node: i.node,
      Address: i.nodeAddress,
      Datacenter: i.dc,
      TaggedAddresses: { lan: i.nodeAddress, wan: i.nodeAddress },
      Meta: {},
      CreateIndex: 1,
      ModifyIndex: 1,
    },
    Service: {
      ID: i.id,
      Service: i.name,
      Tags: i.tags,
      Address: i.address,
      Meta: i.meta,
      Port: i.port,
      Weights: i.weights,
      EnableTagOverride: false,
      CreateIndex: i.createIndex,
      ModifyIndex: i.modifyIndex,
    },
    Checks: [
      {
        Node: i.node,
        CheckID: 'serfHealth',
        Name: 'Serf Health Status',
        Status: 'passing',
        Notes: '',
        Output: 'Agent alive and reachable',
        ServiceID: '',
        ServiceName: '',
        ServiceTags: [],
        Type: '',
        CreateIndex: 1,
        ModifyIndex: 1,
      },
      {
        Node: i.node,
        CheckID: i.checkId,
        Name: i.checkName,
        Status: i.status,
        Notes: '',
        Output: i.output,
        ServiceID: i.id,
        ServiceName: i.name,
        ServiceTags: i.tags,
        Type: i.checkType,
        CreateIndex: i.createIndex,
        ModifyIndex: i.modifyIndex,
      },
    ],
  };
}

export function catalogEntry(i: Instance): unknown {
  return {
    ID: '',
    Node: i.node,
    Address: i.nodeAddress,
    Datacenter: i.dc,
    TaggedAddresses: { lan: i.nodeAddress, wan: i.nodeAddress },
    NodeMeta: {},
    ServiceID: i.id,
    ServiceName: i.name,
    ServiceTags: i.tags,
    ServiceAddress: i.address,
    ServicePort: i.port,
    ServiceMeta: i.meta,
    ServiceWeights: i.weights,
    ServiceEnableTagOverride: false,
    CreateIndex: i.createIndex,
    ModifyIndex: i.modifyIndex,
  };
}

export function agentService(i: Instance): unknown {
  return {
    ID: i.id,
    Service: i.name,
    Tags: i.tags,
    Meta: i.meta,
    Port: i.port,
    Address: i.address,
    Weights: i.weights,
    EnableTagOverride: false,
    Datacenter: i.dc,
  };
}

/**
 * A registration body (Consul's ServiceDefinition as JSON) as addService input, checked as the
 * agent checks it: Name required, every check HTTP, TCP or TTL, HTTP and TCP with an Interval.
 */
export function parseRegistration(body: Record<string, unknown>): { service: AddServiceInput; check: Record<string, unknown> | undefined } | { error: string } {
  const name = body.Name;
  if (typeof name !== 'string' || name === '') return { error: 'Missing service name' };
  const id = typeof body.ID === 'string' && body.ID !== '' ? body.ID : name;
  const checks = [body.Check, ...(Array.isArray(body.Checks) ? body.Checks : [])].filter((c) => c && typeof c === 'object') as Record<string, unknown>[];
  for (const c of checks) {
    const kind = c.HTTP ? 'http' : c.TCP ? 'tcp' : c.TTL ? 'ttl' : null;
    if (kind === null) return { error: 'Invalid check: TTL or Script/Interval needed' };
    if (kind !== 'ttl' && (typeof c.Interval !== 'string' || parseGoDuration(c.Interval) === null)) {
      return { error: 'Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks' };
    }
  }
  const check = checks[0];
  const service: AddServiceInput = {
    id,
    name,
    address: typeof body.Address === 'string' ? body.Address : '',
    port: typeof body.Port === 'number' ? body.Port : 0,
    tags: Array.isArray(body.Tags) ? body.Tags.map(String) : [],
    meta: (body.Meta && typeof body.Meta === 'object' ? body.Meta : {}) as Record<string, string>,
    ...(isWeights(body.Weights) ? { weights: body.Weights } : {}),
    // Consul starts a new check critical unless the definition gives a Status.
    status: check ? ((check.Status as CheckStatus | undefined) ?? 'critical') : 'passing',
  };
  return { service, check };
}

/** One run of an agent check (HTTP: 2xx passing, 429 warning, else critical; TCP: connect). */
export async function runCheck(kind: string, check: Record<string, unknown>, timeout: number): Promise<{ status: CheckStatus; output: string }> {
  if (kind === 'http') {
    try {
      const method = typeof check.Method === 'string' ? check.Method : 'GET';
      const r = await fetch(String(check.HTTP), { method, signal: AbortSignal.timeout(timeout), redirect: 'manual' });
      await r.arrayBuffer();
      const status: CheckStatus = r.status >= 200 && r.status < 300 ? 'passing' : r.status === 429 ? 'warning' : 'critical';
      return { status, output: `HTTP ${method} ${String(check.HTTP)}: ${r.status}` };
    } catch (error) {
      return { status: 'critical', output: `Get "${String(check.HTTP)}": ${(error as Error).message}` };
    }
  }
  const [host, port] = splitHostPort(String(check.TCP));
  const status = await new Promise<CheckStatus>((resolve) => {
    const s = connect({ host, port, timeout });
    s.once('connect', () => {
      s.destroy();
      resolve('passing');
    });
    s.once('error', () => resolve('critical'));
    s.once('timeout', () => {
      s.destroy();
      resolve('critical');
    });
  });
  return { status, output: `TCP connect ${String(check.TCP)}: ${status === 'passing' ? 'Success' : 'failed'}` };
}

export function tokenOf(req: IncomingMessage, url: URL): string | null {
  const header = req.headers['x-consul-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^bearer /i.test(auth)) return auth.slice(7).trim();
  return url.searchParams.get('token');
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', () => resolve(''));
  });
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

export function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

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

export function isWeights(v: unknown): v is { Passing: number; Warning: number } {
  const w = v as { Passing?: unknown; Warning?: unknown } | null;
  return typeof w === 'object' && w !== null && typeof w.Passing === 'number' && typeof w.Warning === 'number';
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
