/**
 * The audit key file (`audit.key_file`, `audit verify --key-file`): the secret of the
 * keyed audit chain (HMAC-SHA256, see `chain.ts`). The daemon holds it; the log's
 * readers do not, so they cannot rewrite the chain.
 *
 * Format: one line, the secret, at least `AUDIT_KEY_MIN_CHARS` characters without
 * spaces (used as its UTF-8 bytes), e.g. 64 hex digits:
 *
 *   umask 077; openssl rand -hex 32 > /etc/redis-ha/audit.key
 *
 * The daemon refuses a file group or others can access (mode & 0o077), like the advert
 * key file (`REDIS_HA_ALLOW_INSECURE_KEY_FILE=1` waives that), and anything but a
 * regular file (a FIFO would hang the read). Problems never show the secret.
 */
import { closeSync, fstatSync, openSync, readSync, constants as fsConstants } from 'node:fs';
import { describeFsError, ALLOW_INSECURE_KEY_FILE_ENV } from '../config/keys.js';
import { RedisHaError } from '../errors.js';

/** Shortest accepted secret: 32 characters (128 bits as hex). */
export const AUDIT_KEY_MIN_CHARS = 32;
/** Fewest distinct characters: "aaaa…" or "abab…" is not a secret. */
export const AUDIT_KEY_MIN_DISTINCT_CHARS = 8;
/** Largest key file read; a secret is a line, not a document. */
const MAX_KEY_FILE_BYTES = 4096;
const GROUP_OTHER_BITS = 0o077;

/** The audit key file cannot be used; the message names the file and why, never the secret. */
export class AuditKeyError extends RedisHaError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('AUDIT_KEY_INVALID', message, { recoverable: false, ...options });
  }
}

/** How strict to be. */
export interface AuditKeyOptions {
  /** How problems name the file's origin, e.g. "audit.key_file" or "--key-file". */
  readonly what: string;
  /** Refuse a file group or others can access (the daemon does; `audit verify` only reads). */
  readonly requirePrivate: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** Reads the key at `path`. Throws `AuditKeyError`. */
export function readAuditKey(path: string, options: AuditKeyOptions): Buffer {
  const at = `${options.what}: ${JSON.stringify(path)}`;
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
  } catch (error) {
    throw new AuditKeyError(`${at}: cannot open the audit key file (${describeFsError(error)})`, { cause: error });
  }
  let text: string;
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new AuditKeyError(`${at}: expected a regular file holding the audit key`);
    const loose = stats.mode & GROUP_OTHER_BITS;
    if (options.requirePrivate && loose !== 0 && (options.env ?? process.env)[ALLOW_INSECURE_KEY_FILE_ENV] !== '1') {
      const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
      throw new AuditKeyError(
        `${at}: expected a key file only its owner can access (mode 0600 or 0400), got mode ${mode} ` +
          `(run "chmod 600 ${path}", or set ${ALLOW_INSECURE_KEY_FILE_ENV}=1 to accept it)`,
      );
    }
    if (stats.size > MAX_KEY_FILE_BYTES) throw new AuditKeyError(`${at}: expected one line holding the key, got ${stats.size} bytes`);
    const buffer = Buffer.alloc(MAX_KEY_FILE_BYTES + 1);
    let length = 0;
    for (let n; length < buffer.length && (n = readSync(fd, buffer, length, buffer.length - length, null)) > 0; ) length += n;
    text = buffer.subarray(0, length).toString('utf8');
  } catch (error) {
    if (error instanceof AuditKeyError) throw error;
    throw new AuditKeyError(`${at}: cannot read the audit key file (${describeFsError(error)})`, { cause: error });
  } finally {
    closeSync(fd);
  }
  return parseAuditKey(text, at);
}

/** The key in a key file's text; `at` names the file in problems. Throws `AuditKeyError`. */
export function parseAuditKey(text: string, at: string): Buffer {
  const secret = text.trim();
  if (secret === '') throw new AuditKeyError(`${at}: the audit key file is empty`);
  if (/\s/.test(secret)) throw new AuditKeyError(`${at}: expected one line holding the key, without spaces`);
  const chars = [...secret];
  if (chars.length < AUDIT_KEY_MIN_CHARS) {
    throw new AuditKeyError(`${at}: expected a key of at least ${AUDIT_KEY_MIN_CHARS} characters, got ${chars.length} (try "openssl rand -hex 32")`);
  }
  if (new Set(chars).size < AUDIT_KEY_MIN_DISTINCT_CHARS) {
    throw new AuditKeyError(`${at}: the key repeats too few characters to be a secret (try "openssl rand -hex 32")`);
  }
  return Buffer.from(secret, 'utf8');
}
