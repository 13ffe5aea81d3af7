/**
 * The import graph of a source tree, for the structure tests: which module imports which
 * (static `import ... from`, side-effect `import '...'`, `export ... from`, `import type`,
 * and dynamic `import()`), read with TypeScript's own pre-processor so comments and
 * strings are never mistaken for imports. Only relative specifiers are edges: packages
 * and `node:` built-ins cannot be part of a cycle in our tree.
 *
 * Type-only imports count. They vanish from the emitted JavaScript, but they still tie
 * the layers together (the `Logger` type pulled from the daemon into the adapters was
 * the one upward arrow), and `madge --circular` counts them too.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** Module → the modules it imports; both as paths relative to the tree's root, with `/`. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

/** An import that names no file of the tree: the graph would be missing an edge. */
export interface UnresolvedImport {
  readonly from: string;
  readonly specifier: string;
}

/** Every `.ts` file under `dir`, as absolute paths, sorted. */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out.sort();
}

function toKey(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}

/**
 * The source file a relative specifier names: NodeNext ESM spells `./x.js` for `./x.ts`.
 * `null` for a specifier that names a non-TypeScript file that exists (JSON, a native
 * addon), which cannot import anything back.
 */
function resolveSpecifier(fromFile: string, specifier: string): string | null | undefined {
  const target = resolve(dirname(fromFile), specifier);
  for (const candidate of [target.replace(/\.js$/, '.ts'), `${target}.ts`, join(target, 'index.ts')]) {
    if (candidate.endsWith('.ts') && existsSync(candidate)) return candidate;
  }
  return existsSync(target) ? null : undefined;
}

/** Reads the import graph of every `.ts` file under `root`. */
export function readImportGraph(root: string): { graph: ImportGraph; unresolved: UnresolvedImport[] } {
  const graph = new Map<string, string[]>();
  const unresolved: UnresolvedImport[] = [];
  for (const file of sourceFiles(root)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const edges = new Set<string>();
    for (const { fileName: specifier } of info.importedFiles) {
      if (!specifier.startsWith('.')) continue;
      const target = resolveSpecifier(file, specifier);
      if (target === undefined) unresolved.push({ from: toKey(root, file), specifier });
      else if (target !== null) edges.add(toKey(root, target));
    }
    graph.set(toKey(root, file), [...edges].sort());
  }
  return { graph, unresolved };
}

/**
 * Every import cycle, one per strongly connected component (Tarjan): each as the path
 * `a → b → … → a` through the component, so the message shows the arrows to cut. A
 * module importing itself is a cycle of one.
 */
export function findCycles(graph: ImportGraph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];

  // Recursive: our trees are a few hundred modules deep at most.
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next++;
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!graph.has(to)) continue;
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node)!, index.get(to)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) components.push(component);
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return components.map((component) => cyclePath(graph, component));
}

/** A closed path through one strongly connected component, starting at its first module in sort order. */
function cyclePath(graph: ImportGraph, component: readonly string[]): string[] {
  const members = new Set(component);
  const start = [...component].sort()[0]!;
  // Breadth-first from start back to start, inside the component: the shortest cycle through it.
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const to of graph.get(node) ?? []) {
      if (!members.has(to)) continue;
      if (to === start) {
        const path = [start];
        for (let at: string | undefined = node; at !== undefined && at !== start; at = cameFrom.get(at)) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!cameFrom.has(to)) {
        cameFrom.set(to, node);
        queue.push(to);
      }
    }
  }
  return [...component, component[0]!];
}

/** The edges from modules under `fromDir/` to modules under `toDir/`, as `from → to`. */
export function importsBetween(graph: ImportGraph, fromDir: string, toDir: string): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    if (!from.startsWith(`${fromDir}/`)) continue;
    for (const to of targets) if (to.startsWith(`${toDir}/`)) out.push(`${from} → ${to}`);
  }
  return out.sort();
}
