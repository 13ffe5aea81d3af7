/**
 * The audit record format: a hash chain over JSON lines. Pure: no I/O, no clock.
 *
 * Every line is built in one way only (`formatRecord`), unkeyed or keyed:
 *
 *   body = JSON.stringify({ seq, time, node, event, ...data, prev })
 *   unkeyed: hash = sha256hex(body)              line = body with its final "}" replaced by ',"hash":"<hash>"}'
 *   keyed:   hmac = HMAC-SHA256(key, body) hex   line = body with its final "}" replaced by ',"hmac":"<hmac>"}'
 *
 * `seq` is 1 + the previous record's seq (1 for the first record ever) and `prev` the
 * previous record's `hash` or `hmac` (its link; 64 zeros for the very first). Because
 * the link is always the last key, the hashed text is recovered by cutting that suffix
 * off again, never by re-serialising (key order, number formatting and escapes stay
 * exactly as written).
 *
 * What each mode guarantees (issue 10, item 6):
 *   - unkeyed: anyone who can write the file can edit a record and re-chain every record
 *     after it; `verify` then finds nothing. It detects accidental damage and edits
 *     that were not re-chained.
 *   - keyed (`audit.key_file`): the link needs the key, which only the daemon (and
 *     whoever verifies) holds, so any edit, deletion or insertion by someone without the
 *     key shows. A keyed record followed by an unkeyed one is reported (`downgrade`):
 *     someone without the key can only rewrite records as unkeyed.
 *   - either mode, anchored: a `seq:link` pair kept elsewhere (the daemon logs it to
 *     the journal) fixes every record up to that seq, since each link covers the one before.
 *
 * What the chain detects, and how `ChainVerifier` words it:
 *   1. a line edited in place           -> its hash no longer matches its text;
 *   2. a line deleted                   -> the next line's seq jumps and its prev is wrong;
 *   3. lines swapped or duplicated      -> seq goes back and prev is wrong;
 *   4. a write interrupted by a crash   -> the file ends without a newline.
 * A file that starts mid-chain (the older part was rotated away) is accepted as it is,
 * unless the caller knows where the chain stood (`anchor`), e.g. the end of the previous file.
 */
import { createHash, createHmac } from 'node:crypto';
import { errorMessage } from '../errors.js';

/** `prev` of the very first record: 64 zero hex digits. */
export const GENESIS_HASH = '0'.repeat(64);

/** Where a chain stands before its first record. */
export const GENESIS_HEAD: ChainHead = Object.freeze({ seq: 0, hash: GENESIS_HASH });

/** Keys the format owns; the same keys in an event's data are renamed with `RESERVED_PREFIX`. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set(['seq', 'time', 'node', 'event', 'prev', 'hash', 'hmac']);

/** Prefix given to a data key that collides with a reserved key (`seq` -> `data_seq`). */
export const RESERVED_PREFIX = 'data_';

/** Event of the record the writer appends when it cannot continue the chain it found. */
export const CHAIN_RESTARTED_EVENT = 'audit-chain-restarted';

/** Most problems a report keeps; the rest are only counted (a garbage file must not exhaust memory). */
export const MAX_REPORTED_PROBLEMS = 1000;

const HASH_PATTERN = /^[0-9a-f]{64}$/;
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;
const HMAC_SUFFIX = /,"hmac":"([0-9a-f]{64})"\}$/;
/** Leading characters of a hash shown in messages. */
const SHORT_HASH_CHARS = 12;

/** The end of a chain: the last record's seq and link (its `hash`, or its `hmac` when keyed). */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** One audit record as written: the format's keys plus the event's own data. */
export interface ChainedRecord {
  readonly seq: number;
  readonly time: string;
  readonly node: string;
  readonly event: string;
  readonly prev: string;
  /** The link of an unkeyed record (SHA-256). */
  readonly hash?: string;
  /** The link of a keyed record (HMAC-SHA256). */
  readonly hmac?: string;
  readonly [field: string]: unknown;
}

/** The parts of a record that are not data. */
export interface RecordHeader {
  /** Wall-clock ISO 8601. */
  readonly time: string;
  readonly node: string;
  readonly event: string;
}

/** A formatted record: the line (without its newline) and the chain head after it. */
export interface FormattedRecord {
  readonly line: string;
  readonly head: ChainHead;
}

// C0 controls, DEL, C1 controls and the Unicode line/paragraph separators.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
/** Longest parser message kept in a reason (V8 quotes the offending text). */
const MAX_REASON_DETAIL_CHARS = 200;

