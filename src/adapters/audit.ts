/**
 * The audit log: an append-only JSON-lines file, one record per state change, Redis role
 * command, VIP claim or release, dual-master resolution and configuration load. Each
 * record is written and fsynced before the next one starts, in order; `reopen()` (on
 * SIGHUP) closes and reopens the path so logrotate can move the file away.
 *
 * Records form a hash chain (`src/audit/chain.ts`): each carries `seq` and the `prev`
 * hash of the record before it, so `redis-ha audit verify` finds a line deleted, edited
 * or moved. The chain survives restarts and rotation:
 *   - `open()` reads only the tail of an existing file to find the last record and
 *     continues after it;
 *   - an empty or missing file (just rotated) continues from the head kept in memory;
 *     with none in memory (the daemon restarted before writing into the file logrotate
 *     `create`d), from the last record of the previous file, `<path>.1` (plain under
 *     `delaycompress`, else gzip, also as `<path>.1.gz`), so verify across the files
 *     sees one chain;
 *   - a last line that is not a record (a crash mid-write, a hand edit) never stops the
 *     daemon: the chain goes on from the last good record it knows (or from zeros) and
 *     an `audit-chain-restarted` record says why, so verify shows one explicit break.
 *
 * Keyed chain and anchors (issue 10, item 6): with `audit.key_file` set, records are
 * keyed (HMAC-SHA256 under that key, see `chain.ts`), so only the daemon can write a
 * record that verifies. The chain head (`seq:link`) is logged to the daemon log (the
 * journal), which the log's writers cannot rewrite: at open, at close, and within
 * `ANCHOR_INTERVAL_MS` of any record. `redis-ha audit verify --anchor SEQ:HASH` checks
 * the file against one of those lines.
 *
 * No request can blank or bloat a record: data that cannot be serialised, or whose
 * line would be over `MAX_RECORD_BYTES`, is written as a bounded, flattened copy
 * (`src/audit/bound.ts`) that keeps every top-level field it can, with `recordCut`
 * saying what was left out.
 *
 * Operational logs go through pino; this file is the durable trail an operator reads
 * after an incident, so a failed write is logged loudly but never stops the daemon.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createGunzip } from 'node:zlib';
import {
  CHAIN_RESTARTED_EVENT,
  formatRecord,
  GENESIS_HEAD,
  LineSplitter,
  parseLine,
  type ChainHead,
  type ChainedRecord,
  type ParsedRecordLine,
} from '../audit/chain.js';
import { flattenBounded, RECORD_LIMITS } from '../audit/bound.js';
import { readAuditKey } from '../audit/key.js';
import type { Logger } from '../logger.js';
import { errorMessage, EXIT_CONFIG, FatalError, RedisHaError } from '../errors.js';

/** One audit line: the chain's keys, wall-clock ISO 8601 `time`, and the event's own data. */
export type AuditRecord = ChainedRecord;

/** First tail window read from an existing file; doubled until it holds a whole line. */
const TAIL_WINDOW_BYTES = 64 * 1024;
/** Longest last line searched for; beyond this the tail counts as damaged (never read the whole file). */
const TAIL_MAX_BYTES = 16 * 1024 * 1024;
const NEWLINE = 0x0a;
/** The two bytes every gzip stream starts with (RFC 1952 §2.3.1). */
const GZIP_MAGIC = [0x1f, 0x8b] as const;
/** Where logrotate put the file before this one: plain first (delaycompress), then compressed. */
const PREVIOUS_SUFFIXES = ['.1', '.1.gz'] as const;
/** Largest record line written as it is; a larger one is written bounded (`RECORD_LIMITS`). */
export const MAX_RECORD_BYTES = 16 * 1024;
/** The chain head is logged at most this long after a record is written. */
export const ANCHOR_INTERVAL_MS = 60_000;

/** Options of `AuditLog`. */
export interface AuditLogOptions {
  /** Wall clock for the records' `time`; default `new Date()`. */
  readonly clock?: () => Date;
  /** The key of a keyed chain (`audit.key_file`); `null` or absent: unkeyed. */
  readonly key?: Buffer | null;
  /** How long after a record the chain head is logged at the latest; default `ANCHOR_INTERVAL_MS`. */
  readonly anchorIntervalMs?: number;
}

