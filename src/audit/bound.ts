/**
 * Bounded, flattened copies of data for the audit log. Pure: no I/O.
 *
 * A control request's `args` come from whoever can open the socket. Written as they
 * came, they let that caller (issue 10, item 5):
 *   1. blank the record: args nested deeper than the stack make `JSON.stringify` throw,
 *      and the record lost its command, user and outcome with them;
 *   2. flood the fsynced log: up to 64 KiB per request, even for `status`.
 * `flattenBounded` turns any value into one flat object of `path: scalar` entries
 * (`{"a":{"b":[1]}}` -> `{"a.b[0]": 1}`), walking no deeper than `maxDepth`, keeping at
 * most `maxEntries` entries of at most `maxStringChars` characters and `maxBytes` in
 * all, and says what it cut (`BoundCut`). It never throws, whatever it is given
 * (cycles, BigInts, getters that throw, a `__proto__` key).
 */

/** A flattened entry's value: what JSON writes as a scalar. */
export type Scalar = string | number | boolean | null;

/** How much `flattenBounded` keeps. */
export interface BoundLimits {
  /** Levels walked below the top; a container deeper down is written as a summary such as "[object, 3 keys]". */
  readonly maxDepth: number;
  /** Entries kept; the rest are counted in `BoundCut.entries`. */
  readonly maxEntries: number;
  /** Characters kept of a string value or a path; longer ones end in "…". */
  readonly maxStringChars: number;
  /** Bytes of JSON the kept entries may take in all (keys and values). */
  readonly maxBytes: number;
}

/** What was left out, by kind; only kinds that happened are present. */
export interface BoundCut {
  /** Containers below `maxDepth`, written as a summary instead of their contents. */
  deeper?: number;
  /** Entries dropped beyond `maxEntries` (a container not walked counts once). */
  entries?: number;
  /** Strings (values or paths) shortened to `maxStringChars`. */
  strings?: number;
  /** Entries dropped because `maxBytes` was reached (a container not walked counts once). */
  bytes?: number;
}

/** The flat copy, and what was cut (`null`: nothing). */
export interface Bounded {
  readonly value: Readonly<Record<string, Scalar>>;
  readonly cut: Readonly<BoundCut> | null;
}

/** A control request's arguments: real commands have two or three short ones. */
export const ARGS_LIMITS: BoundLimits = Object.freeze({ maxDepth: 3, maxEntries: 32, maxStringChars: 256, maxBytes: 2048 });

/**
 * A whole audit record's data, when it cannot be written as it is (it does not
 * serialise, or it is larger than the writer accepts). Generous: a record of the core
 * is small and keeps its shape but for the flattening.
 */
export const RECORD_LIMITS: BoundLimits = Object.freeze({ maxDepth: 4, maxEntries: 128, maxStringChars: 1024, maxBytes: 8192 });

const ELLIPSIS = '…';

/** `text` cut to `max` characters (code points kept whole), with "…" when cut. */
export function capString(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max);
  // Never end on half of a surrogate pair: the JSON would carry a lone surrogate.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}${ELLIPSIS}`;
}

/**
 * Flattens `value` into at most `limits.maxEntries` `path: scalar` entries. A scalar
 * at the top becomes the entry `""`. Scalars of the top level come first, so the
 * fields a reader looks for (command, user, outcome) survive any cut of nested data.
 */
export function flattenBounded(value: unknown, limits: BoundLimits): Bounded {
  const out: [string, Scalar][] = [];
  const cut: BoundCut = {};
  let bytes = 2; // "{}"
  const count = (kind: keyof BoundCut): void => {
    cut[kind] = (cut[kind] ?? 0) + 1;
  };

  const emit = (path: string, scalar: Scalar): void => {
    if (out.length >= limits.maxEntries) return count('entries');
    let key = path;
    if (key.length > limits.maxStringChars) {
      key = capString(key, limits.maxStringChars);
      count('strings');
    }
    let shown = scalar;
    if (typeof shown === 'string' && shown.length > limits.maxStringChars) {
      shown = capString(shown, limits.maxStringChars);
      count('strings');
    }
    const size = JSON.stringify(key).length + 1 + JSON.stringify(shown).length + 1;
    if (bytes + size > limits.maxBytes) return count('bytes');
    bytes += size;
    out.push([key, shown]);
  };

  const walk = (path: string, node: unknown, depth: number): void => {
    const scalar = toScalar(node);
    if (scalar !== undefined) return emit(path, scalar);
    if (typeof node !== 'object' || node === null) return; // undefined, functions, symbols: JSON leaves them out
    const entries = entriesOf(node);
    if (entries === null) return emit(path, '[unreadable]');
    if (entries.length === 0) return emit(path, Array.isArray(node) ? '[]' : '{}');
    if (depth >= limits.maxDepth) {
      count('deeper');
      return emit(path, Array.isArray(node) ? `[array, ${entries.length} items]` : `[object, ${entries.length} keys]`);
    }
    for (const [key, child] of entries) {
      // Stop walking once nothing more can be kept; what is left is counted, not visited.
      if (out.length >= limits.maxEntries || bytes >= limits.maxBytes) {
        count(out.length >= limits.maxEntries ? 'entries' : 'bytes');
        continue;
      }
      walk(join(path, key, Array.isArray(node)), child, depth + 1);
    }
  };

  const top = typeof value === 'object' && value !== null && !Array.isArray(value) ? entriesOf(value) : null;
  if (top === null) {
    walk('', value, 0);
  } else {
    const scalars = top.filter(([, v]) => toScalar(v) !== undefined);
    const nested = top.filter(([, v]) => toScalar(v) === undefined);
    for (const [key, child] of [...scalars, ...nested]) walk(key, child, 1);
  }
  return { value: Object.fromEntries(out) as Record<string, Scalar>, cut: Object.keys(cut).length > 0 ? cut : null };
}

/** The value as a JSON scalar, or `undefined` for containers and what JSON leaves out. */
function toScalar(value: unknown): Scalar | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value.toString();
    default:
      return value === null ? null : undefined;
  }
}

/** Own enumerable entries (array indexes for arrays), or `null` when reading them throws (a proxy, a getter). */
function entriesOf(node: object): [string, unknown][] | null {
  try {
    return Array.isArray(node) ? node.map((v, i) => [String(i), v]) : Object.entries(node);
  } catch {
    return null;
  }
}

function join(path: string, key: string, index: boolean): string {
  if (index) return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}
