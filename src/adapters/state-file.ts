/**
 * A small JSON file that outlives the process: the promotion epochs (so a restarted
 * node still knows how recent its last mastership was), the last boot time (so a
 * restart after a backwards clock step still gets a larger boot time and its adverts
 * are not rejected as stale by the peer's replay guard), the maintenance flag, the
 * switchovers this node took part in (a replayed `handover` for one of them is refused
 * after a restart too), and the last `(boot time, sequence)` accepted from the peer (see
 * `src/proto/admission.ts`).
 *
 * Written atomically: a temporary file, fsync, rename, fsync of the directory.
 *
 * Read strictly: the file must be a JSON object whose every known field has its type
 * and range; anything else (`[]`, `42`, `null`, an epoch above the ceiling, a negative
 * generation) is refused with a message naming the field, what was expected and what
 * was found, never read as zero: a node that silently forgot its epoch could win an
 * election with older data.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EPOCH_CEILING } from '../core/epoch.js';
import { MAX_REMEMBERED_SWITCHOVERS } from '../core/common.js';
import { errorMessage, RedisHaError } from '../errors.js';
import type { PeerSeen } from '../proto/admission.js';
import { MAX_BOOT_TIME_MS, MAX_SEQ, nodeNameProblem } from '../proto/advert.js';
import { REQUEST_ID_PATTERN } from '../proto/message.js';

export interface PersistedState {
  readonly epoch: number;
  readonly knownEpoch: number;
  readonly bootTimeMs: number;
  /** The pair-wide maintenance flag and its generation (absent in older files: off). */
  readonly maintenance: { readonly on: boolean; readonly gen: number };
  /** Switchovers this node took part in, most recent last (absent in older files: none). */
  readonly switchoverIds: readonly string[];
  /** The last packet accepted from the peer (absent in older files, or before any). */
  readonly peer: PeerSeen | null;
}

const EMPTY: PersistedState = {
  epoch: 0, knownEpoch: 0, bootTimeMs: 0, maintenance: { on: false, gen: 0 }, switchoverIds: [], peer: null,
};

/** Largest state file read; a real one is under 2 KiB. */
const MAX_STATE_BYTES = 64 * 1024;

/** Reads the state file; a missing file is a fresh node. A corrupt one is an error, not silently zero. */
export async function loadState(path: string): Promise<PersistedState> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY;
    throw new RedisHaError('STATE_READ_FAILED', `cannot read state file ${path}: ${errorMessage(error)}`, { recoverable: false });
  }
  try {
    return parseState(text);
  } catch (error) {
    throw new RedisHaError('STATE_CORRUPT',
      `state file ${path} is not valid: ${errorMessage(error)}; move it away to start with epoch 0`, { recoverable: false });
  }
}

/** Parses the state file's text; throws an Error naming the first bad field. Pure. */
export function parseState(text: string): PersistedState {
  if (text.length > MAX_STATE_BYTES) throw new Error(`it is ${text.length} bytes, expected at most ${MAX_STATE_BYTES}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON (${errorMessage(error)})`);
  }
  const root = object(raw, 'the file');
  // Files written before the field was renamed call the boot time `bootEpoch`.
  const bootKey = root.bootTimeMs !== undefined ? 'bootTimeMs' : 'bootEpoch';
  return {
    epoch: integer(root, 'epoch', EPOCH_CEILING, 0),
    knownEpoch: integer(root, 'knownEpoch', EPOCH_CEILING, 0),
    bootTimeMs: integer(root, bootKey, MAX_BOOT_TIME_MS, 0),
    maintenance: maintenanceOf(root.maintenance),
    switchoverIds: switchoverIdsOf(root.switchoverIds),
    peer: peerOf(root.peer),
  };
}

function maintenanceOf(v: unknown): PersistedState['maintenance'] {
  if (v === undefined) return EMPTY.maintenance;
  const m = object(v, 'maintenance');
  if (typeof m.on !== 'boolean') throw new Error(`maintenance.on: expected true or false, found ${shown(m.on)}`);
  return { on: m.on, gen: integer(m, 'gen', EPOCH_CEILING, null, 'maintenance.') };
}

function switchoverIdsOf(v: unknown): readonly string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > MAX_REMEMBERED_SWITCHOVERS) {
    throw new Error(`switchoverIds: expected a list of at most ${MAX_REMEMBERED_SWITCHOVERS} request ids, found ${shown(v)}`);
  }
  return v.map((id, i) => {
    if (typeof id !== 'string' || !REQUEST_ID_PATTERN.test(id)) throw new Error(`switchoverIds[${i}]: expected a request id, found ${shown(id)}`);
    return id;
  });
}

function peerOf(v: unknown): PeerSeen | null {
  if (v === undefined || v === null) return null;
  const p = object(v, 'peer');
  const nodeName = p.nodeName;
  if (typeof nodeName !== 'string' || nodeNameProblem(nodeName) !== null) {
    throw new Error(`peer.nodeName: expected a node name, found ${shown(nodeName)}`);
  }
  return { nodeName, bootTimeMs: integer(p, 'bootTimeMs', MAX_BOOT_TIME_MS, null, 'peer.'), seq: integer(p, 'seq', MAX_SEQ, null, 'peer.') };
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what}: expected a JSON object, found ${shown(v)}`);
  return v as Record<string, unknown>;
}

/** `o[key]`: an integer in 0..max; `fallback` when absent (null: required). */
function integer(o: Record<string, unknown>, key: string, max: number, fallback: number | null, prefix = ''): number {
  const v = o[key];
  if (v === undefined && fallback !== null) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new Error(`${prefix}${key}: expected an integer in 0..${max}, found ${shown(v)}`);
  }
  return v;
}

function shown(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** Writes the state file atomically. */
export async function saveState(path: string, state: PersistedState): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', 0o640);
  try {
    await fh.writeFile(`${JSON.stringify(state)}\n`, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Writes (part of) the state: the rest keeps its last value. Resolves once on disk. */
export type StateWriter = (s: Partial<PersistedState>) => Promise<void>;

/**
 * The daemon's writer: writes one after the other, each resolving once it is on disk; a
 * failed write rejects (the core hears of it and retries) and never blocks the writes
 * after it, each of which carries everything written or asked for so far.
 */
export function stateWriter(path: string, persisted: PersistedState): StateWriter {
  let saved = persisted;
  let chain: Promise<void> = Promise.resolve();
  return (s) => {
    saved = { ...saved, ...s };
    const snapshot = saved;
    const write = chain.catch(() => undefined).then(() => saveState(path, snapshot));
    chain = write;
    return write;
  };
}
