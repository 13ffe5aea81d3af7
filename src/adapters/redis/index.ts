/**
 * The Redis effect: health checks, promotion (with catch-up and, from a still-reachable
 * old master, a paused and fenced handover: `redis-promote.ts`), demotion, the planned
 * switchover from this master to its replica (`redis-switchover.ts`), and the start-up
 * bind check, all in process through ioredis (no `redis-cli` scripts).
 *
 * Four kinds of connection, so that a slow role change never delays a health check:
 *
 *   health   (`redis-ha`)          long-lived, PING + INFO replication, bounded by
 *                                  `health.timeoutMs`
 *   control  (`redis-ha-control`)  long-lived, REPLICAOF / CONFIG / CLIENT on the local Redis
 *   peer     (`redis-ha-peer`)     per operation, INFO / CLIENT PAUSE / REPLICAOF on the peer
 *                                  during promotion, INFO during demotion
 *   self     (`redis-ha-self`)     per promotion, checks that `self` names the local Redis
 *
 * Every connection is named with the `clientName` prefix so demotion (and the fence of
 * an old master) can kill the application clients still attached without killing our
 * own (or the other node's daemon). Failures never escape as exceptions from the public
 * methods: they become `{ ok: false, detail }`, and `detail` is written for the
 * audit log (each step with its duration). Connections, and why they are never
 * reconnected in the background, are in `redis-connection.ts`.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HostPort, RedisSnapshot } from '../../core/types.js';
import type { Config, RedisEndpoint } from '../../config/types.js';
import type { Logger } from '../../daemon/logger.js';
import { RedisControlError } from '../../errors.js';
import {
  Connection,
  describeSnapshot,
  formatHostPort,
  killNormalClients,
  messageOf,
  nowMs,
  probeServer,
  REDIS_REPLY,
  REDIS_TIMEOUT,
  replicatesFrom,
  sameServer,
  Trail,
  type LocalState,
} from './connection.js';
import { parseInfoFields, parseReplicationInfo } from './info.js';
import { PeerHandover, type HandoverOptions, type LocalRedis } from './takeover.js';
import { switchOver, type SwitchoverRequest, type SwitchoverResult } from './switchover.js';

export { parseClientList, REDIS_REPLY, REDIS_TIMEOUT, REDIS_UNREACHABLE } from './connection.js';
export type { SwitchoverRequest, SwitchoverResult } from './switchover.js';

/** Default `CLIENT SETNAME` of the health connection; other connections add a suffix. */
export const DEFAULT_CLIENT_NAME = 'redis-ha';

/** Role commands get at least this long: a replica busy flushing its old dataset answers slowly. */
const CONTROL_MIN_TIMEOUT_MS = 2_000;
/** Demotion: how long to wait for `role:slave` pointing at the new master. */
const ROLE_VERIFY_BOUND_MS = 2_000;
const ROLE_POLL_INTERVAL_MS = 50;
/**
 * A replica that is loading the RDB of a full sync answers `REPLICAOF NO ONE` with
 * `-LOADING`; promotion retries for this long before giving up.
 */
const ROLE_CHANGE_RETRY_MS = 10_000;
const ROLE_CHANGE_RETRY_INTERVAL_MS = 100;

/** What `RedisControl` needs from the configuration (a slice of `Config`). */
export interface RedisControlOptions {
  /** The local Redis. */
  readonly local: RedisEndpoint;
  /** Credentials (and TLS) for the peer's Redis; host/port of a catch-up source may differ. */
  readonly peer: RedisEndpoint;
  /**
   * How the peer reaches this node's Redis: where an old master is pointed (`REPLICAOF
   * self`) when a takeover fences it. Checked against the local run_id before use.
   */
  readonly self: HostPort;
  readonly health: Pick<Config['health'], 'timeoutMs'>;
  readonly promotion: Config['promotion'];
  readonly demotion: Config['demotion'];
  readonly logger: Logger;
  /** `CLIENT SETNAME` prefix of every connection this adapter opens; default `redis-ha`. */
  readonly clientName?: string;
}

/** Outcome of a health check or a promotion. */
export interface RedisCheckResult {
  readonly ok: boolean;
  /** One readable line: the log message field and the audit record. */
  readonly detail: string;
  /** What `INFO replication` said, when Redis answered. */
  readonly redis: RedisSnapshot | null;
}

/** Outcome of a promotion: ok when the local Redis ended up `role:master`. */
export type RedisPromoteResult = RedisCheckResult;

