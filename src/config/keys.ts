/**
 * The advert key file: HMAC secrets that authenticate adverts between the two nodes.
 *
 * Format, one key per line: `<key-id> <secret>`, where the id (1..255) travels in every
 * advert and the secret (at least 16 characters, no spaces) is used as its raw UTF-8
 * bytes. Lines whose first non-blank character is `#` and blank lines are ignored.
 * The first key signs; every key verifies, so keys rotate without a flag day: add the
 * new key as a second line on both nodes, move it to the first line on both, then
 * delete the old one.
 *
 * The file must not be accessible to group or others (mode & 0o077 == 0), like an SSH
 * private key; `REDIS_HA_ALLOW_INSECURE_KEY_FILE=1` waives that check (containers
 * whose secret mounts cannot be made 0600). Problems never show a secret.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { AdvertKey } from './types.js';
import { errorMessage } from '../errors.js';

/** Lowest and highest key id; the id is one byte on the wire and 0 means "none". */
export const KEY_ID_MIN = 1;
export const KEY_ID_MAX = 255;
/** Shortest accepted secret, in characters. */
export const SECRET_MIN_CHARS = 16;
/** Random bytes in a generated secret (hex-encoded to 64 characters). */
export const GENERATED_SECRET_BYTES = 32;
/** Setting this environment variable to `1` skips the key file permission check. */
export const ALLOW_INSECURE_KEY_FILE_ENV = 'REDIS_HA_ALLOW_INSECURE_KEY_FILE';
/** Permission bits for group and others. */
const GROUP_OTHER_BITS = 0o077;
/** The configuration key problems are reported under. */
const KEY_FILE_KEY = 'advert.key_file';
/** A numeric first field no longer than this is shown in problems; anything else may be a secret. */
const MAX_SHOWN_ID_CHARS = 5;

/** Keys, or every problem found. */
export type KeyFileResult =
  | { readonly ok: true; readonly keys: readonly AdvertKey[] }
  | { readonly ok: false; readonly problems: readonly string[] };

/** The first field of a line as a problem may show it: digits only, a misplaced secret never. */
function showIdField(field: string): string {
  return /^\d+$/.test(field) && field.length <= MAX_SHOWN_ID_CHARS
    ? JSON.stringify(field)
    : 'a non-numeric field (not shown: it may be a secret)';
}

/**
 * Parses key file text. `source` names the file in problems (`<source> line 3: ...`).
 * Collects every problem rather than stopping at the first.
 */
export function parseKeyFile(text: string, source: string): KeyFileResult {
  const keys: AdvertKey[] = [];
  const problems: string[] = [];
  const seen = new Map<number, number>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at = `${KEY_FILE_KEY}: ${source} line ${lineNo}`;
    const fields = line.split(/\s+/);
    const [idField = '', secret, ...extra] = fields;
    if (secret === undefined) {
      problems.push(`${at}: expected "<key-id> <secret>", got a single field (not shown: it may be a secret)`);
      return;
    }
    if (extra.length > 0) {
      problems.push(
        `${at}: expected "<key-id> <secret>", got ${fields.length} fields (a secret cannot contain spaces; comments go on their own line)`,
      );
      return;
    }
    const id = /^\d+$/.test(idField) ? Number(idField) : Number.NaN;
    if (!Number.isInteger(id) || id < KEY_ID_MIN || id > KEY_ID_MAX) {
      // With the id wrong the second field may not be the secret (fields swapped): one problem.
      problems.push(`${at}: expected a key id from ${KEY_ID_MIN} to ${KEY_ID_MAX}, got ${showIdField(idField)}`);
      return;
    }
    const secretChars = [...secret].length;
    if (secretChars < SECRET_MIN_CHARS) {
      problems.push(
        `${at}: expected a secret of at least ${SECRET_MIN_CHARS} characters, got ${secretChars} (try "redis-ha keygen")`,
      );
      return;
    }
    const firstLine = seen.get(id);
    if (firstLine !== undefined) {
      problems.push(`${at}: expected each key id once, got id ${id} again (first on line ${firstLine})`);
      return;
    }
    seen.set(id, lineNo);
    keys.push(Object.freeze({ id, secret: Buffer.from(secret, 'utf8') }));
  });
  if (problems.length === 0 && keys.length === 0) {
    problems.push(`${KEY_FILE_KEY}: ${source}: expected at least one "<key-id> <secret>" line, got none`);
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, keys };
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
    default:
      return errorMessage(error);
  }
}

/**
 * Reads and parses the key file at `path`, refusing one that group or others can
 * access unless `env.REDIS_HA_ALLOW_INSECURE_KEY_FILE` is `1`.
 */
export function readKeyFile(path: string, env: NodeJS.ProcessEnv = process.env): KeyFileResult {
  const problems: string[] = [];
  let text: string;
  try {
    const stats = statSync(path);
    if (!stats.isFile()) {
      return { ok: false, problems: [`${KEY_FILE_KEY}: expected a readable key file, got ${JSON.stringify(path)} (not a regular file)`] };
    }
    const loose = stats.mode & GROUP_OTHER_BITS;
    if (loose !== 0 && env[ALLOW_INSECURE_KEY_FILE_ENV] !== '1') {
      const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
      problems.push(
        `${KEY_FILE_KEY}: expected a key file only its owner can access (mode 0600 or 0400), got ${JSON.stringify(path)} with mode ${mode}` +
          ` (run "chmod 600 ${path}", or set ${ALLOW_INSECURE_KEY_FILE_ENV}=1 to accept it)`,
      );
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { ok: false, problems: [`${KEY_FILE_KEY}: expected a readable key file, got ${JSON.stringify(path)} (${describeFsError(error)})`] };
  }
  const parsed = parseKeyFile(text, path);
  if (!parsed.ok) problems.push(...parsed.problems);
  return problems.length > 0 || !parsed.ok ? { ok: false, problems } : parsed;
}

/**
 * A fresh key file line, `<id> <64 hex characters>`, from 32 random bytes. The hex
 * text itself is the secret (used as UTF-8 bytes, like every key file secret).
 */
export function generateKeyLine(id = 1): string {
  if (!Number.isInteger(id) || id < KEY_ID_MIN || id > KEY_ID_MAX) {
    throw new RangeError(`key id must be an integer from ${KEY_ID_MIN} to ${KEY_ID_MAX}, got ${id}`);
  }
  return `${id} ${randomBytes(GENERATED_SECRET_BYTES).toString('hex')}`;
}
