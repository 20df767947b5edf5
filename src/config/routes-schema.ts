import { isIP } from 'node:net';
import { z } from 'zod';
import type { HeaderRulesConfig, PathRewriteConfig, RequestIdConfig, RouteAction, RouteConfig, RouteMatchConfig, ValueMatch } from './routing-types.js';
import { parseTemplate, type Template } from './templates.js';
import { normalizeRateLimit, rateLimitSchema } from './rate-limit-schema.js';
import { HEADER_NAME, PROXY_FIELDS } from './header-fields.js';

// The schema of an HTTP frontend's `routes:`, `request_headers:` / `response_headers:` (also on
// backends and routes), `path_rewrite:` and `request_id:`. Values are checked and converted
// where they are written (a regex is compiled here, a template parsed, a CIDR read), so that
// every error names its own key path: `frontends.web.routes[2].match.path_regex: ...`.

type Ctx = z.core.$RefinementCtx;

function fail(ctx: Ctx, message: string, input: unknown, path?: PropertyKey[]): never {
  ctx.issues.push(path === undefined ? { code: 'custom', message, input } : { code: 'custom', message, input, path });
  return z.NEVER;
}

const PROXY_FIELD_MESSAGE = 'framing and connection fields are managed by the proxy and cannot be changed by rules';