/** Outcome of a demotion: ok when the local Redis ended up replicating from the master. */
export interface RedisReplicateResult {
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * The Redis adapter. One instance per daemon; `close()` on shutdown.
 *
 * Public methods never throw: every failure is a `{ ok: false, detail }` (or, for
 * `bindWarning`, a warning string).
 */
export class RedisControl {
  private readonly log: Logger;
  private readonly clientName: string;
  private readonly health: Connection;
  private readonly control: Connection;
  private readonly controlTimeoutMs: number;

  constructor(private readonly options: RedisControlOptions) {
    this.log = options.logger.child({ component: 'redis-control' });
    this.clientName = options.clientName ?? DEFAULT_CLIENT_NAME;
    this.controlTimeoutMs = Math.max(CONTROL_MIN_TIMEOUT_MS, options.health.timeoutMs);
    const target = { host: options.local.host, port: options.local.port };
    this.health = new Connection({
      endpoint: options.local,
      target,
      name: this.clientName,
      timeoutMs: options.health.timeoutMs,
    });
    this.control = new Connection({
      endpoint: options.local,
      target,
      name: `${this.clientName}-control`,
      timeoutMs: this.controlTimeoutMs,
    });
  }

  /**
   * The health check: PING (must answer PONG) and `INFO replication`, together
   * bounded by `health.timeoutMs`. A refused connection fails at once; a hung
   * server fails at the timeout and the connection is replaced on the next check.
   */
  async check(): Promise<RedisCheckResult> {
    const { timeoutMs } = this.options.health;
    try {
      const redis = await this.health.run(timeoutMs, async (client) => {
        const [pong, info] = await Promise.all([client.ping(), client.info('replication')]);
        if (pong !== 'PONG') throw new RedisControlError(REDIS_REPLY, `PING answered ${JSON.stringify(pong)}`);
        return parseReplicationInfo(info);
      });
      return { ok: true, detail: `PONG; ${describeSnapshot(redis)}`, redis };
    } catch (err) {
      const detail = messageOf(err);
      this.log.debug({ detail }, 'health check failed');
      return { ok: false, detail, redis: null };
    }
  }

  /**
   * Makes the local Redis a master.
   *
   * With `catchUpFrom` and `promotion.waitForSync`, first hands over from that peer
   * if it answers, is a master, and is not this very server (`PeerHandover`):
   * replicate it until the link is up, pause its writes, catch up to its frozen
   * offset (each wait bounded by `maxSyncWaitMs`), `REPLICAOF NO ONE` and a check of
   * `role:master`, then fence it (`REPLICAOF self`), unpause it and disconnect its
   * application clients. A catch-up that times out still promotes, and `detail` says
   * how far behind; nothing on the peer's side fails the promotion, and a pause is
   * lifted on every path. `promote(null)` never contacts the peer.
   */
  async promote(catchUpFrom: HostPort | null): Promise<RedisPromoteResult> {
    const trail = new Trail();
    const { waitForSync } = this.options.promotion;
    const handover =
      catchUpFrom !== null && waitForSync
        ? new PeerHandover(this.handoverOptions(), this.localRedis(), catchUpFrom, trail)
        : null;
    let outcome: { ok: boolean; redis: RedisSnapshot | null };
    try {
      outcome = await this.promoteSteps(catchUpFrom, handover, trail);
    } catch (err) {
      trail.add(`failed: local Redis: ${messageOf(err)}`);
      outcome = { ok: false, redis: null };
    }
    await handover?.release();
    const detail = trail.toString();
    if (!outcome.ok) this.log.warn({ detail }, 'redis promotion failed');
    return { ok: outcome.ok, detail, redis: outcome.redis };
  }

