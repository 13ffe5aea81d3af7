/**
 * `redis-ha keygen [--id N] [--out FILE [--force] [--owner USER[:GROUP]]]`: one key-file
 * line (`<id> <64 hex chars>`, 256 random bits), to be the same key file on both nodes.
 * The secret always passes the loader's strength rule (`secretWeakness`, `src/config/keys.ts`).
 *
 * Without `--out` the line goes to stdout (to append to an existing key file when
 * rotating: `redis-ha keygen --id 2 >> advert.key` keeps that file's mode). With `--out`
 * the key file itself is written as `check-config` and `run` accept it: mode 0600 from the
 * start, atomically, never over an existing file unless `--force`
 * (`src/adapters/private-file.ts`). Only the owner may read it, so under systemd that owner
 * must be the daemon's user: `--owner redis-ha` (root only) gives it to that user.
 *
 * Exit status: 0 written; 64 a bad `--id` or `--owner`, or `--force`/`--owner` without
 * `--out`; 73 the file exists (no `--force`) or cannot be written.
 */
import { run } from '../adapters/exec.js';
import { FileExistsError, PRIVATE_FILE_MODE, writePrivateFile, type FileOwner } from '../adapters/private-file.js';
import { generateKeyLine, KEY_ID_MAX, KEY_ID_MIN } from '../config/keys.js';
import { describeFsError } from '../config/secret-file.js';
import { errorMessage, EXIT_CANT_CREATE, EXIT_USAGE } from '../errors.js';

/** `keygen` options as commander parses them. */
export interface KeygenOptions {
  readonly id: string;
  readonly out?: string;
  readonly force?: boolean;
  readonly owner?: string;
}

/** Bound on one `getent` lookup (NSS may ask a directory server). */
const LOOKUP_TIMEOUT_MS = 5_000;
/** A user or group as `--owner` takes it: a name (not an option) or a number. */
const ACCOUNT = /^[A-Za-z0-9_.][A-Za-z0-9_.$-]*$/;

/** Writes a new key line to stdout or to `--out`; returns the exit status. */
export async function keygenCommand(opts: KeygenOptions): Promise<number> {
  const usage = (text: string): number => {
    process.stderr.write(`redis-ha keygen: ${text}\n`);
    return EXIT_USAGE;
  };
  const id = Number(opts.id);
  if (!/^\d+$/.test(opts.id) || !Number.isInteger(id) || id < KEY_ID_MIN || id > KEY_ID_MAX) {
    return usage(`--id: expected an integer from ${KEY_ID_MIN} to ${KEY_ID_MAX}, got ${JSON.stringify(opts.id)}`);
  }
  const out = opts.out;
  if (out === undefined) {
    if (opts.force === true) return usage('--force: only with --out FILE');
    if (opts.owner !== undefined) return usage('--owner: only with --out FILE');
    process.stdout.write(`${generateKeyLine(id)}\n`);
    return 0;
  }
  if (out === '') return usage('--out: expected a file name, got ""');
  let owner: FileOwner | undefined;
  if (opts.owner !== undefined) {
    const found = await resolveOwner(opts.owner);
    if ('error' in found) return usage(`--owner: ${found.error}`);
    owner = found;
  }
  try {
    await writePrivateFile(out, `${generateKeyLine(id)}\n`, { replace: opts.force === true, ...(owner ? { owner } : {}) });
  } catch (error) {
    if (error instanceof FileExistsError) {
      process.stderr.write(`redis-ha keygen: ${out} exists: not overwritten (--force replaces it; ` +
        `to add a key for rotation, append a line: redis-ha keygen --id 2 >> ${out})\n`);
    } else {
      process.stderr.write(`redis-ha keygen: cannot write ${out}: ${describeFsError(error)}` +
        `${owner !== undefined && (error as NodeJS.ErrnoException).code === 'EPERM' ? ' (only root can give a file to another user)' : ''}\n`);
    }
    return EXIT_CANT_CREATE;
  }
  const mode = PRIVATE_FILE_MODE.toString(8).padStart(4, '0');
  process.stdout.write(`redis-ha keygen: wrote key ${id} to ${out} (mode ${mode}${opts.owner !== undefined ? `, owner ${opts.owner}` : ''}); ` +
    'the peer needs the same file\n');
  return 0;
}

/** `USER[:GROUP]` as numeric ids (names through `getent`, so NSS accounts count); the group is kept when not given. */
export async function resolveOwner(text: string): Promise<FileOwner | { error: string }> {
  const [user, group, ...rest] = text.split(':');
  if (user === undefined || rest.length > 0 || !ACCOUNT.test(user) || (group !== undefined && !ACCOUNT.test(group))) {
    return { error: `expected USER or USER:GROUP (names or numbers), got ${JSON.stringify(text)}` };
  }
  const uid = await accountId('passwd', user);
  if ('error' in uid) return uid;
  if (group === undefined) return { uid: uid.id, gid: -1 };
  const gid = await accountId('group', group);
  if ('error' in gid) return gid;
  return { uid: uid.id, gid: gid.id };
}

/** The id of a user (`passwd`) or group (`group`): a number as given, else looked up. */
async function accountId(database: 'passwd' | 'group', name: string): Promise<{ id: number } | { error: string }> {
  if (/^\d+$/.test(name)) return { id: Number(name) };
  const what = database === 'passwd' ? 'user' : 'group';
  try {
    const r = await run('getent', [database, name], { timeoutMs: LOOKUP_TIMEOUT_MS });
    // `name:x:ID:...`; exit 2 means no such entry.
    const id = r.code === 0 ? r.stdout.split('\n')[0]?.split(':')[2] : undefined;
    return id !== undefined && /^\d+$/.test(id) ? { id: Number(id) } : { error: `no ${what} ${JSON.stringify(name)} on this host` };
  } catch (error) {
    return { error: `cannot look up the ${what} ${JSON.stringify(name)}: ${errorMessage(error)}` };
  }
}
