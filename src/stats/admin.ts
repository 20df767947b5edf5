import type { IncomingMessage } from 'node:http';
import type { StatsHost } from '../host.js';
import { adminStateError, isAdminState, setAdminState } from '../model/admin-state.js';
import type { Logger } from '../log.js';

// The admin API (contract: needs auth, changes nothing otherwise): server admin state, a
// backend's strategy, reload. Handlers take the parsed request and answer a status and a JSON
// body; the listener has already checked the credentials.

export interface Reply {
  status: number;
  body: unknown;
}

const MAX_BODY = 64 * 1024;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The request body as JSON (an empty body is `{}`); 400 on bad JSON, 413 past 64 KiB. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body: invalid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'body: expected a JSON object');
  return value as Record<string, unknown>;
}

function backendOf(host: StatsHost, name: string) {
  const backend = host.runtime().backends.get(name);
  if (backend === undefined) throw new HttpError(404, `unknown backend "${name}"`);
  return backend;
}

/** POST /api/backends/NAME/servers/SERVER/state {"state":"ready"|"drain"|"maint"} */
export function setServerState(host: StatsHost, log: Logger, backendName: string, serverName: string, body: Record<string, unknown>, user: string): Reply {
  const backend = backendOf(host, backendName);
  const server = backend.serverByName(serverName);
  if (server === undefined) throw new HttpError(404, `unknown server "${serverName}" in backend "${backendName}"`);
  const state = body.state;
  if (!isAdminState(state)) throw new HttpError(400, adminStateError(state));
  const changed = setAdminState(server, state);
  log.info({ backend: backend.name, server: server.name, admin: state, user }, `admin: ${backend.name}/${server.name} set to ${state}`);
  return { status: 200, body: { backend: backend.name, server: server.name, admin: server.admin, state: server.state, changed } };
}

/** PUT /api/backends/NAME/strategy {"strategy":"least-connections"} */
export async function setStrategy(host: StatsHost, log: Logger, backendName: string, body: Record<string, unknown>, user: string): Promise<Reply> {
  const backend = backendOf(host, backendName);
  const strategy = body.strategy;
  if (typeof strategy !== 'string' || strategy.trim() === '') throw new HttpError(400, 'strategy: expected a strategy name');
  try {
    await host.setStrategy(backend.name, strategy);
  } catch (error) {
    throw new HttpError(400, `strategy: ${(error as Error).message}`);
  }
  log.info({ backend: backend.name, strategy, user }, `admin: ${backend.name} strategy set to ${strategy}`);
  return { status: 200, body: { backend: backend.name, strategy: backend.strategyName } };
}

/** POST /api/reload: 200 with the ReloadResult, 422 with it (and its errors) when rejected. */
export async function reload(host: StatsHost, log: Logger, user: string): Promise<Reply> {
  const result = await host.reload();
  log.info({ ok: result.ok, generation: result.generation, user }, 'admin: reload requested');
  return { status: result.ok ? 200 : 422, body: result };
}
