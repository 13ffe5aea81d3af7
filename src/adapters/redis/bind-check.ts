/**
 * The start-up bind check: whether the local Redis would accept connections on the
 * VIP, from `CONFIG GET bind`/`protected-mode`, the default user's password and
 * `net.ipv{4,6}.ip_nonlocal_bind`. A warning that explains the fix, or `null`.
 */
import { readFile } from 'node:fs/promises';
import { ipFamily, isUnspecifiedAddress, sameAddress } from '../../net/address.js';
import { describeError, type Connection } from './connection.js';

/** What the bind check reads. */
export interface BindCheckDeps {
  /** The control connection to the local Redis. */
  readonly connection: Connection;
  readonly timeoutMs: number;
  /** Whether our own endpoint has a password: the answer when Redis will not tell. */
  readonly passwordConfigured: boolean;
}

/**
 * Tells whether the local Redis would accept connections on `vip`; see
 * `RedisControl.bindWarning`. Never throws.
 */
export async function bindWarning(deps: BindCheckDeps, vip: string): Promise<string | null> {
  const family = ipFamily(vip);
  if (family === 0) return `cannot check whether Redis accepts connections on the VIP: ${vip} is not an IP address`;
  let settings: Map<string, string>;
  try {
    settings = await deps.connection.run(deps.timeoutMs, async (c) => {
      // One parameter per CONFIG GET: several at once only exist from Redis 7.
      const bind = await c.config('GET', 'bind');
      const protectedMode = await c.config('GET', 'protected-mode');
      return new Map([...pairs(bind), ...pairs(protectedMode)]);
    });
  } catch (err) {
    return (
      `could not check whether Redis accepts connections on the VIP ${vip}: CONFIG GET failed (${describeError(err)}); ` +
      'if CONFIG is renamed or disabled, make sure redis.conf binds the VIP (or the wildcard)'
    );
  }
  const bindValue = settings.get('bind');
  if (bindValue === undefined) {
    return `could not check whether Redis accepts connections on the VIP ${vip}: CONFIG GET bind returned nothing`;
  }
  const protectedMode = settings.get('protected-mode') === 'yes';
  const entries = bindValue.split(/\s+/).filter((e) => e !== '');
  const addressOf = (entry: string): string => entry.replace(/^-/, '');
  // `*` and `::*` are Redis's own spellings of "every address"; an unspecified address is the other.
  const wildcard = (entry: string): boolean => {
    const a = addressOf(entry);
    return a === (family === 4 ? '*' : '::*') || (isUnspecifiedAddress(a) && ipFamily(a) === family);
  };
  const sysctl = `net.ipv${family}.ip_nonlocal_bind`;

  // No bind at all (pre-7 default) listens everywhere.
  if (entries.length === 0 || entries.some(wildcard)) {
    if (protectedMode && !(await defaultUserHasPassword(deps))) {
      return (
        `Redis listens on all addresses (bind ${bindValue || '<unset>'}) but protected-mode is on and the default ` +
        `user has no password, so it refuses every client that does not come from loopback, including clients ` +
        `through the VIP ${vip}; set a password (requirepass), or protected-mode no on a trusted network only`
      );
    }
    return null;
  }
  const nonlocal = await readNonlocalBind(family);
  const explicit = entries.find((e) => sameAddress(addressOf(e), vip));
  if (explicit !== undefined) {
    if (nonlocal === '1') return null;
    return (
      `Redis binds the VIP ${vip} explicitly, but ${sysctl} is ${nonlocal ?? 'unreadable'}: Redis can only bind ` +
      `the VIP while this node holds it, so after a restart on the node without the VIP it ` +
      `${explicit.startsWith('-') ? 'silently skips that address' : 'fails to start'}; ` +
      `set ${sysctl}=1 (sysctl.d) and restart Redis`
    );
  }
  return (
    `Redis binds only ${bindValue}, so it refuses connections to the VIP ${vip}; either bind the node address ` +
    `plus the VIP (bind <node-address> ${vip}) with ${sysctl}=1 (now ${nonlocal ?? 'unreadable'}) so both nodes ` +
    `can bind it at any time, or bind the wildcard (bind * -::*) with a password set, since protected-mode ` +
    `refuses non-loopback clients without one`
  );
}

/** Whether the default user needs a password (ACL first, then requirepass). */
async function defaultUserHasPassword(deps: BindCheckDeps): Promise<boolean> {
  try {
    const reply = await deps.connection.run(deps.timeoutMs, (c) => c.call('ACL', 'GETUSER', 'default'));
    const flags = aclField(reply, 'flags');
    if (Array.isArray(flags)) return !flags.includes('nopass');
  } catch {
    // ACL is Redis 6+; fall back to requirepass.
  }
  try {
    const reply = await deps.connection.run(deps.timeoutMs, (c) => c.config('GET', 'requirepass'));
    return (pairs(reply).get('requirepass') ?? '') !== '';
  } catch {
    return deps.passwordConfigured;
  }
}

/** `CONFIG GET` replies are a flat `[name, value, ...]` array. */
function pairs(reply: unknown): Map<string, string> {
  const map = new Map<string, string>();
  if (!Array.isArray(reply)) return map;
  for (let i = 0; i + 1 < reply.length; i += 2) {
    map.set(String(reply[i]), String(reply[i + 1]));
  }
  return map;
}

/** `ACL GETUSER` replies are a flat `[field, value, ...]` array whose values may be arrays. */
function aclField(reply: unknown, field: string): unknown {
  if (!Array.isArray(reply)) return undefined;
  for (let i = 0; i + 1 < reply.length; i += 2) {
    if (reply[i] === field) return reply[i + 1];
  }
  return undefined;
}

async function readNonlocalBind(family: 4 | 6 | number): Promise<string | null> {
  try {
    return (await readFile(`/proc/sys/net/ipv${family}/ip_nonlocal_bind`, 'utf8')).trim();
  } catch {
    return null;
  }
}
