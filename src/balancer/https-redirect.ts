import type { FrontendConfig } from '../config/types.js';
import type { HttpHead } from './http-head.js';

// `redirect_https` on a plain HTTP frontend: every request is answered with a redirect to the
// same host and target over https (HAProxy `http-request redirect scheme https`; nginx
// `return 301 https://$host$request_uri`). The request is never forwarded.

const REASONS: Record<number, string> = { 301: 'Moved Permanently', 302: 'Found', 307: 'Temporary Redirect', 308: 'Permanent Redirect' };
/** A Host value we are willing to echo into Location: a reg-name or IP literal, optional port. */
const HOST = /^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The complete redirect response, or null when the request has no usable Host. */
export function httpsRedirect(head: HttpHead, buf: Buffer, redirect: NonNullable<FrontendConfig['redirectHttps']>, close: boolean): Buffer | null {
  let target = head.target;
  let host = head.host(buf);
  if (!target.startsWith('/')) {
    // absolute-form (RFC 9112 §3.2.2): its authority is the host; asterisk-form has no target.
    const m = /^https?:\/\/([^/?#]+)(.*)$/i.exec(target);
    if (m === null) return null;
    host = m[1]!;
    target = m[2] === '' ? '/' : m[2]!;
  }
  if (!HOST.test(host)) return null;
  // The port the client used for http is not the one for https.
  const bare = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  const location = `https://${bare}${redirect.port !== null && redirect.port !== 443 ? `:${redirect.port}` : ''}${target}`;
  return Buffer.from(
    `HTTP/1.1 ${redirect.status} ${REASONS[redirect.status]}\r\nlocation: ${location}\r\ncontent-length: 0\r\ncache-control: no-store\r\n${close ? 'connection: close\r\n' : ''}\r\n`,
    'latin1',
  );
}
