import { EventEmitter } from 'node:events';
import Consul from 'consul';
import type { ConsulConfig } from '../config/types.js';

// The `consul` npm client (v2), built from our ConsulConfig, and the two things its typings do not
// say: how to get the response (for X-Consul-Index) and how to abort a request.
//
// consul@2 runs on papi. A request option `ctx` that is an EventEmitter makes papi abort the
// request when the emitter emits 'cancel'; with `ctx.includeResponse = true` the client resolves
// `[res, body]` instead of `body` (lib/utils.js `responseResult`), and `res.headers` carries
// `x-consul-index`. That is what consul's own `Watch` does; we do not use `Watch` itself because
// it swallows the index-0 case into an error, treats any answer as a change and has no jitter.

export type ConsulClient = InstanceType<typeof Consul>;

/** Raw HTTP response papi hands back (an http.IncomingMessage with a decoded body). */
export interface ConsulResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** What a failed consul/papi call throws: papi sets `statusCode` and `response` on HTTP errors. */
export interface ConsulError extends Error {
  statusCode?: number;
  response?: ConsulResponse;
  code?: string;
}

/** A request context: `cancel()` aborts the request in flight (papi listens for 'cancel'). */
export class RequestContext extends EventEmitter {
  readonly includeResponse = true;
  cancel(): void {
    this.emit('cancel');
  }
}

/** A client for `config.address` (http[s]://host:port[/prefix]); the token goes per request. */
export function createConsulClient(config: ConsulConfig): ConsulClient {
  const base = config.address.replace(/\/+$/, '');
  const options: ConstructorParameters<typeof Consul>[0] & { baseUrl: string } = { baseUrl: `${base}/v1` };
  return new Consul(options);
}

/** A short, stable description of a failure for logs: `status 503: No cluster leader`, `ECONNREFUSED`. */
export function describeError(error: unknown): string {
  const e = error as ConsulError;
  const status = e.statusCode ?? e.response?.statusCode;
  if (status !== undefined) return `status ${status}: ${e.message}`;
  if (e.code) return `${e.code}${e.message && !e.message.includes(e.code) ? `: ${e.message}` : ''}`;
  return e.message ?? String(error);
}

/** Go duration string for Consul (`wait=`, check intervals): 100ms, 30s, 1m. */
export function goDuration(ms: number): string {
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms >= 1000) return `${ms / 1000}s`;
  return `${Math.max(1, Math.round(ms))}ms`;
}
