import { parse, type Node } from 'acorn';

// ES module syntax to a function body, so that a user module can be evaluated by src/usercode/
// loader.ts as a plain function in a vm context instead of through import(). The reason: Node
// keeps every module import() ever loaded in its module map for the life of the process (there
// is no API to evict one, nodejs/node#49442), so hot-swapping a module by import() with a cache
// busting query leaks every version. A function evaluated in a context is freed with the
// context once nothing references it.
//
// Only the top-level import/export statements are rewritten (acorn finds them; the rest of the
// text is kept byte for byte, so line numbers in stack traces stay right):
//   import d, { a as b } from 'm'   -> const __sy_m0 = __sy_import("m"); const d = __sy_default(__sy_m0); const { a: b } = __sy_m0;
//   export default <expr>           -> __sy_exports.default = <expr>
//   export function f() {} / const  -> the declaration, and `__sy_exports.f = f;` at the end
//   export { a as b }               -> `__sy_exports.b = a;` at the end
//   export * from 'm'               -> the names copied from the imported module
// Imports are bindings copied once (no live bindings): user modules are leaves that export
// functions, which is all a router, a hook or a strategy needs. `import.meta` becomes an
// object with `url`, `filename` and `dirname`. A module without import/export is CommonJS.

export interface Transformed {
  /** The module body, to be wrapped in a function by the loader. */
  readonly body: string;
  /** true: ES module syntax (strict, exports on __sy_exports); false: CommonJS (module.exports). */
  readonly esm: boolean;
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

type AnyNode = Node & Record<string, unknown>;

export function transformModule(source: string, file: string): Transformed {
  let program: AnyNode;
  try {
    program = parse(source, {
      ecmaVersion: 'latest',
      sourceType: 'module',
      allowReturnOutsideFunction: true,
      allowHashBang: true,
      locations: false,
    }) as unknown as AnyNode;
  } catch (error) {
    throw new SyntaxError(`${file}: ${(error as Error).message}`, { cause: error });
  }
  const edits: Edit[] = [];
  const tail: string[] = [];
  let esm = false;
  let n = 0;
  const importOf = (spec: string) => `__sy_import(${JSON.stringify(spec)})`;
  for (const node of program.body as AnyNode[]) {
    switch (node.type) {
      case 'ImportDeclaration': {
        esm = true;
        const spec = (node.source as AnyNode).value as string;
        const specifiers = node.specifiers as AnyNode[];
        if (specifiers.length === 0) {
          edits.push({ start: node.start, end: node.end, text: `${importOf(spec)};` });
          break;
        }
        const m = `__sy_m${n++}`;
        const parts = [`const ${m} = ${importOf(spec)};`];
        const named: string[] = [];
        for (const s of specifiers) {
          const local = (s.local as AnyNode).name as string;
          if (s.type === 'ImportDefaultSpecifier') parts.push(`const ${local} = __sy_default(${m});`);
          else if (s.type === 'ImportNamespaceSpecifier') parts.push(`const ${local} = ${m};`);
          else named.push(`${JSON.stringify(nameOf(s.imported as AnyNode))}: ${local}`);
        }
        if (named.length > 0) parts.push(`const { ${named.join(', ')} } = ${m};`);
        edits.push({ start: node.start, end: node.end, text: parts.join(' ') });
        break;
      }
      case 'ExportDefaultDeclaration': {
        esm = true;
        const decl = node.declaration as AnyNode;
        const id = decl.type === 'FunctionDeclaration' || decl.type === 'ClassDeclaration' ? (decl.id as AnyNode | null) : null;
        if (id) {
          edits.push({ start: node.start, end: decl.start, text: '' });
          tail.push(`__sy_exports.default = ${id.name as string};`);
        } else {
          edits.push({ start: node.start, end: decl.start, text: '__sy_exports.default = ' });
          if (decl.type === 'FunctionDeclaration' || decl.type === 'ClassDeclaration') edits.push({ start: node.end, end: node.end, text: ';' });
        }
        break;
      }
      case 'ExportNamedDeclaration': {
        esm = true;
        const decl = node.declaration as AnyNode | null;
        if (decl) {
          edits.push({ start: node.start, end: decl.start, text: '' });
          for (const name of declaredNames(decl)) tail.push(`__sy_exports.${name} = ${name};`);
          break;
        }
        const specifiers = node.specifiers as AnyNode[];
        const source = node.source as AnyNode | null;
        if (source) {
          const m = `__sy_m${n++}`;
          const parts = [`const ${m} = ${importOf(source.value as string)};`];
          for (const s of specifiers)
            parts.push(`__sy_exports[${JSON.stringify(nameOf(s.exported as AnyNode))}] = ${m}[${JSON.stringify(nameOf(s.local as AnyNode))}];`);
          edits.push({ start: node.start, end: node.end, text: parts.join(' ') });
        } else {
          edits.push({ start: node.start, end: node.end, text: '' });
          for (const s of specifiers) tail.push(`__sy_exports[${JSON.stringify(nameOf(s.exported as AnyNode))}] = ${nameOf(s.local as AnyNode)};`);
        }
        break;
      }
      case 'ExportAllDeclaration': {
        esm = true;
        const spec = (node.source as AnyNode).value as string;
        const exported = node.exported as AnyNode | null;
        edits.push({
          start: node.start,
          end: node.end,
          text: exported
            ? `__sy_exports[${JSON.stringify(nameOf(exported))}] = ${importOf(spec)};`
            : `for (const [k, v] of Object.entries(${importOf(spec)})) if (k !== 'default') __sy_exports[k] = v;`,
        });
        break;
      }
      default:
        break;
    }
  }
  let body = source;
  for (const e of edits.sort((a, b) => b.start - a.start)) body = body.slice(0, e.start) + e.text + body.slice(e.end);
  if (source.includes('import.meta')) {
    esm = true;
    body = body.replace(/\bimport\.meta\b/g, '__sy_meta');
  }
  if (tail.length > 0) body += `\n${tail.join('\n')}`;
  if (body.startsWith('#!')) body = `//${body.slice(2)}`;
  return { body, esm };
}

function nameOf(node: AnyNode): string {
  return node.type === 'Identifier' ? (node.name as string) : String(node.value);
}

/** The names a declaration binds: function/class id, or every identifier in its patterns. */
function declaredNames(decl: AnyNode): string[] {
  if (decl.type === 'FunctionDeclaration' || decl.type === 'ClassDeclaration') return [(decl.id as AnyNode).name as string];
  const names: string[] = [];
  for (const d of decl.declarations as AnyNode[]) patternNames(d.id as AnyNode, names);
  return names;
}

function patternNames(p: AnyNode, out: string[]): void {
  switch (p.type) {
    case 'Identifier':
      out.push(p.name as string);
      break;
    case 'ObjectPattern':
      for (const prop of p.properties as AnyNode[]) patternNames((prop.type === 'RestElement' ? prop.argument : prop.value) as AnyNode, out);
      break;
    case 'ArrayPattern':
      for (const el of p.elements as (AnyNode | null)[]) if (el) patternNames(el, out);
      break;
    case 'RestElement':
      patternNames(p.argument as AnyNode, out);
      break;
    case 'AssignmentPattern':
      patternNames(p.left as AnyNode, out);
      break;
    default:
      break;
  }
}
