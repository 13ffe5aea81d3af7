/**
 * Who is on the other end of a Unix socket: the pid, uid and gid the kernel recorded
 * when the peer called connect() (SO_PEERCRED, socket(7)), read through the tiny
 * Node-API addon in `native/peercred/` because Node has no API for it. The kernel
 * fills these in itself, so a client cannot forge them.
 *
 * The supplementary groups are not part of SO_PEERCRED; the kernel records them at
 * connect() too and hands them out with SO_PEERGROUPS (Linux 4.13), so they are what
 * the client had when it connected, even if it has exited or changed them since. Only
 * on an older kernel (the addon returns `null`, ENOPROTOOPT) do they come from the
 * peer's `/proc/<pid>/status`, and then only while that process still has the uid the
 * kernel reported (a pid reused after the client exited would otherwise lend us a
 * stranger's groups). When they cannot be read we fall back to the primary gid alone,
 * which can only make a caller less privileged, never more. Names come from
 * /etc/passwd and /etc/group directly (no NSS: LDAP or sssd users show up as `uid N`).
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage, RedisHaError } from '../errors.js';

/** The addon's build output, relative to the project root. */
const ADDON_RELATIVE_PATH = 'native/peercred/build/Release/peercred.node';

/**
 * The project root: two levels up from this file, which lives in `src/adapters/`
 * under vitest and in `dist/adapters/` once built.
 */
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Absolute path of the compiled addon `peerCredentials()` loads. */
export const PEER_CRED_ADDON_PATH = join(PROJECT_ROOT, ADDON_RELATIVE_PATH);

const PASSWD_FILE = '/etc/passwd';
const GROUP_FILE = '/etc/group';

/** What the addon returns: the raw SO_PEERCRED triple. */
export interface RawPeerCred {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** The addon's exports. */
export interface PeerCredAddon {
  peerCred(fd: number): RawPeerCred;
  /**
   * SO_PEERGROUPS: the supplementary groups at connect(), or `null` when the kernel has
   * no SO_PEERGROUPS. Absent from an addon built before it was added (then: /proc).
   */
  peerGroups?(fd: number): number[] | null;
}

/** The credentials of a Unix socket's peer, as the kernel saw them at connect(). */
export interface PeerCredentials {
  /** Process id of the peer (0 if it lives in a pid namespace we cannot see). */
  pid: number;
  /** Effective uid of the peer at connect(). */
  uid: number;
  /** Effective gid of the peer at connect(). */
  gid: number;
  /** Login name from /etc/passwd, or `uid <n>` when there is none. */
  user: string;
  /** The primary gid first, then the supplementary groups at connect() (see the file header). */
  groups: readonly number[];
}

/** The peer's credentials cannot be read: the addon is missing or the socket has no fd. */
export class PeerCredError extends RedisHaError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { recoverable: true, ...options });
  }
}

let cachedAddon: PeerCredAddon | null = null;

function isPeerCredAddon(value: unknown): value is PeerCredAddon {
  return typeof value === 'object' && value !== null && typeof (value as { peerCred?: unknown }).peerCred === 'function';
}

/**
 * Loads (once) the compiled addon at `path`. Throws `PeerCredError` 'PEER_CRED_UNAVAILABLE'
 * with the command that builds it when it is missing or is not the peercred addon.
 */
export function loadPeerCredAddon(path: string = PEER_CRED_ADDON_PATH): PeerCredAddon {
  if (path === PEER_CRED_ADDON_PATH && cachedAddon) return cachedAddon;
  const fix = `build it with \`npm run build:native\` in ${PROJECT_ROOT} (needs a C compiler, make and python3)`;
  let loaded: unknown;
  try {
    loaded = createRequire(import.meta.url)(path);
  } catch (error) {
    const reason = errorMessage(error).split('\n')[0];
    throw new PeerCredError('PEER_CRED_UNAVAILABLE', `cannot load the SO_PEERCRED addon ${path} (${reason}): ${fix}`, {
      cause: error,
    });
  }
  if (!isPeerCredAddon(loaded)) {
    throw new PeerCredError('PEER_CRED_UNAVAILABLE', `${path} does not export peerCred(): ${fix}`);
  }
  if (path === PEER_CRED_ADDON_PATH) cachedAddon = loaded;
  return loaded;
}