  /**
   * Makes the local Redis a replica of `master` (demotion): `REPLICAOF host port`
   * with `masterauth`/`masteruser` from the peer endpoint, a bounded check that
   * the role changed, then `CLIENT KILL` of the normal clients still attached (not
   * ours, recognised by the `clientName` prefix) so applications reconnect through
   * the VIP. Refuses to replicate from itself. The link need not be up yet: a full
   * sync of a large dataset can take minutes.
   */
  async replicateFrom(master: HostPort): Promise<RedisReplicateResult> {
    const trail = new Trail();
    const target = formatHostPort(master);
    try {
      if (this.options.demotion.delayMs > 0) {
        const since = nowMs();
        await sleep(this.options.demotion.delayMs);
        trail.add(`demotion delay ${this.options.demotion.delayMs} ms`, since);
      }
      let since = nowMs();
      const local = await this.localState(true);
      trail.add(`local ${describeSnapshot(local.snapshot)}`, since);

      since = nowMs();
      if (master.host === this.options.local.host && master.port === this.options.local.port) {
        trail.add(`refused: ${target} is this server's own address`);
        return { ok: false, detail: trail.toString() };
      }
      const probe = await this.probePeer(master);
      if (probe.ok) {
        if (sameServer(probe.runId, local.fields.get('run_id'))) {
          trail.add(`refused: ${target} is this very server (same run_id)`, since);
          return { ok: false, detail: trail.toString() };
        }
        trail.add(`master ${target} answers: ${describeSnapshot(probe.snapshot)}`, since);
      } else {
        // Issued anyway: the replica keeps retrying, and the link comes up when the master answers.
        trail.add(`master ${target} not reachable (${probe.detail}), replicating anyway`, since);
      }

      await this.setMasterAuth(trail);
      since = nowMs();
      if (replicatesFrom(local.snapshot, master)) {
        trail.add(`already replicating from ${target}`);
      } else {
        await this.control.run(this.controlTimeoutMs, (c) => c.replicaof(master.host, master.port));
        trail.add(`REPLICAOF ${master.host} ${master.port}`, since);
        this.log.info({ master: target }, 'redis set to replicate');
      }

      since = nowMs();
      const verified = await this.waitForRole(master, ROLE_VERIFY_BOUND_MS);
      if (verified === null || !replicatesFrom(verified, master)) {
        const seen = verified === null ? 'no answer' : describeSnapshot(verified);
        trail.add(`not a replica of ${target} within ${ROLE_VERIFY_BOUND_MS} ms (${seen})`, since);
        return { ok: false, detail: trail.toString() };
      }
      trail.add(`verified ${describeSnapshot(verified)}`, since);

      since = nowMs();
      const killed = await this.killApplicationClients();
      trail.add(killed, since);
      return { ok: true, detail: trail.toString() };
    } catch (err) {
      trail.add(`failed: local Redis: ${messageOf(err)}`);
      const detail = trail.toString();
      this.log.warn({ detail }, 'redis demotion failed');
      return { ok: false, detail };
    }
  }

  /**
   * A planned switchover from this (master) node to `request.target`, our replica:
   * pre-checks, then Redis FAILOVER or a paused catch-up with `REPLICAOF NO ONE` on the
   * target, rolled back when anything fails before the target is promoted
   * (`redis-switchover.ts`). Never throws.
   */
  async handOver(request: SwitchoverRequest): Promise<SwitchoverResult> {
    return switchOver(
      {
        local: this.control,
        localTimeoutMs: this.controlTimeoutMs,
        peerEndpoint: this.options.peer,
        peerTimeoutMs: this.options.promotion.peerTimeoutMs,
        clientName: this.clientName,
        setMasterAuth: (trail) => this.setMasterAuth(trail),
        logger: this.log,
      },
      request,
    );
  }

