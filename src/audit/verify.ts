/**
 * `redis-ha audit verify`: checks the hash chain of one or more audit files, oldest
 * first (`audit.jsonl.2.gz audit.jsonl.1 audit.jsonl`), and that each file continues
 * the one before it. Files are streamed line by line (gunzipped when compressed, as
 * logrotate leaves them), so memory stays bounded by the longest line, not the file.
 *
 * The report says which guarantee was checked (see `chain.ts` for what each means):
 * unkeyed records, keyed records checked with the key (`--key-file`), keyed records
 * that could not be checked (no key given), and a head anchored elsewhere (`--anchor`).
 */
import { createReadStream } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { describeFsError } from '../config/keys.js';
import {
  ChainVerifier,
  escapeControls,
  LineSplitter,
  type ChainAnchor,
  type ChainHead,
  type ChainReport,
  type ProblemKind,
  type SeqSpan,
} from './chain.js';
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
  /** Keyed records, over all files. */
  readonly keyed: number;
  readonly keyedSeqs: SeqSpan | null;
  /** Keyed records whose HMAC was not checked (no key given). */
  readonly keyedUnchecked: number;
  /** Unkeyed records, over all files. */
  readonly unkeyed: number;
  readonly unkeyedSeqs: SeqSpan | null;
  /** Whether keys were given (`--key-file`). */
  readonly keyGiven: boolean;
  /** The head anchored elsewhere and what became of it; `null` when none was given. */
  readonly anchor: { readonly seq: number; readonly hash: string; readonly state: 'matched' | 'mismatch' | 'not-found' } | null;
  /** Problems of the chain as a whole, not of a line (a key given but no keyed record; an anchor not found). */
  readonly chainProblems: readonly string[];
  /** True when every file was read and no problem was found. */
  readonly ok: boolean;
}

/** What to check besides the links. */
export interface VerifyOptions {
  /** Keys for keyed records (`--key-file`, several across a key change). */
  readonly keys?: readonly Buffer[];
  /** A head kept elsewhere (`--anchor SEQ:HASH`, from the daemon's journal). */
  readonly anchor?: ChainHead;
}

/**
 * Verifies `paths` in the order given (oldest first): each file's chain, and that the
 * first record of each file chains onto the last record of the file before it.
 */
export async function verifyAuditFiles(paths: readonly string[], options: VerifyOptions = {}): Promise<VerifyReport> {
  const files: FileVerifyResult[] = [];
  const problems: FileProblem[] = [];
  const keys = options.keys ?? [];
  let problemCount = 0;
  let records = 0;
  let keyed = 0;
  let keyedUnchecked = 0;
  let unkeyed = 0;
  let keyedSeqs: SeqSpan | null = null;
  let unkeyedSeqs: SeqSpan | null = null;
  let checkpoint: 'matched' | 'mismatch' | null = null;
  let anchor: ChainAnchor | undefined;
  for (const path of paths) {
    let report: ChainReport;
    try {
      report = await verifyFile(path, anchor, { keys, ...(options.anchor ? { checkpoint: options.anchor } : {}) });
    } catch (error) {
      files.push({ path, report: null, error: describeError(error) });
      anchor = undefined;
      continue;
    }
    files.push({ path, report, error: null });
    records += report.records;
    problemCount += report.problemCount;
    keyed += report.keyed;
    keyedUnchecked += report.keyedUnchecked;
    unkeyed += report.unkeyed;
    keyedSeqs = joinSpans(keyedSeqs, report.keyedSeqs);
    unkeyedSeqs = joinSpans(unkeyedSeqs, report.unkeyedSeqs);
    if (report.checkpoint === 'mismatch' || (report.checkpoint === 'matched' && checkpoint === null)) checkpoint = report.checkpoint;
    for (const p of report.problems) problems.push({ path, ...p });
    // An empty file leaves the anchor where it was; a damaged end leaves nothing to check the next file against.
    if (report.lines > 0) {
      anchor = report.head ? { ...report.head, description: `the last record of ${path}`, keyed: report.last?.keyed ?? false } : undefined;
    }
  }
  const unreadable = files.filter((f) => f.error !== null).length;
  const chainProblems: string[] = [];
  if (keys.length > 0 && keyed === 0 && records > 0) {
    chainProblems.push('a key was given but no record is keyed: the log was written without audit.key_file, or rewritten by someone without the key');
  }
  const a = options.anchor;
  if (a && checkpoint === null) {
    const held = keyedSeqs || unkeyedSeqs ? ` (they hold seq ${Math.min(keyedSeqs?.first ?? Infinity, unkeyedSeqs?.first ?? Infinity)}..${Math.max(keyedSeqs?.last ?? 0, unkeyedSeqs?.last ?? 0)})` : '';
    chainProblems.push(`the anchor's seq ${a.seq} is not in the files checked${held}: give the files that hold it, or a newer anchor`);
  }
  return {
    files, problems, problemCount, records, unreadable, keyed, keyedSeqs, keyedUnchecked, unkeyed, unkeyedSeqs,
    keyGiven: keys.length > 0,
    anchor: a ? { seq: a.seq, hash: a.hash, state: checkpoint ?? 'not-found' } : null,
    chainProblems,
    ok: unreadable === 0 && problemCount === 0 && chainProblems.length === 0,
  };
}

