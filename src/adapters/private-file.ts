/**
 * Writing a file only its owner may read (an advert key made by `redis-ha keygen --out`),
 * so that it passes the secret-file rule of the loader (`src/config/secret-file.ts`:
 * regular file, no access for group or others) as soon as it exists.
 *
 * - Never readable by others, not even for a moment: the text goes into a temporary file
 *   in the same directory, created with O_EXCL and mode 0600 (then set to exactly 0600,
 *   whatever the umask), given to its owner before the secret is written, and fsynced.
 * - Atomic: the file appears whole under its name or not at all, by `rename()` (replace)
 *   or by `link()` (no replace: it fails with EEXIST on an existing name, so a file
 *   created meanwhile is never overwritten either), then the directory is fsynced.
 * - Whatever fails, the temporary file is removed.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { RedisHaError } from '../errors.js';

/** The only mode a private file gets: read and write for its owner. */
export const PRIVATE_FILE_MODE = 0o600;

/** Numeric owner to give the file; `-1` leaves that id as the creating process's. */
export interface FileOwner {
  readonly uid: number;
  readonly gid: number;
}

export interface PrivateFileOptions {
  /** Replace an existing file of that name; without it an existing name is refused. */
  readonly replace: boolean;
  /** chown the file to this owner (root only, unless it is the caller's own ids). */
  readonly owner?: FileOwner;
}

/** The file exists and `replace` was not given. */
export class FileExistsError extends RedisHaError {
  constructor(path: string) {
    super('FILE_EXISTS', `${path} exists`, { recoverable: false });
  }
}

/** Writes `text` to `path` as a private file (see the file header). */
export async function writePrivateFile(path: string, text: string, opts: PrivateFileOptions): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, PRIVATE_FILE_MODE);
  let placed = false;
  try {
    try {
      await fh.chmod(PRIVATE_FILE_MODE);
      if (opts.owner !== undefined) await fh.chown(opts.owner.uid, opts.owner.gid);
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.replace) {
      await rename(tmp, path);
      placed = true;
    } else {
      try {
        await link(tmp, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new FileExistsError(path);
        throw error;
      }
    }
    const dh = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } finally {
    if (!placed) await unlink(tmp).catch(() => undefined);
  }
}
