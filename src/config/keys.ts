/**
 * The advert key file: HMAC secrets that authenticate adverts between the two nodes.
 *
 * Format, one key per line: `<key-id> <secret>`, where the id (1..255) travels in every
 * advert and the secret (no spaces) is used as its raw UTF-8 bytes. Lines whose first
 * non-blank character is `#` and blank lines are ignored. The first key signs; every key
 * verifies, so keys rotate without a flag day: add the new key as a second line on both
 * nodes, move it to the first line on both, then delete the old one.
 *
 * A secret must carry at least 128 bits ({@link secretWeakness}): 32 hex digits, or 22
 * base64 characters, as `redis-ha keygen` (64 hex digits) and `openssl rand -hex 16` /
 * `-base64 16` write them; a secret that is one character repeated, a short sequence
 * repeated, a long run (`abcdefghijkl`) or made of a handful of characters is refused
 * whatever its length.
 *
 * The file is read under the rule of every secret file (`secret-file.ts`): a regular
 * file only its owner can access. Problems never show a secret.
 */
import { randomBytes } from 'node:crypto';
import { readSecretFile } from './secret-file.js';
import type { AdvertKey } from './types.js';

export { ALLOW_INSECURE_KEY_FILE_ENV, describeFsError } from './secret-file.js';

/** Lowest and highest key id; the id is one byte on the wire and 0 means "none". */
export const KEY_ID_MIN = 1;
export const KEY_ID_MAX = 255;
/** Least strength of a secret, in bits (what a 128-bit HMAC key gives). */
export const SECRET_MIN_BITS = 128;
/** What a secret must be, as problems word it. */
export const SECRET_EXPECTED = `a secret of at least ${SECRET_MIN_BITS} bits (32 hex digits or 22 base64 characters, as "redis-ha keygen" writes)`;
/** Random bytes in a generated secret (hex-encoded to 64 characters). */
export const GENERATED_SECRET_BYTES = 32;
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
 * Alphabets a secret may be drawn from, smallest first, with the bits one character
 * carries when drawn at random. A secret is credited with the bits of the smallest
 * alphabet that holds all its characters: only what a random draw could give, never
 * what a human choice does.
 */
const ALPHABETS: readonly { readonly name: string; readonly pattern: RegExp; readonly bitsPerChar: number }[] = [
  { name: 'decimal digits', pattern: /^[0-9]+$/, bitsPerChar: Math.log2(10) },
  { name: 'hex digits', pattern: /^[0-9a-fA-F]+$/, bitsPerChar: 4 },
  // Standard and URL-safe base64; the padding carries nothing.
  { name: 'base64 characters', pattern: /^[A-Za-z0-9+/_-]+={0,2}$/, bitsPerChar: 6 },
];
/** Any other characters: counted as if printable ASCII (94 symbols). */
const OTHER_ALPHABET = { name: 'characters', bitsPerChar: Math.log2(94) };
/**
 * Fewer different characters than this is a pattern: 32 random hex digits have fewer
 * than 6 different ones with a chance of 3e-13, 22 base64 characters 2e-15.
 */
const MIN_DISTINCT_CHARS = 6;
/**
 * A run of this many characters each one code point above (or below) the previous one
 * (`abcdefghijkl`, `987654321098`... ) is a pattern; in 64 random hex digits it occurs
 * with a chance under 1e-11.
 */
const MAX_RUN_CHARS = 12;

/**
 * Why `secret` is too weak to be an advert key, in words that never show it, or `null`
 * when it is strong enough: fewer than {@link SECRET_MIN_BITS} bits for its alphabet, one
 * character or a short sequence repeated, fewer than {@link MIN_DISTINCT_CHARS} different
 * characters, or a run of {@link MAX_RUN_CHARS} consecutive characters.
 */
export function secretWeakness(secret: string): string | null {
  const chars = [...secret];
  const alphabet = ALPHABETS.find((a) => a.pattern.test(secret)) ?? OTHER_ALPHABET;
  const counted = chars.length - (/=+$/.exec(secret)?.[0].length ?? 0);
  const bits = Math.floor(counted * alphabet.bitsPerChar);
  const distinct = new Set(chars).size;
  if (distinct === 1) return 'one character repeated';
  // The shortest period: the secret is a sequence of that length repeated (the last copy may be cut).
  for (let period = 1; period <= chars.length / 2; period++) {
    if (chars.every((c, i) => i + period >= chars.length || c === chars[i + period])) {
      return `a sequence of ${period} characters repeated`;
    }
  }
  let run = 1;
  let step = 0;
  for (let i = 1; i < chars.length; i++) {
    const d = (chars[i]?.codePointAt(0) ?? 0) - (chars[i - 1]?.codePointAt(0) ?? 0);
    run = (d === 1 || d === -1) && d === step ? run + 1 : d === 1 || d === -1 ? 2 : 1;
    step = d;
    if (run >= MAX_RUN_CHARS) return `a run of ${MAX_RUN_CHARS} or more consecutive characters`;
  }
  if (bits < SECRET_MIN_BITS) return `${chars.length} ${alphabet.name}, about ${bits} bits`;
  if (distinct < MIN_DISTINCT_CHARS) return `only ${distinct} different characters`;
  return null;
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
    const weakness = secretWeakness(secret);
    if (weakness !== null) {
      problems.push(`${at}: expected ${SECRET_EXPECTED}, got key id ${id} with ${weakness} (not shown; try "redis-ha keygen")`);
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

/**
 * Reads and parses the key file at `path` under the secret-file rule (`secret-file.ts`):
 * a regular file, which group and others cannot access unless
 * `env.REDIS_HA_ALLOW_INSECURE_KEY_FILE` is `1`.
 */
export function readKeyFile(path: string, env: NodeJS.ProcessEnv = process.env): KeyFileResult {
  const read = readSecretFile(KEY_FILE_KEY, path, 'key file', env);
  if (read.text === null) return { ok: false, problems: read.problems };
  const parsed = parseKeyFile(read.text, path);
  const problems = [...read.problems, ...(parsed.ok ? [] : parsed.problems)];
  return problems.length > 0 || !parsed.ok ? { ok: false, problems } : parsed;
}

/**
 * A fresh key file line, `<id> <64 hex characters>`, from 32 random bytes. The hex
 * text itself is the secret (used as UTF-8 bytes, like every key file secret). A draw
 * that `secretWeakness` would refuse (a chance under 1e-11) is drawn again, so the line
 * always loads.
 */
export function generateKeyLine(id = 1): string {
  if (!Number.isInteger(id) || id < KEY_ID_MIN || id > KEY_ID_MAX) {
    throw new RangeError(`key id must be an integer from ${KEY_ID_MIN} to ${KEY_ID_MAX}, got ${id}`);
  }
  let secret = randomBytes(GENERATED_SECRET_BYTES).toString('hex');
  while (secretWeakness(secret) !== null) secret = randomBytes(GENERATED_SECRET_BYTES).toString('hex');
  return `${id} ${secret}`;
}
