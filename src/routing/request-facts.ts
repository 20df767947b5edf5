import type { ParsedAddress } from './cidr.js';

// What route matching (route.ts), templates and header rules (rules.ts) and canned answers
// (answers.ts) read of a request. RequestView (request-view.ts) implements it; the view also
// holds what they decide (its route and plan), so they depend on this contract, not on the
// view's module, and imports stay one-way: request-view -> route, rules -> request-facts.
// Positions are byte offsets in `buf`, found on first use by locatePath / locateHost.

export interface RequestFacts {
  readonly clientIp: string;
  /** The client's address, parsed once per connection; null when it is not an IP address. */
  readonly clientAddress: ParsedAddress | null;
  /** The buffer the request head was parsed from. */
  readonly buf: Buffer;
  readonly method: string;
  /** route.ts methodBit(method). */
  readonly methodBit: number;
  // Path (without query) and host positions: -1 until located.
  readonly pathStart: number;
  readonly pathEnd: number;
  readonly hostStart: number;
  readonly hostNameEnd: number;
  readonly hostEnd: number;
  /** The path has `%` or `/.`: match the normalised string (matchPath), not the bytes. */
  readonly pathNeedsNormalizing: boolean;
  locatePath(): void;
  locateHost(): void;
  readonly path: string;
  /** The path normalised for matching. */
  readonly matchPath: string;
  readonly query: string;
  readonly host: string;
  /** Index of the next header line named `lower` (lowercase bytes) from line `from`; -1: none. */
  findHeader(lower: Buffer, from: number): number;
  lineValue(i: number): string;
  lineValueIs(i: number, value: Buffer): boolean;
  /** Whether the query has parameter `name`; its value is then read by the two below. */
  findQueryParam(name: Buffer): boolean;
  queryValueIs(value: string, bytes: Buffer): boolean;
  queryValueString(): string;
  /** The request's id (sent by the client or generated); '' until asked for. */
  requestId: string;
  /** The id came with the request: forwarded as it is, no line added. */
  requestIdSent: boolean;
}