  /**
   * Tells whether the local Redis would accept connections on `vip`, from
   * `CONFIG GET bind`/`protected-mode`, the default user's password and
   * `net.ipv{4,6}.ip_nonlocal_bind`. Returns a warning that explains the fix, or
   * `null` when the setup is fine.
   */
  async bindWarning(vip: string): Promise<string | null> {
    const family = isIP(vip);
    if (family === 0) return `cannot check whether Redis accepts connections on the VIP: ${vip} is not an IP address`;
    let settings: Map<string, string>;
    try {
      settings = await this.control.run(this.controlTimeoutMs, async (c) => {
        // One parameter per CONFIG GET: several at once only exist from Redis 7.
        const bind = await c.config('GET', 'bind');
        const protectedMode = await c.config('GET', 'protected-mode');
        return new Map([...pairs(bind), ...pairs(protectedMode)]);
      });
    } catch (err) {
      return (
        `could not check whether Redis accepts connections on the VIP ${vip}: CONFIG GET failed (${messageOf(err)}); ` +
        'if CONFIG is renamed or disabled, make sure redis.conf binds the VIP (or the wildcard)'
      );
    }
    const bindValue = settings.get('bind');
    if (bindValue === undefined) {
      return `could not check whether Redis accepts connections on the VIP ${vip}: CONFIG GET bind returned nothing`;
    }
    const protectedMode = settings.get('protected-mode') === 'yes';
    const entries = bindValue.split(/\s+/).filter((e) => e !== '');
    const wildcards = family === 4 ? ['*', '0.0.0.0'] : ['::*', '::'];
    const addressOf = (entry: string): string => canonicalAddress(entry.replace(/^-/, ''));
    const sysctl = `net.ipv${family}.ip_nonlocal_bind`;

    // No bind at all (pre-7 default) listens everywhere.
    if (entries.length === 0 || entries.some((e) => wildcards.includes(addressOf(e)))) {
      if (protectedMode && !(await this.defaultUserHasPassword())) {
        return (
          `Redis listens on all addresses (bind ${bindValue || '<unset>'}) but protected-mode is on and the default ` +
          `user has no password, so it refuses every client that does not come from loopback, including clients ` +
          `through the VIP ${vip}; set a password (requirepass), or protected-mode no on a trusted network only`
        );
      }
      return null;
    }
    const nonlocal = await readNonlocalBind(family);
    const explicit = entries.find((e) => addressOf(e) === canonicalAddress(vip));
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

  /**
   * Disconnects the local Redis's application clients (not ours, recognised by the
   * `clientName` prefix) so they reconnect through the VIP; a readable outcome, never throws.
   */
  disconnectClients(): Promise<string> {
    return this.killApplicationClients();
  }

  /** Closes both local connections. */
  async close(): Promise<void> {
    await Promise.all([this.health.close(), this.control.close()]);
  }

  /** The local side of `promote`; throws when the local Redis fails. */
  private async promoteSteps(
    catchUpFrom: HostPort | null,
    handover: PeerHandover | null,
    trail: Trail,
  ): Promise<{ ok: boolean; redis: RedisSnapshot | null }> {
    const { preDelayMs } = this.options.promotion;
    if (preDelayMs > 0) {
      const since = nowMs();
      await sleep(preDelayMs);
      trail.add(`pre-delay ${preDelayMs} ms`, since);
    }
    let since = nowMs();
    const local = await this.localState(true);
    trail.add(`local ${describeSnapshot(local.snapshot)}`, since);

    if (catchUpFrom === null) {
      trail.add('no catch-up source');
    } else if (handover === null) {
      trail.add(`catch-up with ${formatHostPort(catchUpFrom)} disabled (promotion.wait_for_sync off)`);
    } else {
      await handover.prepare(local.snapshot, local.fields.get('run_id') ?? '');
    }

    since = nowMs();
    const before = await this.localReplication();
    if (before.role === 'master') {
      trail.add('already master, nothing to change', since);
      return { ok: true, redis: before };
    }
    await this.retryWhileBusy(() => this.control.run(this.controlTimeoutMs, (c) => c.replicaof('NO', 'ONE')));
    trail.add('REPLICAOF NO ONE', since);
    since = nowMs();
    const after = await this.localReplication();
    if (after.role !== 'master') {
      trail.add(`still ${describeSnapshot(after)} after REPLICAOF NO ONE`, since);
      return { ok: false, redis: after };
    }
    trail.add(`verified ${describeSnapshot(after)}`, since);
    this.log.info({ offset: after.offset, replId: after.replId }, 'redis promoted');
    await handover?.fence();
    return { ok: true, redis: after };
  }

  private handoverOptions(): HandoverOptions {
    return {
      promotion: this.options.promotion,
      peerEndpoint: this.options.peer,
      localEndpoint: this.options.local,
      self: this.options.self,
      clientName: this.clientName,
      logger: this.log,
    };
  }

  /** The local operations a `PeerHandover` drives, over the control connection. */
  private localRedis(): LocalRedis {
    return {
      state: (withServer) => this.localState(withServer),
      setMasterAuth: (trail) => this.setMasterAuth(trail),
      replicaOf: async (target) => {
        await this.control.run(this.controlTimeoutMs, (c) => c.replicaof(target.host, target.port));
      },
    };
  }

  /** Asks the server at `target` (with the peer's credentials) for its run_id and replication state; never throws. */
  private async probePeer(target: HostPort): ReturnType<typeof probeServer> {
    const peer = new Connection({
      endpoint: this.options.peer,
      target,
      name: `${this.clientName}-peer`,
      timeoutMs: this.options.promotion.peerTimeoutMs,
    });
    try {
      return await probeServer(peer, this.options.promotion.peerTimeoutMs);
    } finally {
      await peer.close();
    }
  }

  /** `CONFIG SET masterauth/masteruser` from the peer endpoint, before REPLICAOF so the first handshake authenticates. */
  private async setMasterAuth(trail: Trail): Promise<void> {
    const { password, username } = this.options.peer;
    if (password === null) return;
    const since = nowMs();
    try {
      await this.control.run(this.controlTimeoutMs, async (c) => {
        await c.config('SET', 'masterauth', password);
        if (username !== null) await c.config('SET', 'masteruser', username);
      });
      trail.add(`CONFIG SET masterauth${username !== null ? ' masteruser' : ''}`, since);
    } catch (err) {
      // CONFIG may be renamed; masterauth in redis.conf still works, so carry on.
      trail.add(`CONFIG SET masterauth failed (${messageOf(err)}), relying on redis.conf`, since);
    }
  }

  /** Polls until the local Redis replicates from `master` or `boundMs` passes; the last snapshot seen, if any. */
  private async waitForRole(master: HostPort, boundMs: number): Promise<RedisSnapshot | null> {
    const deadline = nowMs() + boundMs;
    let last: RedisSnapshot | null = null;
    for (;;) {
      try {
        last = await this.localReplication();
        if (replicatesFrom(last, master)) return last;
      } catch {
        // Keep polling until the bound: a busy server may miss one answer.
      }
      if (nowMs() >= deadline) return last;
      await sleep(ROLE_POLL_INTERVAL_MS);
    }
  }

  /** Kills normal clients not named with our prefix; returns the step text. */
  private async killApplicationClients(): Promise<string> {
    try {
      const killed = await killNormalClients(this.control, this.controlTimeoutMs, this.clientName);
      if (killed === 0) return 'no application clients to disconnect';
      this.log.info({ killed }, 'application clients disconnected');
      return `disconnected ${killed} application client(s)`;
    } catch (err) {
      // The role change already happened; a failed kill only delays clients noticing.
      return `could not disconnect application clients (${messageOf(err)})`;
    }
  }

  /** Whether the default user needs a password (ACL first, then requirepass). */
  private async defaultUserHasPassword(): Promise<boolean> {
    try {
      const reply = await this.control.run(this.controlTimeoutMs, (c) => c.call('ACL', 'GETUSER', 'default'));
      const flags = aclField(reply, 'flags');
      if (Array.isArray(flags)) return !flags.includes('nopass');
    } catch {
      // ACL is Redis 6+; fall back to requirepass.
    }
    try {
      const reply = await this.control.run(this.controlTimeoutMs, (c) => c.config('GET', 'requirepass'));
      return (pairs(reply).get('requirepass') ?? '') !== '';
    } catch {
      return this.options.local.password !== null;
    }
  }

  private async localState(withServer: boolean): Promise<LocalState> {
    return this.control.run(this.controlTimeoutMs, async (c) => {
      const [server, replication] = await Promise.all([
        withServer ? c.info('server') : Promise.resolve(''),
        c.info('replication'),
      ]);
      const fields = parseInfoFields(`${server}\n${replication}`);
      return { snapshot: parseReplicationInfo(replication), fields };
    });
  }

  private async localReplication(): Promise<RedisSnapshot> {
    return (await this.localState(false)).snapshot;
  }

  /** Retries `action` while Redis is loading a dataset or too busy to answer, up to a bound. */
  private async retryWhileBusy<T>(action: () => Promise<T>): Promise<T> {
    const deadline = nowMs() + ROLE_CHANGE_RETRY_MS;
    for (;;) {
      try {
        return await action();
      } catch (err) {
        const busy =
          err instanceof RedisControlError &&
          (err.code === REDIS_TIMEOUT || (err.code === REDIS_REPLY && /^(LOADING|BUSY)/.test(err.message)));
        if (!busy || nowMs() >= deadline) throw err;
        await sleep(ROLE_CHANGE_RETRY_INTERVAL_MS);
      }
    }
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

/** IPv6 addresses have many spellings; compare them in one. */
function canonicalAddress(address: string): string {
  if (isIP(address) !== 6) return address.toLowerCase();
  try {
    return new URL(`http://[${address}]/`).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return address.toLowerCase();
  }
}

async function readNonlocalBind(family: 4 | 6 | number): Promise<string | null> {
  try {
    return (await readFile(`/proc/sys/net/ipv${family}/ip_nonlocal_bind`, 'utf8')).trim();
  } catch {
    return null;
  }
}
