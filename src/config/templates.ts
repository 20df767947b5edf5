// Header-rule values and redirect locations are small templates: literal text with request
// values filled in per request (`${client_ip}`, `${host}`, `${path}`...) and environment
// values filled in once, when the config is loaded (`${env:NAME}`). Parsed here, at load, so
// that an unknown variable or an unset environment variable is a config error at its key path;
// the runtime only concatenates.

/** Values a template may read from the exchange. */
export const TEMPLATE_VARS = ['client_ip', 'host', 'path', 'query', 'method', 'server', 'backend', 'request_id'] as const;
export type TemplateVar = (typeof TEMPLATE_VARS)[number];

/** Literal text, or a value read per exchange. */
export type TemplatePart = string | { readonly var: TemplateVar };
export type Template = readonly TemplatePart[];

const REFERENCE = /\$\{([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const VARS: ReadonlySet<string> = new Set(TEMPLATE_VARS);

/**
 * Keys whose values are templates: the values under request_headers / response_headers
 * (set, add) and a redirect's location. Elsewhere `${NAME}` is an environment reference.
 */
export function isTemplatePath(path: readonly (string | number)[]): boolean {
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if ((seg === 'request_headers' || seg === 'response_headers') && (path[i + 1] === 'set' || path[i + 1] === 'add')) return true;
  }
  return path.length >= 2 && path[path.length - 1] === 'location' && path[path.length - 2] === 'redirect';
}

/** A reference the template engine fills in (left alone by the environment substitution). */
export function isTemplateReference(inner: string): boolean {
  return VARS.has(inner) || inner.startsWith('env:');
}

/** Parse `text`; an error message when a reference is unknown or its environment variable unset. */
export function parseTemplate(text: string, env: NodeJS.ProcessEnv = process.env): Template | string {
  const parts: TemplatePart[] = [];
  let literal = '';
  let last = 0;
  for (const m of text.matchAll(REFERENCE)) {
    literal += text.slice(last, m.index);
    last = m.index + m[0].length;
    const inner = m[1]!;
    if (inner.startsWith('env:')) {
      const name = inner.slice(4);
      if (!ENV_NAME.test(name)) return `invalid reference \${${inner}}: expected \${env:NAME}`;
      const value = env[name];
      if (value === undefined) return `environment variable ${name} is not set`;
      literal += value;
    } else if (VARS.has(inner)) {
      if (literal !== '') parts.push(literal);
      literal = '';
      parts.push({ var: inner as TemplateVar });
    } else {
      return `unknown template value \${${inner}}: expected one of ${TEMPLATE_VARS.map((v) => `\${${v}}`).join(', ')} or \${env:NAME}`;
    }
  }
  literal += text.slice(last);
  if (literal.includes('${')) return `unclosed reference in "${text}"`;
  if (literal !== '' || parts.length === 0) parts.push(literal);
  return parts;
}

/** Back to text, for `switchyard check` and error messages. */
export function formatTemplate(t: Template): string {
  return t.map((p) => (typeof p === 'string' ? p : `\${${p.var}}`)).join('');
}