/** What the tail of an existing file says about the chain. */
type TailState =
  | { readonly kind: 'empty' }
  | { readonly kind: 'record'; readonly head: ChainHead; readonly edited: boolean; readonly keyed: boolean }
  | { readonly kind: 'damaged'; readonly reason: string; readonly lastGood: ChainHead | null };

/** Serialised appends with fsync; safe to call without awaiting (order is preserved). */
export class AuditLog {
  private handle: FileHandle | null = null;
  private queue: Promise<void> = Promise.resolve();
  private failures = 0;
  /** Records lost to failed writes since the last one that made it to the file. */
  private lost = 0;
  private chainHead: ChainHead = GENESIS_HEAD;
  /** A restart record to write before the next record (set by `open()` on a damaged tail). */
  private pendingRestart: Readonly<Record<string, unknown>> | null = null;
  private readonly clock: () => Date;
  private readonly key: Buffer | null;
  private readonly anchorIntervalMs: number;
  /** Pending log of the chain head after records were written; `null` when none is due. */
  private anchorTimer: NodeJS.Timeout | null = null;
  /** The head last logged, so an unchanged head is not logged again. */
  private anchoredSeq = -1;

  constructor(
    private readonly path: string,
    private readonly node: string,
    private readonly logger: Logger,
    options: AuditLogOptions | (() => Date) = {},
  ) {
    const o = typeof options === 'function' ? { clock: options } : options;
    this.clock = o.clock ?? (() => new Date());
    this.key = o.key ?? null;
    this.anchorIntervalMs = o.anchorIntervalMs ?? ANCHOR_INTERVAL_MS;
  }

  /**
   * The daemon's audit log from `audit.path` and `audit.key_file` ("" for none). Throws
   * `FatalError` when the key file is set but unusable (missing, readable by others, not a key).
   */
  static fromConfig(audit: { readonly path: string; readonly keyFile: string }, node: string, logger: Logger): AuditLog {
    let key: Buffer | null = null;
    if (audit.keyFile !== '') {
      try {
        key = readAuditKey(audit.keyFile, { what: 'audit.key_file', requirePrivate: true });
      } catch (error) {
        if (!(error instanceof RedisHaError)) throw error;
        throw new FatalError('AUDIT_KEY_INVALID', error.message, EXIT_CONFIG, { cause: error });
      }
    }
    return new AuditLog(audit.path, node, logger, { key });
  }

  /** The last record written (seq 0 and 64 zeros before the first one ever). */
  get head(): ChainHead {
    return this.chainHead;
  }

  /** Whether records are keyed (`audit.key_file` is set). */
  get keyed(): boolean {
    return this.key !== null;
  }

