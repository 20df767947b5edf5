// Canned responses the balancer answers with itself. Each is built once per status, backend,
// limit and close as a Buffer and cached: an error path costs a lookup (and its short key
// string), not a response to format. Each has a short body naming the backend (the contract).

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  414: 'URI Too Long',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

const DETAILS: Record<number, string> = {
  429: 'too many requests from this address',
  400: 'malformed or ambiguous request',
  408: 'request not received in time',
  414: 'request line too long',
  431: 'request header fields too large',
  500: 'internal error',
  501: 'not implemented',
  502: 'no server answered',
  503: 'no server is available',
  504: 'server timeout',
  505: 'HTTP version not supported',
};

const cache = new Map<string, Buffer>();

/**
 * A complete response: `502 Bad Gateway` with body `502 Bad Gateway: no server answered (backend api)`.
 * `close` adds `Connection: close` (every error on a broken or rejected request closes).
 * `limit`: an overload limit refused the request (docs/overload.md): named in `x-switchyard-limit`
 * and the body. `retryAfter` (seconds, 429): the `Retry-After` field (RFC 9110 §10.2.3).
 */
export function cannedResponse(status: number, backend: string | null, close: boolean, limit = '', retryAfter = 0): Buffer {
  const key = `${status}\0${backend ?? ''}\0${close ? 1 : 0}\0${limit}\0${retryAfter}`;
  let buf = cache.get(key);
  if (buf === undefined) {
    const reason = REASONS[status] ?? 'Error';
    const detail = limit === '' ? (DETAILS[status] ?? 'error') : `limit ${limit} reached`;
    const body = `${status} ${reason}: ${detail}${backend ? ` (backend ${backend})` : ''}\n`;
    buf = Buffer.from(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `cache-control: no-store\r\n${limit === '' ? '' : `x-switchyard-limit: ${limit}\r\n`}${retryAfter > 0 ? `retry-after: ${retryAfter}\r\n` : ''}` +
        `${close ? 'connection: close\r\n' : ''}\r\n${body}`,
      'latin1',
    );
    if (cache.size < 10000) cache.set(key, buf);
  }
  return buf;
}
