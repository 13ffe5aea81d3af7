/**
 * `redis-ha audit verify [files...]` and `redis-ha audit tail [-n N] [-f] [--json]`.
 *
 * Both find the audit log the way the daemon does: `audit.path` of the configuration
 * (`-c`, with `REDIS_HA_AUDIT_PATH` applied), unless `--file` names it directly, which
 * also works where the configuration cannot be loaded (its secrets are root-only).
 *
 * `verify` says which guarantee it checked (unkeyed, keyed with `--key-file`, keyed
 * but unchecked, anchored with `--anchor SEQ:HASH`; see `src/audit/chain.ts`). Without
 * `--key-file` it takes `audit.key_file` from the configuration when it can read it.
 *
 * Exit status of `verify`: 0 the chain is intact, 1 problems found (each printed as
 * `file:line: kind: reason`), 2 a file, a key file (or the configuration) could not be
 * read, 64 a malformed `--anchor`.
 * `tail` exits 0, 2 when the file cannot be read, 64 for a bad `--lines`.
 * The commander definitions are in `audit-commands.ts`, which imports this file when a command runs.
 */
import { escapeControls, parseLine } from '../audit/chain.js';
import { formatRecordLine, MAX_VALUE_CHARS } from '../audit/format.js';
import { DEFAULT_TAIL_LINES, followRecords, readTail } from '../audit/tail.js';
import { readAuditKey } from '../audit/key.js';
import { formatVerifyReport, parseAnchor, rotatedSiblings, verifyAuditFiles } from '../audit/verify.js';
import { loadConfig } from '../config/load.js';
import { describeFsError } from '../config/keys.js';
import { errorMessage } from '../errors.js';

/** Exit status: the chain is intact / the records were printed. */
export const EXIT_AUDIT_OK = 0;
/** Exit status of `verify`: problems were found. */
export const EXIT_AUDIT_PROBLEMS = 1;
/** Exit status: the audit log (or the configuration naming it) could not be read. */
export const EXIT_AUDIT_UNREADABLE = 2;
/** EX_USAGE from sysexits.h: a bad option value. */
export const EXIT_USAGE = 64;
/** How often `tail --follow` looks for new lines. */
const FOLLOW_POLL_MS = 500;

/** Where the commands write, what ends `--follow`, and the environment for the configuration. */
export interface AuditCliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Ends `tail --follow`; without it, SIGINT or SIGTERM does. */
  readonly signal?: AbortSignal;
  readonly env?: NodeJS.ProcessEnv;
  /** Receives the exit status; default: sets `process.exitCode`. */
  readonly setExitCode?: (code: number) => void;
}

/** How the audit log is found. */
export interface AuditPathOptions {
  readonly config: string;
  readonly file?: string;
}

/** `audit verify` options as commander parses them. */
export interface AuditVerifyOptions extends AuditPathOptions {
  /** Key files of a keyed chain (several across a key change). */
  readonly keyFile?: readonly string[];
  /** A chain head from the daemon log, `SEQ:HASH`. */
  readonly anchor?: string;
}

/** `audit tail` options as commander parses them. */
export interface AuditTailOptions extends AuditPathOptions {
  readonly lines?: string;
  readonly follow?: boolean;
  readonly json?: boolean;
}

const processIo: AuditCliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/** `--file` if given, else `audit.path` of the configuration; an error line when neither works. */
export function resolveAuditPath(
  opts: AuditPathOptions,
  env: NodeJS.ProcessEnv = process.env,
): { path: string; keyFile?: string } | { error: string } {
  if (opts.file !== undefined && opts.file !== '') return { path: opts.file };
  try {
    const { audit } = loadConfig(opts.config, env);
    return { path: audit.path, ...(audit.keyFile === '' ? {} : { keyFile: audit.keyFile }) };
  } catch (error) {
    const detail = errorMessage(error);
    return { error: `cannot find the audit log: ${detail}\n(give the audit file with --file <path>)` };
  }
}