/** `text` with control characters written as `\uXXXX`, so printing it cannot drive a terminal. */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** SHA-256 of the UTF-8 text, as 64 lowercase hex digits. */
export function sha256hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** HMAC-SHA256 of the UTF-8 text under `key`, as 64 lowercase hex digits. */
export function hmacHex(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text, 'utf8').digest('hex');
}

/**
 * Renames data keys that collide with the format's own keys, so an event can never
 * forge `seq`, `prev` or `hash`: `seq` becomes `data_seq` (`data_data_seq` if that is
 * taken too). Built with `Object.fromEntries`, so even a `__proto__` key stays plain data.
 */
export function sanitiseData(data: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const keys = Object.keys(data);
  if (!keys.some((k) => RESERVED_KEYS.has(k))) return data as Record<string, unknown>;
  const taken = new Set(keys.filter((k) => !RESERVED_KEYS.has(k)));
  const entries: [string, unknown][] = [];
  for (const key of keys) {
    let name = key;
    while (RESERVED_KEYS.has(name) || (name !== key && taken.has(name))) name = `${RESERVED_PREFIX}${name}`;
    taken.add(name);
    entries.push([name, data[key]]);
  }
  return Object.fromEntries(entries);
}

/** BigInts are written as decimal strings instead of making `JSON.stringify` throw. */
function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * Formats the record that follows `head`: keyed (an `hmac` link) when `key` is given,
 * else unkeyed (a `hash` link). Throws only if `data` cannot be serialised at all (a
 * cycle, nesting deeper than the stack); the caller decides what to write instead.
 */
export function formatRecord(
  head: ChainHead,
  header: RecordHeader,
  data: Readonly<Record<string, unknown>> = {},
  key: Buffer | null = null,
): FormattedRecord {
  const seq = head.seq + 1;
  const fields = { seq, time: header.time, node: header.node, event: header.event, ...sanitiseData(data), prev: head.hash };
  const body = JSON.stringify(fields, replacer);
  const link = key ? hmacHex(key, body) : sha256hex(body);
  return { line: `${body.slice(0, -1)},"${key ? 'hmac' : 'hash'}":"${link}"}`, head: { seq, hash: link } };
}

/** A line that holds a record: its claimed link and the link its text computes to (they differ if it was edited). */
export interface ParsedRecordLine {
  readonly ok: true;
  readonly record: ChainedRecord;
  /** The link as written: the `hash` field, or the `hmac` field of a keyed record. */
  readonly hash: string;
  /** Whether the record is keyed (its link is an `hmac`). */
  readonly keyed: boolean;
  /**
   * The link the text computes to: SHA-256 for an unkeyed record; for a keyed one the
   * HMAC under the key that matches (else under the first key given), or `null` when
   * no key was given (a keyed record cannot be checked without it).
   */
  readonly computedHash: string | null;
}

/** A line that is not a record, and why. */
export interface MalformedLine {
  readonly ok: false;
  readonly reason: string;
}

export type ParsedLine = ParsedRecordLine | MalformedLine;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses one line (without its newline). Never throws. `keys` are tried on a keyed
 * record (several: across a key change); an unkeyed record needs none.
 */
export function parseLine(line: string, keys: readonly Buffer[] = []): ParsedLine {
  if (line.length === 0) return { ok: false, reason: 'empty line' };
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    const detail = escapeControls(errorMessage(error));
    const cut = detail.length > MAX_REASON_DETAIL_CHARS ? `${detail.slice(0, MAX_REASON_DETAIL_CHARS)}…` : detail;
    return { ok: false, reason: `malformed JSON (${cut})` };
  }
  if (!isObject(value)) return { ok: false, reason: 'malformed record: not a JSON object' };
  // The last key decides the mode: a data key called `hash` or `hmac` is renamed by the writer.
  const keyed = HMAC_SUFFIX.test(line) || (!HASH_SUFFIX.test(line) && 'hmac' in value && !('hash' in value));
  const field = keyed ? 'hmac' : 'hash';
  if (!(field in value)) return { ok: false, reason: 'missing hash field' };
  const hash = value[field];
  if (typeof hash !== 'string' || !HASH_PATTERN.test(hash)) return { ok: false, reason: `invalid ${field} field: expected 64 lowercase hex digits` };
  const suffix = (keyed ? HMAC_SUFFIX : HASH_SUFFIX).exec(line);
  if (!suffix || suffix[1] !== hash) {
    return { ok: false, reason: `invalid ${field} field: not the last key of the line (the line was rewritten)` };
  }
  const body = `${line.slice(0, suffix.index)}}`;
  let computedHash: string | null;
  if (!keyed) computedHash = sha256hex(body);
  else if (keys.length === 0) computedHash = null;
  else computedHash = keys.map((key) => hmacHex(key, body)).find((mac) => mac === hash) ?? hmacHex(keys[0]!, body);
  const structural = structureProblem(value);
  if (structural) {
    // A line our writer produced always has these; with a matching link this cannot happen.
    const edited = computedHash === null || computedHash === hash ? '' : ` (and its ${field} does not match: the line was edited)`;
    return { ok: false, reason: `malformed record: ${structural}${edited}` };
  }
  return { ok: true, record: value as ChainedRecord, hash, keyed, computedHash };
}

