/**
 * Reading a file that holds a secret (the advert key file, a Redis password file) under
 * one rule for all of them, so an operator meets the same refusal whichever it is:
 *
 * - It must be a regular file (a symbolic link to one is fine: secret mounts use them).
 *   A FIFO, socket, device or directory is refused from `stat()` alone, before any
 *   `open()`: opening a FIFO for reading blocks until a writer appears, which hung
 *   `check-config`, and opening a device can have side effects (a tape rewinds). The
 *   file is then opened non-blocking and checked again on the open descriptor, so a
 *   file swapped for a FIFO between the two calls cannot block us either.
 * - Group and others must have no access (mode & 0o077 == 0), like an SSH private key;
 *   for the daemon's unprivileged user that also settles the owner (only its owner can
 *   read a file no one else has access to, and an ACL shows in the group bits).
 *   `REDIS_HA_ALLOW_INSECURE_KEY_FILE=1` waives that for every secret file (containers
 *   whose secret mounts cannot be made 0600). The problem is reported and the file is
 *   still read, so one pass lists everything wrong with it.
 * - At most {@link SECRET_FILE_MAX_BYTES}: a secret is a line, not a log file.
 *
 * Files that hold no secret but are read the same way (the etcd CA bundle and client
 * certificate) go through `readPublicFile`: the same rule without the permission check.
 *
 * Problems name the configuration key and the path, never the contents.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync, statSync, type Stats } from 'node:fs';
import { errorMessage } from '../errors.js';

/** Setting this environment variable to `1` skips the permission check of every secret file. */
export const ALLOW_INSECURE_KEY_FILE_ENV = 'REDIS_HA_ALLOW_INSECURE_KEY_FILE';
/** Largest secret file read; a key file with 255 keys of 64 hex digits is about 17 KiB. */
export const SECRET_FILE_MAX_BYTES = 64 * 1024;
/** Permission bits for group and others. */
const GROUP_OTHER_BITS = 0o077;

/** What reading a secret file gave: its text (`null` when it could not be read) and every problem found. */
export interface SecretFileRead {
  readonly text: string | null;
  readonly problems: readonly string[];
}

/** A short reason for a failed file system call, e.g. "no such file". */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a parent is not a directory';
    case 'ELOOP':
      return 'too many symbolic links';
    default:
      return errorMessage(error);
  }
}

/** What a non-regular file is, in words. */
function fileKind(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * Reads the secret file at `path`. `key` is the configuration key that names it
 * (`redis.password_file`), `what` the file in words (`key file`, `file holding the Redis
 * password`), as in "expected a readable key file, got ...".
 */
export function readSecretFile(key: string, path: string, what: string, env: NodeJS.ProcessEnv = process.env): SecretFileRead {
  return readFileSafely(key, path, what, SECRET_FILE_MAX_BYTES, 'a secret file', (stats, shown) => {
    const loose = stats.mode & GROUP_OTHER_BITS;
    if (loose === 0 || env[ALLOW_INSECURE_KEY_FILE_ENV] === '1') return [];
    const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
    return [
      `${key}: expected a ${what} only its owner can access (mode 0600 or 0400), got ${shown} with mode ${mode}` +
        ` (run "chmod 600 ${path}", or set ${ALLOW_INSECURE_KEY_FILE_ENV}=1 to accept it)`,
    ];
  });
}

/** Largest public file read (a CA bundle; Debian's whole ca-certificates.crt is about 220 KiB). */
export const PUBLIC_FILE_MAX_BYTES = 1024 * 1024;

/**
 * Reads a file that holds no secret (a CA bundle, a client certificate) under the same
 * rule but for the permission check: a regular file, opened without blocking, at most
 * {@link PUBLIC_FILE_MAX_BYTES}.
 */
export function readPublicFile(key: string, path: string, what: string): SecretFileRead {
  return readFileSafely(key, path, what, PUBLIC_FILE_MAX_BYTES, 'such a file', () => []);
}

/**
 * The common part of both readers; `modeProblems` looks at the open file's status.
 * `kind` names the file in the size problem ("more than the 65536 a secret file may hold").
 */
function readFileSafely(
  key: string,
  path: string,
  what: string,
  maxBytes: number,
  kind: string,
  modeProblems: (stats: Stats, shown: string) => string[],
): SecretFileRead {
  const shown = JSON.stringify(path);
  const unreadable = (reason: string): SecretFileRead => ({
    text: null,
    problems: [`${key}: expected a readable ${what}, got ${shown} (${reason})`],
  });
  let before: Stats;
  try {
    before = statSync(path);
  } catch (error) {
    return unreadable(describeFsError(error));
  }
  if (!before.isFile()) return unreadable(`${fileKind(before)}, not a regular file`);

  let fd: number;
  try {
    // O_NONBLOCK: should the path have become a FIFO since stat(), open() still returns.
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
  } catch (error) {
    return unreadable(describeFsError(error));
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return unreadable(`${fileKind(stats)}, not a regular file`);
    if (stats.dev !== before.dev || stats.ino !== before.ino) return unreadable('it was replaced while being read');
    if (stats.size > maxBytes) {
      return unreadable(`${stats.size} bytes, more than the ${maxBytes} ${kind} may hold`);
    }
    const problems = modeProblems(stats, shown);
    return { text: readFileSync(fd, 'utf8'), problems };
  } catch (error) {
    return unreadable(describeFsError(error));
  } finally {
    closeSync(fd);
  }
}
