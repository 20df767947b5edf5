import type { z } from 'zod';
import { configSchema } from './schema.js';

// Zod's issues in the words of a config file: "required", "expected a list", "must be at
// most 256", and the keys a strict object knows (for "did you mean").

type RawIssue = z.core.$ZodRawIssue;

const NOUNS: Readonly<Record<string, string>> = {
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  literal: 'a fixed value',
};

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}...` : v}"`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return typeof v; // undefined, a function or a symbol: named by kind
}

/** Per-parse error map (zod v4 `error` option): only issues a schema did not word itself. */
export function messageFor(issue: RawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'required';
      const noun = NOUNS[issue.expected] ?? issue.expected;
      return `expected ${noun}, got ${kind(issue.input)}`;
    }
    case 'invalid_value': {
      const values = issue.values.map(String);
      const list = values.length <= 2 ? values.join(' or ') : `one of ${values.join(', ')}`;
      return `expected ${list}, got ${kind(issue.input)}`;
    }
    case 'too_small':
      if (issue.origin === 'string') return 'must not be empty';
      if (issue.origin === 'array') return `expected at least ${issue.minimum} items`;
      return issue.inclusive === false ? `must be greater than ${issue.minimum}` : `must be at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'string' || issue.origin === 'array') return `expected at most ${issue.maximum}`;
      return issue.inclusive === false ? `must be less than ${issue.maximum}` : `must be at most ${issue.maximum}`;
    case 'invalid_format':
      return `expected ${issue.format}`;
    default:
      return undefined;
  }
}

interface Def {
  type: string;
  shape?: Record<string, { _zod: { def: Def } }>;
  valueType?: { _zod: { def: Def } };
  element?: { _zod: { def: Def } };
  innerType?: { _zod: { def: Def } };
  in?: { _zod: { def: Def } };
  out?: { _zod: { def: Def } };
  options?: { _zod: { def: Def } }[];
  values?: unknown[];
}

/** Step through wrappers (default, optional, preprocess pipes) to the schema that holds data. */
function unwrap(def: Def, input: unknown): Def {
  for (;;) {
    if (def.innerType) def = def.innerType._zod.def;
    else if (def.type === 'pipe' && def.out && def.out._zod.def.type !== 'transform') def = def.out._zod.def;
    else if (def.type === 'union' && def.options) {
      // Discriminated union (sticky): the option whose `type` literal matches the input.
      const want = typeof input === 'object' && input !== null ? (input as { type?: unknown }).type : undefined;
      const match = def.options.find((o) => o._zod.def.shape?.type?._zod.def.values?.includes(want));
      if (!match) return def;
      def = match._zod.def;
    } else return def;
  }
}

/** Keys allowed in the strict object at `path` (empty when unknown). */
export function knownKeys(path: readonly PropertyKey[], input?: unknown): string[] {
  let def = (configSchema as unknown as { _zod: { def: Def } })._zod.def;
  for (const seg of path) {
    def = unwrap(def, undefined);
    const next = def.shape?.[seg as string] ?? def.valueType ?? def.element;
    if (next === undefined) return [];
    def = next._zod.def;
  }
  def = unwrap(def, input);
  return def.shape ? Object.keys(def.shape) : [];
}