function structureProblem(value: Record<string, unknown>): string | null {
  const seq = value['seq'];
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return 'seq is not a positive integer';
  const prev = value['prev'];
  if (typeof prev !== 'string' || !HASH_PATTERN.test(prev)) return 'prev is not 64 lowercase hex digits';
  for (const key of ['time', 'node', 'event'] as const) {
    if (typeof value[key] !== 'string') return `${key} is not a string`;
  }
  return null;
}

/** What kind of damage a problem is. */
export type ProblemKind =
  | 'malformed'      // not a record at all (bad JSON, missing or invalid hash, empty line)
  | 'hash-mismatch'  // the line's text was edited after it was written
  | 'deleted'        // seq jumps forward: records are missing before this line
  | 'reordered'      // seq goes back: records swapped, duplicated or out of order
  | 'broken-link'    // seq is right but prev is not the previous record's hash
  | 'downgrade'      // an unkeyed record after a keyed one: rewritten without the key
  | 'anchor'         // the record at an anchor's seq does not have the anchor's link
  | 'truncated';     // the last line has no newline: a write was interrupted

/** One problem, at a 1-based line number. */
export interface ChainProblem {
  readonly line: number;
  readonly kind: ProblemKind;
  readonly reason: string;
}

/** A record the daemon wrote when it could not continue the chain it found. */
export interface ChainRestart {
  readonly line: number;
  readonly seq: number;
  readonly reason: string;
}

/** The result of checking one chain segment (one file). */
export interface ChainReport {
  /** Lines read, including damaged ones and a truncated last line. */
  readonly lines: number;
  /** Records checked (lines that parsed as records, whether or not their hash matched). */
  readonly records: number;
  readonly first: { readonly seq: number; readonly time: string } | null;
  readonly last: { readonly seq: number; readonly time: string; readonly hash: string; readonly keyed: boolean } | null;
  /** Keyed records, and the seq of the first and last of them (`null`: none). */
  readonly keyed: number;
  readonly keyedSeqs: SeqSpan | null;
  /** Keyed records whose HMAC could not be checked because no key was given. */
  readonly keyedUnchecked: number;
  /** Unkeyed records, and the seq of the first and last of them (`null`: none). */
  readonly unkeyed: number;
  readonly unkeyedSeqs: SeqSpan | null;
  /** Whether the record at the checkpoint's seq had the checkpoint's link; `null`: not in this segment. */
  readonly checkpoint: 'matched' | 'mismatch' | null;
  /** At most `MAX_REPORTED_PROBLEMS`, in line order. */
  readonly problems: readonly ChainProblem[];
  /** All problems found, including those not kept in `problems`. */
  readonly problemCount: number;
  readonly restarts: readonly ChainRestart[];
  /**
   * Where the chain ends, for checking that the next file continues it; `null` when the
   * segment ends in a damaged line (nothing to anchor on) or holds no records.
   */
  readonly head: ChainHead | null;
}

/** Lowest and highest seq of some records. */
export interface SeqSpan {
  readonly first: number;
  readonly last: number;
}

/** Where the first record must chain onto, and how to name that place in messages. */
export interface ChainAnchor extends ChainHead {
  /** E.g. "the last record of audit.jsonl.1"; default "the anchor". */
  readonly description?: string;
  /** Whether that record was keyed, so an unkeyed first record is reported as a downgrade. */
  readonly keyed?: boolean;
}

/** What `ChainVerifier` checks besides the links. */
export interface ChainVerifierOptions {
  /** Where the first record must chain onto (the end of the previous file). */
  readonly anchor?: ChainAnchor;
  /** Keys to check keyed records with; without any, their HMACs are not checked. */
  readonly keys?: readonly Buffer[];
  /** A head kept elsewhere (`audit verify --anchor SEQ:HASH`): the record with that seq must have that link. */
  readonly checkpoint?: ChainHead;
}

