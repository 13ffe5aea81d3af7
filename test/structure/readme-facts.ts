/**
 * Readers for `readme-facts.test.ts`: the pieces of README.md that quote the code (a
 * section, a Markdown table, the figures of a formula, the rules of an `ACL SETUSER`
 * line) and the one scan of the Redis adapter that lists the commands the daemon sends.
 * Pure functions of the texts they are given, so the test can try each on a small
 * made-up input before trusting it with the real files.
 */

/** One source file: its path (for messages) and its text. */
export interface SourceFile {
  readonly path: string;
  readonly text: string;
}

/**
 * The body of the section headed `heading` (the whole heading line, `## Name` or
 * `### Name`), up to the next heading of the same or a higher level. Throws when there
 * is not exactly one such heading.
 */
export function sectionOf(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  const level = /^#+/.exec(heading)?.[0].length ?? 0;
  if (level === 0) throw new Error(`a heading starts with #, got ${JSON.stringify(heading)}`);
  const starts = lines.flatMap((line, i) => (line.trimEnd() === heading ? [i] : []));
  if (starts.length !== 1) throw new Error(`expected one heading ${JSON.stringify(heading)}, found ${starts.length}`);
  const start = starts[0]!;
  let inFence = false;
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('```')) inFence = !inFence;
    const hashes = /^(#+) /.exec(line)?.[1]?.length;
    if (!inFence && hashes !== undefined && hashes <= level) {
      end = i;
      break;
    }
  }
  return lines.slice(start + 1, end).join('\n');
}

/** A Markdown table: its header cells and its rows of cells (the `|---|` line left out). */
export interface Table {
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** Splits one `| a | b |` line into its trimmed cells; `\|` stays a `|` inside a cell. */
function cellsOf(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return inner.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

/** The tables of `markdown`, in order. */
export function tablesOf(markdown: string): Table[] {
  const tables: Table[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.trim().startsWith('|') || !/^\|(\s*:?-+:?\s*\|)+\s*$/.test(lines[i + 1]!.trim())) continue;
    const header = cellsOf(lines[i]!);
    const rows: string[][] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j]!.trim().startsWith('|'); j++) rows.push(cellsOf(lines[j]!));
    tables.push({ header, rows });
    i = j - 1;
  }
  return tables;
}

/** The one table of `markdown` whose header is `header` (cells compared trimmed). */
export function tableWithHeader(markdown: string, header: readonly string[]): Table {
  const found = tablesOf(markdown).filter((t) => t.header.length === header.length && t.header.every((cell, i) => cell === header[i]));
  if (found.length !== 1) throw new Error(`expected one table with header | ${header.join(' | ')} |, found ${found.length}`);
  return found[0]!;
}

/**
 * The bullets of a list (`- ` at the start of a line, continued by indented lines), each
 * joined into one line.
 */
export function bulletsOf(markdown: string): string[] {
  const bullets: string[] = [];
  let current: string[] | null = null;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('- ')) {
      if (current) bullets.push(current.join(' '));
      current = [line.slice(2).trim()];
    } else if (current && /^\s+\S/.test(line)) {
      current.push(line.trim());
    } else if (current) {
      bullets.push(current.join(' '));
      current = null;
    }
  }
  if (current) bullets.push(current.join(' '));
  return bullets;
}

/** A figure as printed: its value in ms, and the digits it was rounded to. */
export interface Figure {
  readonly ms: number;
  /** `s` or `ms`, as printed. */
  readonly unit: 's' | 'ms';
  /** Digits after the decimal point, as printed. */
  readonly decimals: number;
  readonly text: string;
}

/** `0.75 s`, `73 ms`, `at once` (0): a printed duration; `null` when `text` is none. */
export function parseFigure(text: string): Figure | null {
  const t = text.trim().replace(/^≈\s*/, '');
  if (t === 'at once') return { ms: 0, unit: 'ms', decimals: 0, text };
  const match = /^(\d+(?:\.(\d+))?) (s|ms)$/.exec(t);
  if (match === null) return null;
  const unit = match[3] as 's' | 'ms';
  const value = Number(match[1]);
  return { ms: unit === 's' ? value * 1000 : value, unit, decimals: match[2]?.length ?? 0, text };
}

/** Whether `computedMs`, rounded as `figure` was printed, is the figure. */
export function figureMatches(figure: Figure, computedMs: number): boolean {
  const scale = figure.unit === 's' ? 1000 : 1;
  const factor = 10 ** figure.decimals;
  const printed = Math.round((figure.ms / scale) * factor);
  return Math.round((computedMs / scale) * factor) === printed;
}

/** One claim of a formula's figures: `Defaults: 1.2 s` (no priority) or `*P* = 90: 3.75 s`. */
export interface FigureClaim {
  /** The backup priority the figure is for; null when the text gives none. */
  readonly priority: number | null;
  /** The claim says this priority is the `node.priority` default. */
  readonly saysDefaultPriority: boolean;
  readonly figure: Figure;
}

