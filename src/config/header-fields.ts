// What config rules (routes-schema.ts) and user code at run time (routing/header-edits.ts) may
// name when they set or remove a header: one definition, so a rule the config accepts is one
// the runtime accepts, and the other way round.

/** A field name: an RFC 9110 §5.1 (§5.6.2) token. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Fields the proxy itself owns: message framing and hop-by-hop connection management (RFC 9112
 * §6, RFC 9110 §7.6.1). A rule changing them could make the proxy and the peer disagree on
 * where a message ends, so neither rules nor user code may touch them.
 */
export const PROXY_FIELDS: ReadonlySet<string> = new Set([
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
]);
