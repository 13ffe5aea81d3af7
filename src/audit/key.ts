/**
 * The audit key file (`audit.key_file`, `audit verify --key-file`): the secret of the
 * keyed audit chain (HMAC-SHA256, see `chain.ts`). The daemon holds it; the log's
 * readers do not, so they cannot rewrite the chain.
 *
 * Format: one line, the secret without spaces (used as its UTF-8 bytes), as strong as an
 * advert key (at least 128 bits), e.g. 64 hex digits:
 *
 *   umask 077; openssl rand -hex 32 > /etc/redis-ha/audit.key
 *
 * The daemon refuses it as it refuses any secret file (see `readAuditKey`); `audit
 * verify` only needs to read it. Problems never show the secret.
 */
import { secretWeakness } from '../config/keys.js';
import { readSecretFile } from '../config/secret-file.js';
import { RedisHaError } from '../errors.js';

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

/**
 * Reads the key at `path` under the rule of every secret file (`src/config/secret-file.ts`:
 * a regular file, never opened if it is a FIFO; private unless waived) and the strength
 * rule of the advert keys (`secretWeakness`: at least 128 bits, no obvious pattern).
 * Throws `AuditKeyError`.
 */
export function readAuditKey(path: string, options: AuditKeyOptions): Buffer {
  const read = readSecretFile(options.what, path, 'key file for the audit chain', options.env);
  if (read.text === null || (options.requirePrivate && read.problems.length > 0)) {
    throw new AuditKeyError(read.problems.join('; '));
  }
  return parseAuditKey(read.text, `${options.what}: ${JSON.stringify(path)}`);
}

/** The key in a key file's text; `at` names the file in problems. Throws `AuditKeyError`. */
export function parseAuditKey(text: string, at: string): Buffer {
  const secret = text.trim();
  if (secret === '') throw new AuditKeyError(`${at}: the audit key file is empty`);
  if (/\s/.test(secret)) throw new AuditKeyError(`${at}: expected one line holding the key, without spaces`);
  const weakness = secretWeakness(secret);
  if (weakness !== null) {
    throw new AuditKeyError(`${at}: expected a secret of at least 128 bits (32 hex digits or 22 base64 characters), got ${weakness} (not shown; try "openssl rand -hex 32")`);
  }
  return Buffer.from(secret, 'utf8');
}