/** A host as routes match it: a name, `*.suffix`, an IPv4/[IPv6] literal, each with an optional :port. */
const HOST_PATTERN = /^(?:\*\.)?(?:[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*(?::\d{1,5})?$|^\[[0-9a-f:.]+\](?::\d{1,5})?$/;

/** A string that compiles as a JavaScript regular expression. */
const regexSource = z
  .string()
  .min(1)
  .transform((v, ctx): string => {
    try {
      new RegExp(v);
      return v;
    } catch (error) {
      return fail(ctx, `invalid regular expression: ${(error as Error).message.replace(/^Invalid regular expression: /, '')}`, v);
    }
  });

/** A template string (numbers and booleans written unquoted are their text). */
const template = z.union([z.string(), z.number(), z.boolean()]).transform((v, ctx): Template => {
  const parsed = parseTemplate(String(v));
  return typeof parsed === 'string' ? fail(ctx, parsed, v) : parsed;
});

const headerName = z
  .string()
  .regex(HEADER_NAME, { error: 'expected a header name (letters, digits, -)' })
  .transform((v) => v.toLowerCase());

/** One value or a list of them (a single value is checked as item [0]). */
const oneOrMany = <T extends z.ZodType>(item: T) => z.preprocess((v) => (Array.isArray(v) || v === undefined ? v : [v]), z.array(item).min(1));

const path = z.string().startsWith('/', { error: 'expected a path starting with /' });

const cidr = z.string().transform((v, ctx): string => {
  const text = v.trim();
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return fail(ctx, 'expected an address or a CIDR block (10.0.0.0/8, ::1/128)', v);
  if (slash !== -1) {
    const bits = text.slice(slash + 1);
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return fail(ctx, `expected a prefix length from 0 to ${max}`, v);
  }
  return text;
});

/** `name: true` present, `name: false` absent, `name: "v"` equals, `name: { regex: "..." }`. */
function valueMatches(lowerNames: boolean) {
  return z
    .record(
      z.string().min(1),
      z.union([z.boolean(), z.string(), z.number().transform(String), z.strictObject({ regex: regexSource })], {
        error: 'expected true (present), false (absent), a value, or { regex: "..." }',
      }),
    )
    .transform((rec, ctx): ValueMatch[] => {
      const out: ValueMatch[] = [];
      for (const [raw, v] of Object.entries(rec)) {
        if (lowerNames && !HEADER_NAME.test(raw)) {
          fail(ctx, 'expected a header name (letters, digits, -)', raw, [raw]);
          continue;
        }
        const name = lowerNames ? raw.toLowerCase() : raw;
        if (v === true) out.push({ name, kind: 'present' });
        else if (v === false) out.push({ name, kind: 'absent' });
        else if (typeof v === 'string') out.push({ name, kind: 'equals', value: v });
        else out.push({ name, kind: 'regex', value: v.regex });
      }
      return out;
    });
}

const matchSchema = z
  .preprocess(
    (v) => (v === null || v === undefined ? {} : v),
    z
      .strictObject({
        host: oneOrMany(
          z.string().transform((v, ctx): string => {
            const h = v.trim().toLowerCase();
            return HOST_PATTERN.test(h) ? h : fail(ctx, 'expected a host name (api.example.com), a wildcard (*.example.com), optionally with :port', v);
          }),
        ).optional(),
        path: path.optional(),
        path_prefix: path.optional(),
        path_regex: regexSource.optional(),
        method: oneOrMany(
          z
            .string()
            .regex(/^[A-Za-z]+$/, { error: 'expected an HTTP method like GET' })
            .transform((m) => m.toUpperCase()),
        ).optional(),
        header: valueMatches(true).optional(),
        query: valueMatches(false).optional(),
        source: oneOrMany(cidr).optional(),
        not_source: oneOrMany(cidr).optional(),
      })
      .superRefine((m, ctx) => {
        const paths = (['path', 'path_prefix', 'path_regex'] as const).filter((k) => m[k] !== undefined);
        if (paths.length > 1) fail(ctx, `use one of path, path_prefix and path_regex (found ${paths.join(', ')})`, m, [paths[1]!]);
      }),
  )
  .transform((m): RouteMatchConfig => ({
    hosts: m.host ?? null,
    path: m.path ?? null,
    pathPrefix: m.path_prefix ?? null,
    pathRegex: m.path_regex ?? null,
    methods: m.method ?? null,
    headers: m.header ?? [],
    query: m.query ?? [],
    source: m.source ?? null,
    notSource: m.not_source ?? null,
  }));

const REDIRECT_STATUS = [301, 302, 303, 307, 308] as const;

const redirectSchema = z.strictObject({
  status: z
    .union(
      REDIRECT_STATUS.map((s) => z.literal(s)),
      { error: 'expected a redirect status: 301, 302, 303, 307 or 308' },
    )
    .default(302),
  location: template,
  keep_path: z.boolean().default(false),
  keep_query: z.boolean().default(false),
});

const denySchema = z.preprocess(
  (v) => (v === true || v === null ? {} : v),
  z.strictObject({
    status: z.number().int().min(400, { error: 'expected a status from 400 to 599' }).max(599, { error: 'expected a status from 400 to 599' }).default(403),
    body: z.string().optional(),
  }),
);

export const pathRewriteSchema = z
  .strictObject({
    strip_prefix: path.optional(),
    regex: regexSource.optional(),
    replace: z
      .string()
      .regex(/^[!$-~]*$/, { error: 'expected visible characters without spaces or # (a path)' })
      .optional(),
  })
  .superRefine((p, ctx) => {
    if ((p.strip_prefix === undefined) === (p.regex === undefined))
      fail(ctx, 'expected one of { strip_prefix: /prefix } or { regex: "...", replace: "..." }', p);
    else if (p.regex !== undefined && p.replace === undefined) fail(ctx, 'required with regex', p, ['replace']);
    else if (p.strip_prefix !== undefined && p.replace !== undefined) fail(ctx, 'replace goes with regex, not strip_prefix', p, ['replace']);
  })
  .transform((p): PathRewriteConfig =>
    p.strip_prefix !== undefined
      ? { type: 'strip_prefix', prefix: p.strip_prefix.length > 1 ? p.strip_prefix.replace(/\/+$/, '') : p.strip_prefix }
      : { type: 'regex', regex: p.regex!, replace: p.replace! },
  );

/** `request_headers` / `response_headers`: set, add, remove. */
export const headerRulesSchema = z.preprocess(
  (v) => (v === null ? undefined : v),
  z
    .strictObject({
      set: z.record(z.string(), template).optional(),
      add: z.record(z.string(), oneOrMany(template)).optional(),
      remove: oneOrMany(headerName).optional(),
    })
    .transform((r, ctx): HeaderRulesConfig => {
      const names = (rec: Record<string, unknown> | undefined, key: string): string[] =>
        Object.keys(rec ?? {}).map((n) => {
          if (!HEADER_NAME.test(n)) fail(ctx, 'expected a header name (letters, digits, -)', n, [key, n]);
          else if (PROXY_FIELDS.has(n.toLowerCase())) fail(ctx, PROXY_FIELD_MESSAGE, n, [key, n]);
          return n.toLowerCase();
        });
      (r.remove ?? []).forEach((n, i) => {
        if (PROXY_FIELDS.has(n) || n === 'host') fail(ctx, n === 'host' ? 'Host cannot be removed (set it instead)' : PROXY_FIELD_MESSAGE, n, ['remove', i]);
      });
      const setNames = names(r.set, 'set');
      const addNames = names(r.add, 'add');
      return {
        set: setNames.map((name, i) => ({ name, value: Object.values(r.set!)[i]! })),
        add: addNames.flatMap((name, i) => Object.values(r.add!)[i]!.map((value) => ({ name, value }))),
        remove: r.remove ?? [],
      };
    })
    .optional(),
);

export const requestIdSchema = z.preprocess(
  (v) => (v === true ? {} : v === false || v === null ? undefined : v),
  z
    .strictObject({
      header: z.string().regex(HEADER_NAME, { error: 'expected a header name (letters, digits, -)' }).default('X-Request-Id'),
      response: z.boolean().default(false),
    })
    .transform((r): RequestIdConfig => ({ header: r.header, response: r.response }))
    .optional(),
);

const routeSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/, { error: 'expected a route name (letters, digits, - _ . :)' })
      .optional(),
    match: matchSchema,
    backend: z.string().min(1).optional(),
    redirect: redirectSchema.optional(),
    deny: denySchema.optional(),
    path_rewrite: pathRewriteSchema.optional(),
    request_headers: headerRulesSchema,
    response_headers: headerRulesSchema,
    rate_limit: rateLimitSchema,
  })
  .superRefine((r, ctx) => {
    const actions = (['backend', 'redirect', 'deny'] as const).filter((k) => r[k] !== undefined);
    if (actions.length === 0) fail(ctx, 'a route needs one action: backend, redirect or deny', r);
    else if (actions.length > 1) fail(ctx, `a route has one action: backend, redirect or deny (found ${actions.join(', ')})`, r, [actions[1]!]);
    if (r.path_rewrite !== undefined && r.backend === undefined) fail(ctx, 'path_rewrite applies to routes with a backend', r, ['path_rewrite']);
  });

export type RawRoute = z.output<typeof routeSchema>;

/** Normalised routes; unnamed ones are named by their place (`routes[2]`). */
export const routesSchema = z.preprocess((v) => (v === null ? [] : v), z.array(routeSchema).default([]));

export function normalizeRoutes(raw: readonly RawRoute[]): RouteConfig[] {
  return raw.map((r, i): RouteConfig => {
    let action: RouteAction;
    if (r.backend !== undefined) action = { type: 'backend', backend: r.backend };
    else if (r.redirect !== undefined)
      action = { type: 'redirect', status: r.redirect.status, location: r.redirect.location, keepPath: r.redirect.keep_path, keepQuery: r.redirect.keep_query };
    else action = { type: 'deny', status: r.deny!.status, body: r.deny!.body ?? null };
    return {
      name: r.name ?? `routes[${i}]`,
      match: r.match,
      action,
      pathRewrite: r.path_rewrite ?? null,
      requestHeaders: r.request_headers ?? null,
      responseHeaders: r.response_headers ?? null,
      rateLimit: normalizeRateLimit(r.rate_limit),
    };
  });
}