/** `audit verify`: returns the exit status. */
export async function auditVerifyCommand(files: readonly string[], opts: AuditVerifyOptions, io: AuditCliIo = processIo): Promise<number> {
  const env = io.env ?? process.env;
  let anchor;
  if (opts.anchor !== undefined) {
    anchor = parseAnchor(opts.anchor);
    if (anchor === null) {
      io.stderr(`redis-ha audit verify: --anchor: expected SEQ:HASH as the daemon logs it ("audit chain head", field anchor), got ${JSON.stringify(opts.anchor)}\n`);
      return EXIT_USAGE;
    }
  }
  let paths = [...files];
  const keyFiles = [...(opts.keyFile ?? [])];
  if (paths.length === 0) {
    const found = resolveAuditPath(opts, env);
    if ('error' in found) {
      io.stderr(`redis-ha audit verify: ${found.error}\n`);
      return EXIT_AUDIT_UNREADABLE;
    }
    paths = await rotatedSiblings(found.path);
    // The configured log is keyed with the configured key, unless keys are given.
    if (keyFiles.length === 0 && found.keyFile !== undefined) keyFiles.push(found.keyFile);
  }
  const keys: Buffer[] = [];
  for (const keyFile of keyFiles) {
    try {
      keys.push(readAuditKey(keyFile, { what: '--key-file', requirePrivate: false, env }));
    } catch (error) {
      io.stderr(`redis-ha audit verify: ${errorMessage(error)}\n`);
      return EXIT_AUDIT_UNREADABLE;
    }
  }
  const report = await verifyAuditFiles(paths, { keys, ...(anchor ? { anchor } : {}) });
  io.stdout(formatVerifyReport(report));
  if (report.unreadable > 0) return EXIT_AUDIT_UNREADABLE;
  return report.ok ? EXIT_AUDIT_OK : EXIT_AUDIT_PROBLEMS;
}

/** `audit tail`: prints the last records (then follows with `--follow`); returns the exit status. */
export async function auditTailCommand(opts: AuditTailOptions, io: AuditCliIo = processIo): Promise<number> {
  const n = opts.lines === undefined ? DEFAULT_TAIL_LINES : Number(opts.lines);
  if (!Number.isSafeInteger(n) || n < 0) {
    io.stderr(`redis-ha audit tail: --lines: expected a non-negative integer, got "${opts.lines}"\n`);
    return EXIT_USAGE;
  }
  const found = resolveAuditPath(opts, io.env ?? process.env);
  if ('error' in found) {
    io.stderr(`redis-ha audit tail: ${found.error}\n`);
    return EXIT_AUDIT_UNREADABLE;
  }
  const print = (line: string): void => io.stdout(`${opts.json ? line : humanLine(line)}\n`);
  let tail;
  try {
    tail = await readTail(found.path, n);
  } catch (error) {
    // Following a log that does not exist yet is fine (it appears on the first record).
    if (!(opts.follow && (error as NodeJS.ErrnoException).code === 'ENOENT')) {
      io.stderr(`redis-ha audit tail: cannot read ${found.path}: ${describeFsError(error)}\n`);
      return EXIT_AUDIT_UNREADABLE;
    }
  }
  for (const line of tail?.lines ?? []) print(line);
  if (!opts.follow) return EXIT_AUDIT_OK;

  const stop = new AbortController();
  const signal = io.signal ?? stop.signal;
  const onSignal = (): void => stop.abort();
  if (!io.signal) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    await followRecords(found.path, print, signal, FOLLOW_POLL_MS, tail?.position);
    return EXIT_AUDIT_OK;
  } catch (error) {
    io.stderr(`redis-ha audit tail: cannot follow ${found.path}: ${describeFsError(error)}\n`);
    return EXIT_AUDIT_UNREADABLE;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** A raw line as `formatRecordLine` prints it, or marked as not a record. */
function humanLine(line: string): string {
  const parsed = parseLine(line);
  if (parsed.ok) return formatRecordLine(parsed.record);
  // Still readable when damaged (an old unchained line, a hand edit): parse loosely.
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return formatRecordLine(value as Record<string, unknown>);
  } catch {
    // Falls through to the raw text.
  }
  const shown = line.length > MAX_VALUE_CHARS ? `${line.slice(0, MAX_VALUE_CHARS)}…` : line;
  return `(not a record: ${parsed.reason}) ${escapeControls(JSON.stringify(shown))}`;
}