/**
 * The figures after `Defaults:` in `text`: either one plain figure (`Defaults: 0.1 s`) or
 * one per priority (`*P* = 90: 3.75 s; *P* = 100 (the `node.priority` default): 3.71 s`).
 */
export function defaultsClaims(text: string): FigureClaim[] {
  const flat = text.replace(/\s+/g, ' ');
  const at = flat.indexOf('Defaults:');
  if (at < 0) return [];
  const rest = flat.slice(at + 'Defaults:'.length);
  const claims: FigureClaim[] = [];
  const perPriority = /\*P\* = (\d+)( \(the `node\.priority` default\))?: (\d+(?:\.\d+)? m?s)\b/g;
  for (const m of rest.matchAll(perPriority)) {
    const figure = parseFigure(m[3]!);
    if (figure) claims.push({ priority: Number(m[1]), saysDefaultPriority: m[2] !== undefined, figure });
  }
  if (claims.length > 0) return claims;
  const plain = /^\s*(\d+(?:\.\d+)? m?s)\b/.exec(rest);
  const figure = plain ? parseFigure(plain[1]!) : null;
  return figure ? [{ priority: null, saysDefaultPriority: false, figure }] : [];
}

/** The rules of the one `ACL SETUSER <user> ...` line of `markdown`: `+x` rules without the `+`, and the others as written. */
export function aclLineOf(markdown: string): { user: string; allowed: string[]; other: string[] } {
  const lines = markdown.split('\n').filter((line) => line.startsWith('ACL SETUSER '));
  if (lines.length !== 1) throw new Error(`expected one line starting "ACL SETUSER ", found ${lines.length}`);
  const [, , user, ...rules] = lines[0]!.trim().split(/\s+/);
  if (user === undefined) throw new Error('the ACL SETUSER line names no user');
  return {
    user,
    allowed: rules.filter((r) => r.startsWith('+')).map((r) => r.slice(1).toLowerCase()),
    other: rules.filter((r) => !r.startsWith('+')),
  };
}

/** Redis commands whose ACL rule names a subcommand (`+client|kill`): the daemon sends no others of theirs. */
const CONTAINER_COMMANDS = new Set(['acl', 'client', 'cluster', 'config']);

/** ioredis methods that send the Redis command of their name (the ACL rule in the value; `null`: no rule needed). */
const COMMAND_METHODS: Readonly<Record<string, readonly string[] | 'subcommand' | null>> = {
  info: ['info'],
  ping: ['ping'],
  replicaof: ['replicaof'],
  multi: ['multi', 'exec'],
  config: 'subcommand',
  client: 'subcommand',
  // QUIT is a no-auth command: Redis checks no ACL rule for it (tried on 7.0.15).
  quit: null,
};

/** ioredis methods on a client that send nothing of their own, or whose command another entry counts. */
const NON_COMMAND_METHODS = new Set(['call', 'on', 'once', 'off', 'connect', 'disconnect', 'pipeline', 'exec']);

/** The names the adapter gives its ioredis clients, transactions and pipelines. */
const CLIENT_RECEIVER = /\b(?:c|client|m|pipeline|entry\.client)\.([a-zA-Z]+)\(\s*(?:'([A-Za-z]+)')?/g;

/** The ACL rules the Redis commands sent by `files` need, and anything the scan could not place. */
export function redisCommandsSent(files: readonly SourceFile[]): { rules: Set<string>; unknown: string[] } {
  const rules = new Set<string>();
  const unknown: string[] = [];
  const add = (command: string, sub: string | undefined, where: string): void => {
    const name = command.toLowerCase();
    if (!CONTAINER_COMMANDS.has(name)) {
      rules.add(name);
      return;
    }
    if (sub === undefined) unknown.push(`${where}: ${command} without a literal subcommand`);
    else rules.add(`${name}|${sub.toLowerCase()}`);
  };
  for (const { path, text } of files) {
    for (const m of text.matchAll(/\.call\(\s*'([A-Za-z]+)'(?:\s*,\s*'([A-Za-z]+)')?/g)) add(m[1]!, m[2], path);
    for (const m of text.matchAll(CLIENT_RECEIVER)) {
      const method = m[1]!;
      if (NON_COMMAND_METHODS.has(method)) continue;
      const sends = COMMAND_METHODS[method];
      if (sends === undefined) unknown.push(`${path}: .${method}(`);
      else if (sends === 'subcommand') add(method, m[2], path);
      else for (const rule of sends ?? []) rules.add(rule);
    }
    // ioredis names each connection with CLIENT SETNAME during its handshake.
    if (/\bconnectionName:/.test(text)) rules.add('client|setname');
    // The daemon points `masteruser` at its own user: Redis replicates through it.
    if (text.includes("'masteruser'")) for (const rule of ['psync', 'replconf', 'ping']) rules.add(rule);
  }
  return { rules, unknown };
}