  /**
   * Opens (creating the directory if needed) for appending and recovers the chain head
   * from the file's tail. Throws if the path is unusable; a damaged file is not an error.
   */
  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o750 });
    await this.handle?.close().catch(() => undefined);
    this.handle = null;
    const handle = await open(this.path, 'a+', 0o640);
    try {
      await this.recoverHead(handle);
    } catch (error) {
      // Unreadable but writable: keep going on the head we know, and say so in the file.
      this.logger.warn({ err: error, path: this.path }, 'audit log tail unreadable');
      this.pendingRestart = { reason: `could not read the end of the existing file: ${errorMessage(error)}`, lastGoodSeq: this.chainHead.seq };
    }
    this.handle = handle;
    this.logAnchor('open');
  }

  /** Queues one record; resolves when it is on disk (or its write failed and was logged). */
  append(event: string, data: Readonly<Record<string, unknown>> = {}): Promise<void> {
    const time = this.clock().toISOString();
    this.queue = this.queue.then(async () => {
      let written = false;
      try {
        if (!this.handle) await this.open();
        if (this.pendingRestart) {
          await this.write(CHAIN_RESTARTED_EVENT, time, this.pendingRestart);
          this.pendingRestart = null;
        }
        if (this.lost > 0) {
          await this.write('audit-records-lost', time, { count: this.lost, reason: 'writes to the audit log failed (see the daemon log)' });
          this.lost = 0;
        }
        await this.write(event, time, data);
        written = true;
        await this.handle!.sync();
        this.scheduleAnchor();
      } catch (error) {
        this.failures++;
        if (!written) this.lost++;
        this.logger.error({ err: error, path: this.path, event, failures: this.failures }, 'audit write failed');
        // The file may now end in a partial line: reopen and let the tail decide where the chain stands.
        await this.handle?.close().catch(() => undefined);
        this.handle = null;
      }
    });
    return this.queue;
  }

  /** Closes and reopens the file after the queued records (log rotation). */
  reopen(): Promise<void> {
    this.queue = this.queue.then(async () => {
      try {
        await this.handle?.close();
        this.handle = null;
        await this.open();
        this.logger.info({ path: this.path, seq: this.chainHead.seq }, 'audit log reopened');
      } catch (error) {
        this.logger.error({ err: error, path: this.path }, 'audit log reopen failed');
      }
    });
    return this.queue;
  }

  /** Waits for queued records, then closes; the chain head goes to the daemon log (the last anchor). */
  async close(): Promise<void> {
    await this.queue;
    await this.handle?.close();
    this.handle = null;
    if (this.anchorTimer) clearTimeout(this.anchorTimer);
    this.anchorTimer = null;
    this.logAnchor('close');
  }

  /** Formats and appends one record (the caller fsyncs); advances the head only once the line is in the file. */
  private async write(event: string, time: string, data: Readonly<Record<string, unknown>>): Promise<void> {
    const header = { time, node: this.node, event };
    let formatted;
    let cutReason: string | null = null;
    try {
      formatted = formatRecord(this.chainHead, header, data, this.key);
      if (Buffer.byteLength(formatted.line) > MAX_RECORD_BYTES) cutReason = `larger than ${MAX_RECORD_BYTES} bytes`;
    } catch (error) {
      // A cycle, or nesting deeper than the stack: what can be kept is kept, flattened.
      cutReason = `not serialisable (${errorMessage(error)})`;
    }
    if (cutReason !== null || !formatted) {
      const bounded = flattenBounded(data, RECORD_LIMITS);
      formatted = formatRecord(this.chainHead, header, { ...bounded.value, recordCut: { reason: cutReason, ...bounded.cut } }, this.key);
      this.logger.warn({ event, reason: cutReason, cut: bounded.cut }, 'audit record written bounded');
    }
    await this.handle!.appendFile(`${formatted.line}\n`, 'utf8');
    this.chainHead = formatted.head;
  }

  /** Logs the head within `anchorIntervalMs` of a record: one line for a burst, none while idle. */
  private scheduleAnchor(): void {
    if (this.anchorTimer) return;
    this.anchorTimer = setTimeout(() => {
      this.anchorTimer = null;
      this.logAnchor('interval');
    }, this.anchorIntervalMs);
    this.anchorTimer.unref();
  }

  /**
   * The chain head for the daemon log (the journal): a line an operator can give to
   * `redis-ha audit verify --anchor`, kept where the audit file's writers cannot edit it.
   */
  private logAnchor(when: 'open' | 'interval' | 'close'): void {
    const { seq, hash } = this.chainHead;
    if (seq === 0 || seq === this.anchoredSeq) return;
    this.anchoredSeq = seq;
    this.logger.info({ anchor: `${seq}:${hash}`, seq, keyed: this.key !== null, when, path: this.path }, 'audit chain head');
  }

  private async recoverHead(handle: FileHandle): Promise<void> {
    const keys = this.key ? [this.key] : [];
    let tail = await readTailState(handle, keys);
    if (tail.kind === 'damaged' && tail.reason === TRUNCATED) {
      // Terminate the partial line so our first record starts on a line of its own.
      await handle.appendFile('\n', 'utf8');
      await handle.sync();
      tail = await readTailState(handle, keys);
      if (tail.kind === 'damaged') tail = { ...tail, reason: `${tail.reason} (${TRUNCATED})` };
    }
    switch (tail.kind) {
      case 'empty':
        // A new or just-rotated file: the chain continues from memory, else from the file before it.
        if (this.chainHead.seq === 0) await this.recoverFromPrevious();
        return;
      case 'record':
        if (tail.head.seq !== this.chainHead.seq && this.chainHead.seq !== 0) {
          this.logger.warn({ path: this.path, fileSeq: tail.head.seq, memorySeq: this.chainHead.seq }, 'audit log file ends elsewhere than expected');
        }
        // An edited last line still carries the hash the next record must chain onto; verify reports the edit.
        if (tail.edited) this.warnEdited(this.path, tail);
        this.noteMode(tail.keyed, tail.head.seq);
        this.chainHead = tail.head;
        return;
      case 'damaged': {
        const from = tail.lastGood ?? this.chainHead;
        this.logger.warn({ path: this.path, reason: tail.reason, seq: from.seq }, 'audit chain restarted');
        this.chainHead = from;
        this.pendingRestart = { reason: `the last line of the existing file is not a valid record: ${tail.reason}`, lastGoodSeq: from.seq };
        return;
      }
    }
  }

  /** A last record whose link does not match its text; a keyed one may also come from before a key change. */
  private warnEdited(path: string, tail: { readonly head: ChainHead; readonly keyed: boolean }): void {
    if (tail.keyed) this.logger.warn({ path, seq: tail.head.seq }, 'audit log last record was edited, or keyed with another key (a key change)');
    else this.logger.warn({ path, seq: tail.head.seq }, 'audit log last record was edited');
  }

  /** Logs a change of mode between the chain found and this writer: keyed from here on, or a downgrade verify will report. */
  private noteMode(tailKeyed: boolean, seq: number): void {
    if (tailKeyed && !this.key) {
      this.logger.warn({ path: this.path, seq }, 'audit chain is keyed but audit.key_file is not set: the next records are unkeyed, and audit verify reports a downgrade');
    } else if (!tailKeyed && this.key) {
      this.logger.info({ path: this.path, fromSeq: seq + 1 }, 'audit chain keyed from the next record on');
    }
  }

  /**
   * Takes the head from the last record of the rotated file before this one, when the
   * current file is empty and no head is held in memory (a restart right after
   * rotation). No rotated file: a new log, the chain starts at seq 1. An unreadable or
   * damaged one: the chain goes on from its last good record (or zeros) with a restart record.
   */
  private async recoverFromPrevious(): Promise<void> {
    let found: { path: string; tail: TailState } | null;
    try {
      found = await readPreviousTail(this.path, this.key ? [this.key] : []);
    } catch (error) {
      this.logger.warn({ err: error, path: this.path }, 'audit log previous file unreadable');
      this.pendingRestart = { reason: `the file is empty and the end of the rotated file before it could not be read: ${errorMessage(error)}`, lastGoodSeq: 0 };
      return;
    }
    if (found === null) return;
    const { path, tail } = found;
    switch (tail.kind) {
      case 'empty':
        return;
      case 'record':
        if (tail.edited) this.warnEdited(path, tail);
        this.noteMode(tail.keyed, tail.head.seq);
        this.chainHead = tail.head;
        this.logger.info({ path: this.path, from: path, seq: tail.head.seq }, 'audit chain continued from the rotated file');
        return;
      case 'damaged': {
        const from = tail.lastGood ?? GENESIS_HEAD;
        this.logger.warn({ path, reason: tail.reason, seq: from.seq }, 'audit chain restarted');
        this.chainHead = from;
        this.pendingRestart = { reason: `the file is empty and the last line of the rotated file ${path} is not a valid record: ${tail.reason}`, lastGoodSeq: from.seq };
        return;
      }
    }
  }
}

