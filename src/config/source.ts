import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, Scalar, type Node } from 'yaml';
import { hasReference, substituteEnv } from './env.js';
import { isTemplatePath, isTemplateReference } from './templates.js';

// The config file as text -> a plain value, plus where each key path sits in the file (so
// that every error can name its line), with `${NAME}` references replaced at the node level:
// a variable's value is never parsed as YAML (a password with `: ` stays a password), and an
// unset variable is reported at the key path that uses it.

export type PathSegment = string | number;

/** `backends.api.servers[1].address`: the user's keys, as written in the file. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

export interface SourceIssue {
  readonly path: readonly PathSegment[];
  readonly message: string;
  readonly line?: number;
}

export interface SourceDocument {
  readonly value: unknown;
  /** 1-based line of the first node at a formatted path (the key, for a mapping entry). */
  readonly lines: ReadonlyMap<string, number>;
  /** YAML syntax errors (then `value` is undefined) and `${...}` problems (unset -> ''). */
  readonly issues: readonly SourceIssue[];
  readonly syntaxErrors: boolean;
}

interface Walk {
  readonly lc: LineCounter;
  readonly refs: Placeholders;
  readonly lines: Map<string, number>;
  /** Formatted path -> [start, end) offsets, to place YAML syntax errors at a key path. */
  readonly spans: { path: PathSegment[]; start: number; end: number }[];
  readonly issues: SourceIssue[];
  readonly env: NodeJS.ProcessEnv;
}

/** Line (1-based) of the innermost known path at or above `path`. */
export function lineOf(lines: ReadonlyMap<string, number>, path: readonly PropertyKey[]): number | undefined {
  for (let n = path.length; n > 0; n--) {
    const line = lines.get(formatPath(path.slice(0, n)));
    if (line !== undefined) return line;
  }
  return undefined;
}

/**
 * `${...}` references are swapped for word-only placeholders before YAML parsing and put back
 * per value: `{ password: ${PW} }` is then valid YAML (braces are flow syntax), and a default
 * may hold commas (`${GREETING:-hello, world}`). References never span lines or quotes.
 */
interface Placeholders {
  readonly pattern: RegExp | null;
  readonly refs: Map<string, string>;
}

function hideReferences(text: string): { text: string; refs: Placeholders } {
  if (!text.includes('${')) return { text, refs: { pattern: null, refs: new Map() } };
  let tag = 'SYREF';
  while (text.includes(tag)) tag += 'X';
  const refs = new Map<string, string>();
  // Quotes end a reference here, so that a typo like "${X" cannot swallow a closing quote.
  const hidden = text.replace(/\$?\$\{[^}\n"']*\}/g, (ref) => {
    const token = `${tag}${refs.size}Z`;
    refs.set(token, ref);
    return token;
  });
  return { text: hidden, refs: { pattern: new RegExp(`${tag}\\d+Z`, 'g'), refs } };
}

function restore(text: string, refs: Placeholders): string {
  return refs.pattern === null ? text : text.replace(refs.pattern, (token) => refs.refs.get(token) ?? token);
}

export function readYaml(text: string, env: NodeJS.ProcessEnv = process.env): SourceDocument {
  const lc = new LineCounter();
  const hidden = hideReferences(text);
  // merge: `<<: *defaults` is how YAML users share settings between backends.
  const doc = parseDocument(hidden.text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, merge: true });
  const walk: Walk = { lc, refs: hidden.refs, lines: new Map(), spans: [], issues: [], env };
  visit(doc.contents, [], walk);
  if (doc.errors.length > 0) {
    const syntax = doc.errors.map((e): SourceIssue => ({
      path: innermostSpan(walk.spans, e.pos[0]),
      message: restore(e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''), hidden.refs),
      line: lc.linePos(e.pos[0]).line,
    }));
    return { value: undefined, lines: walk.lines, issues: [...syntax, ...walk.issues], syntaxErrors: true };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    return { value: undefined, lines: walk.lines, issues: [...walk.issues, { path: [], message: (error as Error).message }], syntaxErrors: true };
  }
  return { value, lines: walk.lines, issues: walk.issues, syntaxErrors: false };
}

function innermostSpan(spans: Walk['spans'], pos: number): PathSegment[] {
  let best: Walk['spans'][number] | null = null;
  for (const s of spans) {
    if (s.start <= pos && pos < s.end && (best === null || s.end - s.start <= best.end - best.start)) best = s;
  }
  return best === null ? [] : best.path;
}

function mark(walk: Walk, path: PathSegment[], start: number, end: number): void {
  const key = formatPath(path);
  if (!walk.lines.has(key)) walk.lines.set(key, walk.lc.linePos(start).line);
  walk.spans.push({ path, start, end });
}

function visit(node: unknown, path: PathSegment[], walk: Walk): void {
  if (node === null || node === undefined || isAlias(node)) return;
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as Node | null;
      const key = restore(isScalar(keyNode) ? String(keyNode.value) : String(keyNode), walk.refs);
      if (isScalar(keyNode) && typeof keyNode.value === 'string') keyNode.value = key;
      const start = keyNode?.range?.[0] ?? (pair.value as Node | null)?.range?.[0];
      const end = (pair.value as Node | null)?.range?.[2] ?? keyNode?.range?.[2] ?? start;
      const child = [...path, key];
      if (start !== undefined) mark(walk, child, start, end ?? start);
      visit(pair.value, child, walk);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      const child = [...path, i];
      const range = (item as Node | null)?.range;
      if (range) mark(walk, child, range[0], range[2]);
      visit(item, child, walk);
    });
  } else if (isScalar(node) && typeof node.value === 'string' && walk.refs.pattern !== null) {
    const text = restore(node.value, walk.refs);
    node.value = text;
    if (hasReference(text)) substitute(node, text, path, walk);
  }
}

function substitute(node: Scalar, text: string, path: PathSegment[], walk: Walk): void {
  const result = substituteEnv(text, walk.env, isTemplatePath(path) ? isTemplateReference : null);
  const line = node.range ? walk.lc.linePos(node.range[0]).line : undefined;
  for (const name of result.missing) {
    walk.issues.push({ path, message: `environment variable ${name} is not set (use \${${name}:-default} for a default)`, line });
  }
  for (const ref of result.malformed) {
    walk.issues.push({ path, message: `invalid reference ${ref}: expected \${NAME} or \${NAME:-default}`, line });
  }
  // An unquoted `${PORT}` reads as YAML would have read the value written in place: 8080 is
  // a number, true a boolean. A quoted one stays a string.
  node.value = node.type === Scalar.PLAIN ? plainScalar(result.value) : result.value;
}

function plainScalar(text: string): string | number | boolean {
  if (/^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(text)) return Number(text);
  if (/^(?:true|True|TRUE)$/.test(text)) return true;
  if (/^(?:false|False|FALSE)$/.test(text)) return false;
  return text;
}
