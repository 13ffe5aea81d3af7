/**
 * `redis-ha audit verify`: checks the hash chain of one or more audit files, oldest
 * first (`audit.jsonl.2.gz audit.jsonl.1 audit.jsonl`), and that each file continues
 * the one before it. Files are streamed line by line (gunzipped when compressed, as
 * logrotate leaves them), so memory stays bounded by the longest line, not the file.
 */
import { createReadStream } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { describeFsError } from '../config/keys.js';
import { ChainVerifier, escapeControls, LineSplitter, type ChainAnchor, type ChainReport, type ProblemKind } from './chain.js';
import { errorMessage } from '../errors.js';

/** The two bytes every gzip stream starts with (RFC 1952 §2.3.1). */
const GZIP_MAGIC = [0x1f, 0x8b] as const;

/** One file's outcome: its chain report, or why it could not be read. */
export interface FileVerifyResult {
  readonly path: string;
  readonly report: ChainReport | null;
  /** Set when the file could not be read (missing, unreadable, corrupt gzip). */
  readonly error: string | null;
}

/** A problem with the file it is in. */
export interface FileProblem {
  readonly path: string;
  readonly line: number;
  readonly kind: ProblemKind;
  readonly reason: string;
}

/** The outcome over all files, in the order given. */
export interface VerifyReport {
  readonly files: readonly FileVerifyResult[];
  /** Problems of every file in order (at most `MAX_REPORTED_PROBLEMS` per file). */
  readonly problems: readonly FileProblem[];
  /** All problems found, including those not listed. */
  readonly problemCount: number;
  readonly records: number;
  /** Files that could not be read. */
  readonly unreadable: number;
  /** True when every file was read and no problem was found. */
  readonly ok: boolean;
}

/**
 * Verifies `paths` in the order given (oldest first): each file's chain, and that the
 * first record of each file chains onto the last record of the file before it.
 */
export async function verifyAuditFiles(paths: readonly string[]): Promise<VerifyReport> {
  const files: FileVerifyResult[] = [];
  const problems: FileProblem[] = [];
  let problemCount = 0;
  let records = 0;
  let anchor: ChainAnchor | undefined;
  for (const path of paths) {
    let report: ChainReport;
    try {
      report = await verifyFile(path, anchor);
    } catch (error) {
      files.push({ path, report: null, error: describeError(error) });
      anchor = undefined;
      continue;
    }
    files.push({ path, report, error: null });
    records += report.records;
    problemCount += report.problemCount;
    for (const p of report.problems) problems.push({ path, ...p });
    // An empty file leaves the anchor where it was; a damaged end leaves nothing to check the next file against.
    if (report.lines > 0) anchor = report.head ? { ...report.head, description: `the last record of ${path}` } : undefined;
  }
  const unreadable = files.filter((f) => f.error !== null).length;
  return { files, problems, problemCount, records, unreadable, ok: unreadable === 0 && problemCount === 0 };
}

/** Verifies one file, optionally against the head the previous file ended with. */
export async function verifyFile(path: string, anchor?: ChainAnchor): Promise<ChainReport> {
  const verifier = new ChainVerifier(anchor ? { anchor } : {});
  const trailing = await forEachLine(await openLines(path), (line) => verifier.line(line));
  return verifier.end(trailing);
}

/** A readable byte stream of the file's text, gunzipped if it is gzip (by content, not name). */
async function openLines(path: string): Promise<Readable> {
  const handle = await open(path, 'r');
  let gzip: boolean;
  try {
    const magic = Buffer.alloc(2);
    const { bytesRead } = await handle.read(magic, 0, 2, 0);
    gzip = bytesRead === 2 && magic[0] === GZIP_MAGIC[0] && magic[1] === GZIP_MAGIC[1];
  } finally {
    await handle.close();
  }
  const raw = createReadStream(path);
  if (!gzip) return raw;
  const gunzip = createGunzip();
  raw.on('error', (error) => gunzip.destroy(error));
  return raw.pipe(gunzip);
}

/**
 * Calls `onLine` for every newline-terminated line of the stream (without the newline)
 * and returns what follows the last newline; memory is bounded by `MAX_LINE_BYTES`.
 */
export async function forEachLine(stream: Readable, onLine: (line: string) => void): Promise<string> {
  const splitter = new LineSplitter();
  for await (const chunk of stream as AsyncIterable<Buffer>) splitter.push(chunk, onLine);
  return splitter.rest();
}

/**
 * The files `verify` checks by default: `path` preceded by its rotated siblings that
 * exist (`<path>.N` or `<path>.N.gz`), oldest (highest N) first. `path` itself is
 * included even if missing, so the caller reports it.
 */
export async function rotatedSiblings(path: string): Promise<string[]> {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [path];
  }
  const byNumber = new Map<number, string>();
  const pattern = new RegExp(`^${escapeRegExp(base)}\\.(\\d+)(\\.gz)?$`);
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const n = Number(m[1]);
    // Mid-compression both exist; the uncompressed one is complete.
    if (!m[2] || !byNumber.has(n)) byNumber.set(n, name);
  }
  const older = [...byNumber.entries()].sort(([a], [b]) => b - a).map(([, name]) => join(dir, name));
  return [...older, path];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function describeError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) return `corrupt gzip data (${errorMessage(error)})`;
  return describeFsError(error);
}

/** The report for humans: one line per problem (`file:line: reason`), then a summary. */
export function formatVerifyReport(report: VerifyReport): string {
  const out: string[] = [];
  for (const f of report.files) {
    if (f.error !== null) {
      out.push(`${f.path}: cannot read: ${f.error}`);
      continue;
    }
    const r = f.report!;
    const span = r.first && r.last ? `seq ${r.first.seq}..${r.last.seq}, ${r.first.time} .. ${r.last.time}` : 'no records';
    const state = r.problemCount === 0 ? 'OK' : `${r.problemCount} problem(s)`;
    out.push(`${f.path}: ${state} (${r.records} record(s), ${span})`);
    for (const p of r.problems) out.push(`  ${f.path}:${p.line}: ${p.kind}: ${p.reason}`);
    if (r.problemCount > r.problems.length) out.push(`  ... and ${r.problemCount - r.problems.length} more problem(s)`);
    for (const s of r.restarts) out.push(`  ${f.path}:${s.line}: note: the daemon restarted the chain at seq ${s.seq}: ${escapeControls(s.reason)}`);
  }
  if (report.ok) {
    out.push(`chain intact: ${report.records} record(s) in ${report.files.length} file(s)`);
  } else {
    const parts = [];
    if (report.problemCount > 0) parts.push(`${report.problemCount} problem(s)`);
    if (report.unreadable > 0) parts.push(`${report.unreadable} unreadable file(s)`);
    out.push(`chain NOT intact: ${parts.join(', ')}; ${report.records} record(s) checked in ${report.files.length} file(s)`);
  }
  return `${out.join('\n')}\n`;
}