/** The file descriptor behind a connected `net.Socket`, or null (not connected, destroyed, not a pipe). */
function socketFd(socket: Socket): number | null {
  // Node keeps the libuv handle private; `fd` is set on Unix for pipes and TCP sockets.
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : null;
}

/**
 * Reads the credentials of the peer of a connected Unix stream socket. Throws
 * `PeerCredError`: 'PEER_CRED_UNAVAILABLE' (addon not built, or the socket has no fd)
 * or 'PEER_CRED_FAILED' (getsockopt failed, e.g. not a Unix socket).
 */
export async function peerCredentials(socket: Socket): Promise<PeerCredentials> {
  const addon = loadPeerCredAddon();
  const fd = socketFd(socket);
  if (fd === null) {
    throw new PeerCredError(
      'PEER_CRED_UNAVAILABLE',
      'the socket has no file descriptor (closed already, or this Node version hides it): cannot read SO_PEERCRED; ' +
        'check that the SO_PEERCRED addon is built (`npm run build:native`) and Node is a supported version (>= 20)',
    );
  }
  let raw: RawPeerCred;
  try {
    raw = addon.peerCred(fd);
  } catch (error) {
    throw new PeerCredError('PEER_CRED_FAILED', errorMessage(error), { cause: error });
  }
  const { pid, uid, gid } = raw;
  return { pid, uid, gid, user: userName(uid), groups: await peerGroups(addon, fd, pid, uid, gid) };
}

/** `gid` followed by the other groups, each once, in order. */
function withPrimary(gid: number, groups: readonly number[]): readonly number[] {
  const valid = groups.filter((g) => Number.isInteger(g) && g >= 0);
  return [gid, ...valid.filter((g) => g !== gid)].filter((g, i, all) => all.indexOf(g) === i);
}

/** `gid` followed by the groups the kernel recorded at connect(), or those of /proc on an older kernel. */
async function peerGroups(addon: PeerCredAddon, fd: number, pid: number, uid: number, gid: number): Promise<readonly number[]> {
  if (addon.peerGroups === undefined) return processGroups(pid, uid, gid);
  let groups: number[] | null;
  try {
    groups = addon.peerGroups(fd);
  } catch {
    return [gid]; // less privilege, never more
  }
  return groups === null ? processGroups(pid, uid, gid) : withPrimary(gid, groups);
}

/** The fallback: `gid` followed by the supplementary groups of `pid`, if that process still has real uid `uid`. */
async function processGroups(pid: number, uid: number, gid: number): Promise<readonly number[]> {
  if (pid <= 0) return [gid];
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return [gid]; // the client has exited already, or /proc is not ours to read
  }
  const fields = (name: string): number[] | null => {
    const line = status.split('\n').find((l) => l.startsWith(`${name}:`));
    if (line === undefined) return null;
    return line
      .slice(name.length + 1)
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  };
  // Uid: real, effective, saved, filesystem. A different real uid means the pid was reused.
  if (fields('Uid')?.[0] !== uid) return [gid];
  return withPrimary(gid, fields('Groups') ?? []);
}

/** The last parse of each database file, kept while its size and mtime stay the same. */
const colonFiles = new Map<string, { readonly key: string; readonly rows: string[][] }>();

/**
 * Splits a colon-separated database file (/etc/passwd, /etc/group) into rows; [] if
 * unreadable. Parsed again only when the file changed (a `stat` per call, not a read: a
 * local user opening control connections in a loop must not make the loop re-read it).
 */
function readColonFile(path: string): string[][] {
  let key: string;
  try {
    const st = statSync(path);
    key = `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return [];
  }
  const cached = colonFiles.get(path);
  if (cached?.key === key) return cached.rows;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const rows = text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'));
  colonFiles.set(path, { key, rows });
  return rows;
}

/** The gid of group `name` from /etc/group, or null when there is no such group. */
export function groupId(name: string, groupFile: string = GROUP_FILE): number | null {
  const row = readColonFile(groupFile).find((fields) => fields[0] === name);
  const gid = row?.[2] === undefined || row[2] === '' ? Number.NaN : Number(row[2]);
  return Number.isInteger(gid) && gid >= 0 ? gid : null;
}

/** The login name of `uid` from /etc/passwd, or `uid <n>` when there is none. */
export function userName(uid: number, passwdFile: string = PASSWD_FILE): string {
  const row = readColonFile(passwdFile).find((fields) => fields[2] !== undefined && fields[2] !== '' && Number(fields[2]) === uid);
  return row?.[0] || `uid ${uid}`;
}
