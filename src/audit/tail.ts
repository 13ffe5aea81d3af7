/**
 * `redis-ha audit tail`: the last records of the audit log, read backwards from the end
 * (the file can be large), and `--follow`, which polls for new lines like `tail -F`:
 *
 *   1. lines appended to the file are passed on once complete (a line being written
 *      is held until its newline arrives);
 *   2. rotation (the path now names another inode) is detected: what the daemon still
 *      wrote to the old file before its SIGHUP is read first, then the new file from
 *      its start;
 *   3. truncation in place (the file shrank, `copytruncate`) restarts at offset 0;
 *   4. a missing file (between rotation and re-creation) is waited for.
 * Memory is bounded: one read chunk plus at most one unfinished line.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { LineSplitter } from './chain.js';

/** Records `redis-ha audit tail` prints without `--lines`. */
export const DEFAULT_TAIL_LINES = 10;

/** Bytes read per call, backwards for `tail` and forwards for `follow`. */
const CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/** A place in a file: which file (inode) and the byte offset just after a complete line. */
export interface FilePosition {
  readonly ino: number;
  readonly offset: number;
}

/** The last complete lines and where they end (a partial line being written is left out). */
export interface TailResult {
  readonly lines: readonly string[];
  readonly position: FilePosition;
}

/**
 * Reads the last `n` complete lines of `path` from the end, chunk by chunk, and the
 * position after them (where following should start). Throws if the file cannot be read.
 */
export async function readTail(path: string, n: number): Promise<TailResult> {
  const handle = await open(path, 'r');
  try {
    const { size, ino } = await handle.stat();
    const parts: Buffer[] = [];
    let newlines = 0;
    let pos = size;
    // n lines need n + 1 newlines: the one ending each line, and the one before the first.
    while (pos > 0 && newlines < n + 1) {
      const len = Math.min(CHUNK_BYTES, pos);
      pos -= len;
      const chunk = Buffer.alloc(len);
      await readAt(handle, chunk, pos);
      parts.unshift(chunk);
      for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) newlines++;
    }
    const data = Buffer.concat(parts);
    const lastNewline = data.lastIndexOf(NEWLINE);
    if (lastNewline === -1) return { lines: [], position: { ino, offset: pos } };
    const lines = data.subarray(0, lastNewline).toString('utf8').split('\n');
    // Unless the read reached the start of the file, the first piece is the end of an earlier line.
    if (pos > 0) lines.shift();
    return { lines: n > 0 ? lines.slice(-n) : [], position: { ino, offset: pos + lastNewline + 1 } };
  } finally {
    await handle.close();
  }
}

/** The last `n` complete records (raw lines, oldest first) of `path`. */
export async function tailRecords(path: string, n: number): Promise<string[]> {
  return [...(await readTail(path, n)).lines];
}

/** The file being followed. */
interface Followed {
  readonly handle: FileHandle;
  readonly ino: number;
  offset: number;
}

/**
 * Calls `onLine` for every line appended to `path` from `from` (default: the end of the
 * last complete line now), surviving rotation and truncation, until `signal` aborts.
 * Resolves on abort; rejects on an error other than the file being absent.
 */
export async function followRecords(
  path: string,
  onLine: (line: string) => void,
  signal: AbortSignal,
  pollMs = 500,
  from?: FilePosition,
): Promise<void> {
  const splitter = new LineSplitter();
  const emit = (line: string): void => {
    if (!signal.aborted) onLine(line);
  };
  let current: Followed | null = null;
  let start: FilePosition | null = from ?? null;
  if (!from) {
    try {
      start = (await readTail(path, 0)).position;
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }

  /** Reads from the offset to the end of the followed file. */
  const drain = async (f: Followed): Promise<void> => {
    const chunk = Buffer.alloc(CHUNK_BYTES);
    while (!signal.aborted) {
      const { bytesRead } = await f.handle.read(chunk, 0, CHUNK_BYTES, f.offset);
      if (bytesRead === 0) return;
      f.offset += bytesRead;
      splitter.push(chunk.subarray(0, bytesRead), emit);
    }
  };

  const openPath = async (): Promise<Followed | null> => {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
    const { ino } = await handle.stat();
    // The start position only applies to the file it was taken from; a newer file is read whole.
    const offset = start && start.ino === ino ? start.offset : 0;
    start = null;
    return { handle, ino, offset };
  };

  const poll = async (): Promise<void> => {
    current ??= await openPath();
    if (!current) return;
    await drain(current);
    let now;
    try {
      now = await stat(path);
    } catch (error) {
      // Rotated away and not re-created yet: keep the old file, the daemon may still write to it.
      if (isMissing(error)) return;
      throw error;
    }
    if (now.ino !== current.ino) {
      await drain(current);
      // A line the old file never finished: pass it on as it is rather than glue it to the new file's first.
      if (splitter.pending) emit(splitter.rest());
      await current.handle.close();
      current = await openPath();
      if (current) await drain(current);
    } else if (now.size < current.offset) {
      splitter.rest();
      current.offset = 0;
      await drain(current);
    }
  };

  try {
    while (!signal.aborted) {
      await poll();
      try {
        await sleep(pollMs, undefined, { signal });
      } catch (error) {
        if (signal.aborted) break;
        throw error;
      }
    }
  } finally {
    await (current as Followed | null)?.handle.close();
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

async function readAt(handle: FileHandle, buffer: Buffer, position: number): Promise<void> {
  for (let offset = 0; offset < buffer.length; ) {
    const { bytesRead } = await handle.read(buffer, offset, buffer.length - offset, position + offset);
    if (bytesRead === 0) throw new Error('file shrank while it was read');
    offset += bytesRead;
  }
}
