/**
 * A small JSON file that outlives the process: the promotion epochs (so a restarted
 * node still knows how recent its last mastership was) and the last boot time (so a
 * restart after a backwards clock step still gets a larger boot time and its adverts
 * are not rejected as stale by the peer's replay guard).
 *
 * Written atomically: a temporary file, fsync, rename, fsync of the directory.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorMessage, RedisHaError } from '../errors.js';

export interface PersistedState {
  readonly epoch: number;
  readonly knownEpoch: number;
  readonly bootTimeMs: number;
  /** The pair-wide maintenance flag and its generation (absent in older files: off). */
  readonly maintenance: { readonly on: boolean; readonly gen: number };
}

const EMPTY: PersistedState = { epoch: 0, knownEpoch: 0, bootTimeMs: 0, maintenance: { on: false, gen: 0 } };

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
    const raw = JSON.parse(text) as Record<string, unknown>;
    const num = (k: string): number => {
      const v = raw[k];
      if (v === undefined) return 0;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error(`${k} is not a non-negative integer`);
      return v;
    };
    // Files written before the field was renamed call the boot time `bootEpoch`.
    const bootTimeMs = raw.bootTimeMs !== undefined ? num('bootTimeMs') : num('bootEpoch');
    return { epoch: num('epoch'), knownEpoch: num('knownEpoch'), bootTimeMs, maintenance: maintenanceOf(raw.maintenance) };
  } catch (error) {
    throw new RedisHaError('STATE_CORRUPT',
      `state file ${path} is not valid (${errorMessage(error)}); move it away to start with epoch 0`, { recoverable: false });
  }
}

function maintenanceOf(v: unknown): PersistedState['maintenance'] {
  if (v === undefined) return EMPTY.maintenance;
  if (typeof v !== 'object' || v === null) throw new Error('maintenance is not an object');
  const { on, gen } = v as Record<string, unknown>;
  if (typeof on !== 'boolean') throw new Error('maintenance.on is not a boolean');
  if (typeof gen !== 'number' || !Number.isSafeInteger(gen) || gen < 0) throw new Error('maintenance.gen is not a non-negative integer');
  return { on, gen };
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