function joinSpans(a: SeqSpan | null, b: SeqSpan | null): SeqSpan | null {
  if (!a || !b) return a ?? b;
  return { first: Math.min(a.first, b.first), last: Math.max(a.last, b.last) };
}

/**
 * Parses an anchor as the daemon logs it, `SEQ:HASH` (seq a positive integer, the link
 * 64 lowercase hex digits); `null` when the text has another shape.
 */
export function parseAnchor(text: string): ChainHead | null {
  const m = /^(\d{1,15}):([0-9a-f]{64})$/.exec(text.trim());
  if (!m) return null;
  const seq = Number(m[1]);
  return Number.isSafeInteger(seq) && seq >= 1 ? { seq, hash: m[2]! } : null;
}

/** Verifies one file, optionally against the head the previous file ended with. */
export async function verifyFile(
  path: string,
  anchor?: ChainAnchor,
  options: { keys?: readonly Buffer[]; checkpoint?: ChainHead } = {},
): Promise<ChainReport> {
  const verifier = new ChainVerifier({ ...(anchor ? { anchor } : {}), ...options });
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
  for (const p of report.chainProblems) out.push(`problem: ${p}`);
  for (const g of verifyGuarantees(report)) out.push(`checked: ${g}`);
  if (report.ok) {
    out.push(`chain intact: ${report.records} record(s) in ${report.files.length} file(s)`);
  } else {
    const parts = [];
    const problemCount = report.problemCount + report.chainProblems.length;
    if (problemCount > 0) parts.push(`${problemCount} problem(s)`);
    if (report.unreadable > 0) parts.push(`${report.unreadable} unreadable file(s)`);
    out.push(`chain NOT intact: ${parts.join(', ')}; ${report.records} record(s) checked in ${report.files.length} file(s)`);
  }
  return `${out.join('\n')}\n`;
}

/**
 * Which guarantee the check gave, one sentence per kind of record found (and one for
 * the anchor): what an intact result rules out, for an operator deciding how far to
 * trust the trail.
 */
export function verifyGuarantees(report: VerifyReport): string[] {
  const out: string[] = [];
  const seqs = (s: SeqSpan | null): string => (s ? (s.first === s.last ? `seq ${s.first}` : `seq ${s.first}..${s.last}`) : '');
  if (report.unkeyed > 0) {
    out.push(`${report.unkeyed} unkeyed (SHA-256) record(s), ${seqs(report.unkeyedSeqs)}: detects accidental damage and edits that were not re-chained; ` +
      'anyone who can write the file can rewrite these records and re-chain them undetected');
  }
  const checked = report.keyed - report.keyedUnchecked;
  if (checked > 0) {
    out.push(`${checked} keyed (HMAC-SHA256) record(s), ${seqs(report.keyedSeqs)}: detects any edit, insertion or reordering, and any deletion ` +
      'between the first and the last record checked, by someone without the key; not records cut from either end (an anchor catches the last ones)');
  }
  if (report.keyedUnchecked > 0) {
    out.push(`${report.keyedUnchecked} keyed (HMAC-SHA256) record(s), ${seqs(report.keyedSeqs)}, NOT checked: no --key-file given, so only order, deletions and links were checked ` +
      '(like an unkeyed chain); give --key-file to check them');
  }
  const a = report.anchor;
  if (a) {
    if (a.state === 'matched') {
      out.push(`anchored at seq ${a.seq}: seq ${a.seq} has the link recorded elsewhere, so no record up to it was rewritten since` +
        `${report.unkeyed > 0 && report.keyed === 0 ? ' (even by someone who could re-chain the unkeyed records)' : ''}`);
    } else {
      out.push(`anchor seq ${a.seq}: ${a.state === 'mismatch' ? 'does NOT match (see the problem above)' : 'not found in the files checked'}`);
    }
  }
  const firstSeq = Math.min(report.keyedSeqs?.first ?? Infinity, report.unkeyedSeqs?.first ?? Infinity);
  if (Number.isFinite(firstSeq) && firstSeq > 1) {
    out.push(`records before seq ${firstSeq} not checked (rotated away, or cut from the start: the files alone cannot tell)`);
  }
  if (report.records === 0) out.push('no records');
  return out;
}
