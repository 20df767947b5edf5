import type { RouteAction } from '../config/routing-types.js';
import { evaluate, NO_CONTEXT } from './rules.js';
import type { RequestFacts } from './request-facts.js';

// Responses a route gives itself: a deny (built once per route and generation, both
// connection variants) and a redirect (its Location built per request from the template).

const REASONS: Readonly<Record<number, string>> = {
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  418: "I'm a teapot",
  421: 'Misdirected Request',
  422: 'Unprocessable Content',
  425: 'Too Early',
  426: 'Upgrade Required',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? (status >= 500 ? 'Error' : 'Client Error');
}

/** A complete response with a text body (user code's direct answers use it too). */
export function simpleResponse(status: number, body: string, close: boolean, headerLines = ''): Buffer {
  const bytes = Buffer.byteLength(body);
  return Buffer.from(
    `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n${headerLines}` +
      (bytes > 0 || status >= 400 ? `content-type: text/plain; charset=utf-8\r\n` : '') +
      `content-length: ${bytes}\r\ncache-control: no-store\r\n${close ? 'connection: close\r\n' : ''}\r\n${body}`,
    'utf8',
  );
}

/** The deny response of a route: [keep-alive, close]. */
export function denyResponses(action: Extract<RouteAction, { type: 'deny' }>): [Buffer, Buffer] {
  const body = action.body ?? `${action.status} ${reasonPhrase(action.status)}\n`;
  return [simpleResponse(action.status, body, false), simpleResponse(action.status, body, true)];
}

/**
 * A redirect's response for this request: the location template, then the request's path
 * (`keep_path`, HAProxy `redirect prefix`) and its query (`keep_query`). The values come from
 * a parsed request head (no CR/LF can be in them), so no header can be injected.
 */
export function redirectResponse(action: Extract<RouteAction, { type: 'redirect' }>, v: RequestFacts, close: boolean): Buffer {
  let location = evaluate(action.location, v, NO_CONTEXT);
  if (action.keepPath) location = location.replace(/\/+$/, '') + v.path;
  if (action.keepQuery && v.query !== '') location += (location.includes('?') ? '&' : '?') + v.query;
  return simpleResponse(action.status, '', close, `location: ${location}\r\n`);
}