function short(hash: string): string {
  return `${hash.slice(0, SHORT_HASH_CHARS)}…`;
}

function span(current: SeqSpan | null, seq: number): SeqSpan {
  return current ? { first: Math.min(current.first, seq), last: Math.max(current.last, seq) } : { first: seq, last: seq };
}

/**
 * Checks a chain one line at a time, so a large (or gunzipped) file is verified with
 * memory bounded by its longest line. Feed every newline-terminated line to `line()`,
 * then call `end()` with whatever followed the last newline.
 */
export class ChainVerifier {
  private lineNo = 0;
  private records = 0;
  private first: ChainReport['first'] = null;
  private last: ChainReport['last'] = null;
  private readonly problems: ChainProblem[] = [];
  private problemCount = 0;
  private readonly restarts: ChainRestart[] = [];
  /** The record the next one must chain onto; `null` after damage, when the next record re-anchors. */
  private previous: { seq: number; hash: string; line: number } | null = null;
  /** The caller's anchor, checked against the first record only. */
  private anchor: ChainAnchor | null;
  private endsDamaged = false;
  private readonly keys: readonly Buffer[];
  private readonly checkpoint: ChainHead | null;
  private checkpointState: ChainReport['checkpoint'] = null;
  /** Whether the last record seen (across damage, and before this segment) was keyed. */
  private lastKeyed: boolean;
  private keyed = 0;
  private keyedSeqs: SeqSpan | null = null;
  private keyedUnchecked = 0;
  private unkeyed = 0;
  private unkeyedSeqs: SeqSpan | null = null;

  constructor(options: ChainVerifierOptions = {}) {
    this.anchor = options.anchor ?? null;
    this.keys = options.keys ?? [];
    this.checkpoint = options.checkpoint ?? null;
    this.lastKeyed = options.anchor?.keyed ?? false;
  }

  /** Checks one complete (newline-terminated) line, given without its newline. */
  line(text: string): void {
    this.lineNo++;
    const parsed = parseLine(text, this.keys);
    if (!parsed.ok) {
      this.problem('malformed', parsed.reason);
      // Empty lines carry no record and do not hide one: keep checking against the record before.
      if (text.length > 0) {
        this.previous = null;
        this.anchor = null;
        this.endsDamaged = true;
      }
      return;
    }
    const { record, hash, computedHash, keyed } = parsed;
    this.records++;
    if (keyed) {
      this.keyed++;
      this.keyedSeqs = span(this.keyedSeqs, record.seq);
      if (computedHash === null) {
        this.keyedUnchecked++;
      } else if (hash !== computedHash) {
        this.problem('hash-mismatch', `hmac mismatch: the line was edited after it was written, or keyed with another key than those given (hmac field ${short(hash)}, text computes to ${short(computedHash)})`);
      }
    } else {
      this.unkeyed++;
      this.unkeyedSeqs = span(this.unkeyedSeqs, record.seq);
      if (hash !== computedHash) {
        this.problem('hash-mismatch', `hash mismatch: the line was edited after it was written (hash field ${short(hash)}, text hashes to ${short(computedHash ?? '')})`);
      }
      if (this.lastKeyed) {
        this.problem('downgrade', `seq ${record.seq} is unkeyed (SHA-256) but the record before it is keyed (HMAC): ` +
          'records were rewritten by someone without the key, or the daemon was started without its audit.key_file');
      }
    }
    this.lastKeyed = keyed;
    if (this.checkpoint && record.seq === this.checkpoint.seq) {
      if (hash === this.checkpoint.hash) {
        this.checkpointState ??= 'matched';
      } else {
        this.checkpointState = 'mismatch';
        this.problem('anchor', `seq ${record.seq} has the link ${short(hash)} but the anchor says ${short(this.checkpoint.hash)}: ` +
          `this record, or one before it, was rewritten after the anchor was taken`);
      }
    }
    if (this.previous) {
      this.checkLink(record, hash, this.previous.seq, this.previous.hash, `line ${this.previous.line}`);
    } else if (this.anchor) {
      this.checkLink(record, hash, this.anchor.seq, this.anchor.hash, this.anchor.description ?? 'the anchor');
    } else if (record.prev === GENESIS_HASH && record.seq !== 1) {
      this.problem('broken-link', `seq ${record.seq} starts a new chain (prev is all zeros) but a chain starts at seq 1`);
    }
    this.anchor = null;
    if (record.event === CHAIN_RESTARTED_EVENT) {
      this.restarts.push({ line: this.lineNo, seq: record.seq, reason: typeof record['reason'] === 'string' ? record['reason'] : '(no reason given)' });
    }
    // The claimed hash is what the next record's prev was computed from, so an edited line is one problem, not two.
    this.previous = { seq: record.seq, hash, line: this.lineNo };
    this.endsDamaged = false;
    this.first ??= { seq: record.seq, time: record.time };
    this.last = { seq: record.seq, time: record.time, hash, keyed };
  }