const TRUNCATED = 'the file does not end with a newline (a write was interrupted)';

/**
 * The tail of the first rotated sibling of `path` that exists, with its path; `null`
 * when there is none. Plain text is read from its end; gzip (by content, not name) is
 * streamed through zlib keeping only the last lines, so memory stays bounded by a line.
 */
async function readPreviousTail(path: string, keys: readonly Buffer[]): Promise<{ path: string; tail: TailState } | null> {
  for (const suffix of PREVIOUS_SUFFIXES) {
    const previous = `${path}${suffix}`;
    let handle: FileHandle;
    try {
      handle = await open(previous, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    try {
      const magic = Buffer.alloc(GZIP_MAGIC.length);
      const { bytesRead } = await handle.read(magic, 0, magic.length, 0);
      const gzip = bytesRead === magic.length && magic[0] === GZIP_MAGIC[0] && magic[1] === GZIP_MAGIC[1];
      return { path: previous, tail: gzip ? await readGzipTailState(previous, keys) : await readTailState(handle, keys) };
    } finally {
      await handle.close();
    }
  }
  return null;
}

/** `readTailState` for a gzip file: decompressed as a stream, remembering the last line and the last good record. */
async function readGzipTailState(path: string, keys: readonly Buffer[]): Promise<TailState> {
  const raw = createReadStream(path);
  const gunzip = createGunzip();
  raw.on('error', (error) => gunzip.destroy(error));
  const splitter = new LineSplitter(TAIL_MAX_BYTES);
  let lastLine: string | null = null;
  let lastGood: ChainHead | null = null;
  for await (const chunk of raw.pipe(gunzip) as AsyncIterable<Buffer>) {
    const lines: string[] = [];
    splitter.push(chunk, (line) => lines.push(line));
    for (const line of lines) {
      if (lastLine !== null) lastGood = headOf(lastLine) ?? lastGood;
      lastLine = line;
    }
  }
  if (splitter.pending) return { kind: 'damaged', reason: TRUNCATED, lastGood: (lastLine === null ? null : headOf(lastLine)) ?? lastGood };
  if (lastLine === null) return { kind: 'empty' };
  const parsed = parseLine(lastLine, keys);
  if (parsed.ok) return recordTail(parsed);
  return { kind: 'damaged', reason: parsed.reason, lastGood };
}

/** The tail state of a last line that is a record; an unchecked keyed record (no key) counts as unedited. */
function recordTail(parsed: ParsedRecordLine): TailState {
  const edited = parsed.computedHash !== null && parsed.hash !== parsed.computedHash;
  return { kind: 'record', head: { seq: parsed.record.seq, hash: parsed.hash }, edited, keyed: parsed.keyed };
}

/** The chain head a line carries, if it is a record. */
function headOf(line: string): ChainHead | null {
  const parsed = parseLine(line);
  return parsed.ok ? { seq: parsed.record.seq, hash: parsed.hash } : null;
}


/**
 * Reads only the end of the file: the last complete line, growing the window while the
 * line is longer than it, and the last good record within the window if that line is damaged.
 */
async function readTailState(handle: FileHandle, keys: readonly Buffer[]): Promise<TailState> {
  const { size } = await handle.stat();
  if (size === 0) return { kind: 'empty' };
  const last = Buffer.alloc(1);
  await handle.read(last, 0, 1, size - 1);
  if (last[0] !== NEWLINE) return { kind: 'damaged', reason: TRUNCATED, lastGood: null };
  for (let window = TAIL_WINDOW_BYTES; ; window *= 2) {
    const start = Math.max(0, size - window);
    const buffer = Buffer.alloc(size - start);
    await readFully(handle, buffer, start);
    // Lines of the window, the trailing '' dropped; the first is partial unless the window starts the file.
    const lines = buffer.toString('utf8').split('\n').slice(0, -1);
    const complete = start === 0 ? lines : lines.slice(1);
    if (complete.length === 0) {
      if (window >= TAIL_MAX_BYTES) return { kind: 'damaged', reason: `last line longer than ${TAIL_MAX_BYTES} bytes`, lastGood: null };
      continue;
    }
    const parsed = parseLine(complete[complete.length - 1]!, keys);
    if (parsed.ok) return recordTail(parsed);
    let lastGood: ChainHead | null = null;
    for (let i = complete.length - 2; i >= 0 && !lastGood; i--) {
      const earlier = parseLine(complete[i]!);
      if (earlier.ok) lastGood = { seq: earlier.record.seq, hash: earlier.hash };
    }
    return { kind: 'damaged', reason: parsed.reason, lastGood };
  }
}

async function readFully(handle: FileHandle, buffer: Buffer, position: number): Promise<void> {
  for (let offset = 0; offset < buffer.length; ) {
    const { bytesRead } = await handle.read(buffer, offset, buffer.length - offset, position + offset);
    if (bytesRead === 0) throw new Error('audit log shrank while its tail was read');
    offset += bytesRead;
  }
}
