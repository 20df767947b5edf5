// `${NAME}` and `${NAME:-default}` in config values, replaced from the environment (as in
// docker-compose and the shell). `$${` writes a literal `${`. An unset variable without a
// default is an error the loader reports at the value's key path; `:-` also applies the
// default when the variable is set but empty, as the shell does.

const REFERENCE = /\$\$\{|\$\{([^}]*)\}/g;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface Substitution {
  readonly value: string;
  /** Variables referenced without a default that are not set. */
  readonly missing: readonly string[];
  /** References that are not `${NAME}` / `${NAME:-default}` (e.g. `${}` or `${1X}`), verbatim. */
  readonly malformed: readonly string[];
}

/** Cheap pre-check so that only values that mention `${` pay for a substitution. */
export function hasReference(text: string): boolean {
  return text.includes('${');
}

/**
 * `keep(inner)` true: the reference is left verbatim (a routing template value such as
 * `${client_ip}`, filled in per request; see templates.ts).
 */
export function substituteEnv(text: string, env: NodeJS.ProcessEnv = process.env, keep: ((inner: string) => boolean) | null = null): Substitution {
  const missing: string[] = [];
  const malformed: string[] = [];
  const value = text.replace(REFERENCE, (whole: string, inner: string | undefined) => {
    if (inner === undefined) return '${'; // `$${` escape
    if (keep !== null && keep(inner)) return whole;
    const sep = inner.indexOf(':-');
    const name = sep === -1 ? inner : inner.slice(0, sep);
    if (!NAME.test(name)) {
      malformed.push(whole);
      return whole;
    }
    const set = env[name];
    if (sep !== -1) return set === undefined || set === '' ? inner.slice(sep + 2) : set;
    if (set === undefined) {
      missing.push(name);
      return '';
    }
    return set;
  });
  // An opening `${` left without its `}` is a typo worth reporting, not a literal.
  const rest = text.replace(REFERENCE, '');
  if (rest.includes('${')) malformed.push(rest.slice(rest.indexOf('${')));
  return { value, missing, malformed };
}