  /** Finishes with the text after the last newline (`''` if the input ended with one) and returns the report. */
  end(trailing = ''): ChainReport {
    if (trailing.length > 0) {
      this.lineNo++;
      this.problem('truncated', 'truncated last record (a write was interrupted)');
      this.endsDamaged = true;
    }
    return {
      lines: this.lineNo,
      records: this.records,
      first: this.first,
      last: this.last,
      keyed: this.keyed,
      keyedSeqs: this.keyedSeqs,
      keyedUnchecked: this.keyedUnchecked,
      unkeyed: this.unkeyed,
      unkeyedSeqs: this.unkeyedSeqs,
      checkpoint: this.checkpointState,
      problems: [...this.problems],
      problemCount: this.problemCount,
      restarts: [...this.restarts],
      head: this.endsDamaged || !this.last ? null : { seq: this.last.seq, hash: this.last.hash },
    };
  }

  /** Checks that `record` follows the record with `seq` and `prevHash`, found at `where`. */
  private checkLink(record: ChainedRecord, hash: string, seq: number, prevHash: string, where: string): void {
    const linked = record.prev === prevHash;
    if (record.seq === seq + 1) {
      if (!linked) {
        this.problem('broken-link', `prev ${short(record.prev)} is not the hash of the record before (${where}, seq ${seq}, hash ${short(prevHash)}): ` +
          'a record was deleted, inserted or reordered before this line');
      }
      return;
    }
    if (record.seq > seq + 1) {
      const missing = record.seq - seq - 1;
      this.problem('deleted', `seq jumps from ${seq} (${where}) to ${record.seq}: ${missing} record(s) deleted before this line`);
      return;
    }
    const duplicate = hash === prevHash ? ': a duplicate of the line before' : '';
    const move = record.seq === seq ? `seq ${seq} repeats (${where})` : `seq goes back from ${seq} (${where}) to ${record.seq}`;
    this.problem('reordered', `${move}: records reordered/duplicated${duplicate}`);
  }

  private problem(kind: ProblemKind, reason: string): void {
    this.problemCount++;
    if (this.problems.length < MAX_REPORTED_PROBLEMS) this.problems.push({ line: this.lineNo, kind, reason });
  }
}

/**
 * Verifies a chain given as the text split on "\n": the last element is what followed
 * the last newline, so `''` for a complete file and a non-empty string for a truncated
 * last record (`text.split('\n')` gives exactly this).
 */
export function verifyLines(lines: readonly string[], options: ChainVerifierOptions = {}): ChainReport {
  const verifier = new ChainVerifier(options);
  const count = lines.length;
  for (let i = 0; i < count - 1; i++) verifier.line(lines[i]!);
  return verifier.end(count > 0 ? lines[count - 1] : '');
}

/** Longest line kept whole when splitting bytes into lines; a longer one is cut there (and then fails to parse). */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;
const NEWLINE = 0x0a;

/**
 * Splits a byte stream into lines on "\n", whatever the chunk boundaries, holding at
 * most `maxLineBytes` of the unfinished line: memory stays bounded by one line.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  /** Calls `onLine` (without the newline) for every line `chunk` completes. */
  push(chunk: Buffer, onLine: (line: string) => void): void {
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      this.keep(chunk.subarray(start, nl));
      onLine(this.rest());
      start = nl + 1;
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
  }

  /** Whether bytes after the last newline are held. */
  get pending(): boolean {
    return this.bytes > 0 || this.parts.length > 0;
  }

  /** The text after the last newline (`''` if none), which is then forgotten. */
  rest(): string {
    const text = Buffer.concat(this.parts).toString('utf8');
    this.parts = [];
    this.bytes = 0;
    return text;
  }

  private keep(part: Buffer): void {
    const room = this.maxLineBytes - this.bytes;
    if (room <= 0 || part.length === 0) return;
    // Copied: a stream may reuse the chunk's memory after we return.
    const kept = Buffer.from(part.length > room ? part.subarray(0, room) : part);
    this.parts.push(kept);
    this.bytes += kept.length;
  }
}
