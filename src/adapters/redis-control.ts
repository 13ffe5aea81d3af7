/**
 * The Redis effect: health checks, promotion (with catch-up), demotion, and the
 * start-up bind check, all in process through ioredis (no `redis-cli` scripts).
 *
 * Three kinds of connection, so that a slow role change never delays a health check:
 *
 *   health   (`redis-ha`)          long-lived, PING + INFO replication, bounded by
 *                                  `health.timeoutMs`
 *   control  (`redis-ha-control`)  long-lived, REPLICAOF / CONFIG / CLIENT on the local Redis
 *   peer     (`redis-ha-peer`)     per operation, INFO on the peer during promotion/demotion
 *
 * Every connection is named with the `clientName` prefix so demotion can kill the
 * application clients still attached to a demoted master without killing our own
 * (or the other node's daemon). Failures never escape as exceptions from the public
 * methods: they become `{ ok: false, detail }`, and `detail` is written for the
 * audit log (each step with its duration).
 *
 * Connections are not reconnected by ioredis in the background: a connection that
 * failed (refused, reset, timed out) is destroyed, and the next operation opens a
 * fresh one. That keeps a refused connection an immediate failure, a recovered
 * server a success at the very next check, and a SIGSTOPped server a timeout
 * rather than an ever-growing queue of unanswered commands.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import type { HostPort, RedisSnapshot } from '../core/types.js';
import type { Config, RedisEndpoint } from '../config/types.js';
import type { Logger } from '../daemon/logger.js';
import { RedisControlError } from '../errors.js';
import { parseInfoFields, parseReplicationInfo } from './redis-info.js';

/** Default `CLIENT SETNAME` of the health connection; other connections add a suffix. */
export const DEFAULT_CLIENT_NAME = 'redis-ha';

/** Error codes carried by `RedisControlError`s raised here. */
export const REDIS_TIMEOUT = 'REDIS_TIMEOUT';
export const REDIS_UNREACHABLE = 'REDIS_UNREACHABLE';
export const REDIS_REPLY = 'REDIS_REPLY';

/** Role commands get at least this long: a replica busy flushing its old dataset answers slowly. */
const CONTROL_MIN_TIMEOUT_MS = 2_000;
/** How often the local replica is polled while it catches up. */
const SYNC_POLL_INTERVAL_MS = 25;
/** How often the peer is pinged during catch-up, so a dead peer ends the wait early. */
const PEER_PROBE_INTERVAL_MS = 500;
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

/** Thrown internally when an operation overruns its bound; reported as a timeout. */
class DeadlineExceeded extends Error {}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const { code } = err;
  return typeof code === 'string' ? code : undefined;
}

function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

/** Socket error codes as an operator reads them. */
const SOCKET_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ETIMEDOUT: 'connect timeout',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'cannot resolve host',
  EAI_AGAIN: 'cannot resolve host',
};

function messageOf(err: unknown): string {
  if (err instanceof RedisControlError) return err.message;
  const code = errorCode(err);
  if (code !== undefined && SOCKET_ERRORS[code] !== undefined) return SOCKET_ERRORS[code];
  return err instanceof Error ? err.message : String(err);
}

function formatHostPort(target: HostPort): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

function describeSnapshot(s: RedisSnapshot): string {
  if (s.role === 'master') return `role master, offset ${s.offset}, ${s.connectedReplicas} replica(s)`;
  const link = s.linkUp ? 'link up' : s.syncInProgress ? 'full sync in progress' : 'link down';
  return `role replica of ${s.masterHost ?? '?'}:${s.masterPort ?? '?'}, ${link}, offset ${s.offset}`;
}

function replicatesFrom(s: RedisSnapshot, target: HostPort): boolean {
  return s.role === 'replica' && s.masterHost === target.host && s.masterPort === target.port;
}

/** Monotonic milliseconds: durations in `detail` must not jump with the wall clock. */
function nowMs(): number {
  return performance.now();
}

/** The step-by-step account of one operation that ends up in `detail`. */
class Trail {
  private readonly steps: string[] = [];
  private readonly startedAt = nowMs();

  /** Records a step that started at `since` (a `nowMs()` value). */
  add(text: string, since?: number): void {
    this.steps.push(since === undefined ? text : `${text} (${Math.round(nowMs() - since)} ms)`);
  }

  toString(): string {
    return `${this.steps.join('; ')}; total ${Math.round(nowMs() - this.startedAt)} ms`;
  }
}

interface ConnectionOptions {
  readonly endpoint: RedisEndpoint;
  readonly target: HostPort;
  readonly name: string;
  /** ioredis connect and per-command timeout. */
  readonly timeoutMs: number;
}

interface ConnectionEntry {
  readonly client: Redis;
  /** Settles when the connection is usable (or failed); set right after the error listener. */
  ready: Promise<void>;
  /** Last `error` event: the real reason behind a later "Connection is closed.". */
  lastError: Error | null;
}

/**
 * One lazily (re)opened ioredis connection. `run()` bounds connect plus work by a
 * deadline; on a timeout or connection error the client is destroyed so the next
 * `run()` starts afresh (scenario: a SIGSTOPped server keeps the TCP connection
 * open forever, and unanswered commands would pile up behind it).
 */
class Connection {
  private entry: ConnectionEntry | null = null;
  private closed = false;

  constructor(private readonly options: ConnectionOptions) {}

  /** True once a connection was opened and then lost (the peer died or stopped answering). */
  get lost(): boolean {
    return this.entry === null || this.entry.client.status === 'end' || this.entry.client.status === 'close';
  }

  async run<T>(deadlineMs: number, work: (client: Redis) => Promise<T>): Promise<T> {
    if (this.closed) throw new RedisControlError(REDIS_UNREACHABLE, 'connection closed');
    const entry = this.acquire();
    const attempt = entry.ready.then(() => work(entry.client));
    // The deadline may win the race; the loser's rejection must not go unhandled.
    attempt.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new DeadlineExceeded()), deadlineMs);
    });
    try {
      return await Promise.race([attempt, deadline]);
    } catch (err) {
      throw this.failure(err, entry, deadlineMs);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const entry = this.entry;
    this.entry = null;
    if (entry === null) return;
    if (entry.client.status === 'ready') {
      // A polite QUIT, bounded: a hung server must not hold up shutdown.
      await Promise.race([entry.client.quit().catch(() => undefined), sleep(200)]);
    }
    this.destroy(entry);
  }

  private acquire(): ConnectionEntry {
    const current = this.entry;
    if (current !== null && current.client.status !== 'end' && current.client.status !== 'close') return current;
    if (current !== null) this.destroy(current);
    const { endpoint, target, name, timeoutMs } = this.options;
    const redisOptions: RedisOptions = {
      host: target.host,
      port: target.port,
      username: endpoint.username ?? undefined,
      password: endpoint.password ?? undefined,
      tls: endpoint.tls ? { rejectUnauthorized: !endpoint.tlsInsecure } : undefined,
      connectionName: name,
      lazyConnect: true,
      // Fail at once when not connected instead of queueing behind a dead socket.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // Reconnection is ours (see the file header): a failed connection is replaced on next use.
      retryStrategy: () => null,
      // A loading server must answer PING with `-LOADING`, not keep us waiting for "ready".
      enableReadyCheck: false,
      commandTimeout: timeoutMs,
      connectTimeout: timeoutMs,
      // CLIENT SETINFO only exists from Redis 7.2; skip the noise.
      disableClientInfo: true,
    };
    const client = new Redis(redisOptions);
    const entry: ConnectionEntry = { client, ready: Promise.resolve(), lastError: null };
    client.on('error', (err: Error) => {
      entry.lastError = err;
    });
    entry.ready = client.connect();
    entry.ready.catch(() => undefined);
    this.entry = entry;
    return entry;
  }

  private destroy(entry: ConnectionEntry): void {
    if (this.entry === entry) this.entry = null;
    entry.client.disconnect();
    // `disconnect()` only half-closes; a stopped server never completes the close.
    (entry.client.stream as typeof entry.client.stream | undefined)?.destroy();
  }

  private failure(err: unknown, entry: ConnectionEntry, deadlineMs: number): RedisControlError {
    if (err instanceof DeadlineExceeded || (err instanceof Error && err.message === 'Command timed out')) {
      const connecting = entry.client.status !== 'ready';
      this.destroy(entry);
      const ms = err instanceof DeadlineExceeded ? deadlineMs : this.options.timeoutMs;
      return new RedisControlError(REDIS_TIMEOUT, `timeout after ${ms} ms${connecting ? ' (connecting)' : ''}`);
    }
    // A reply error comes over a healthy connection: keep it.
    if (isReplyError(err)) return new RedisControlError(REDIS_REPLY, err.message, { cause: err });
    if (err instanceof RedisControlError) return err;
    this.destroy(entry);
    // "Connection is closed." hides the reason (WRONGPASS, ECONNRESET) that came as an event.
    const reason = errorCode(err) !== undefined || entry.lastError === null ? err : entry.lastError;
    const message = messageOf(reason);
    const closed = message === 'Connection is closed.' || message.startsWith("Stream isn't writeable");
    return new RedisControlError(REDIS_UNREACHABLE, closed ? 'connection closed' : message, { cause: err });
  }
}

interface LocalState {
  readonly snapshot: RedisSnapshot;
  readonly fields: Map<string, string>;
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
   * With `catchUpFrom` and `promotion.waitForSync`, first replicates from that peer
   * (only if it answers, is a master, and is not this very server) until the local
   * offset reaches the peer's offset read when the wait began, bounded by
   * `maxSyncWaitMs`; then `REPLICAOF NO ONE` and a check of `role:master`. A
   * catch-up that times out still promotes, and `detail` says how far behind.
   */
  async promote(catchUpFrom: HostPort | null): Promise<RedisPromoteResult> {
    const trail = new Trail();
    const { preDelayMs, syncDelayMs, waitForSync } = this.options.promotion;
    try {
      if (preDelayMs > 0) {
        const since = nowMs();
        await sleep(preDelayMs);
        trail.add(`pre-delay ${preDelayMs} ms`, since);
      }
      let since = nowMs();
      const local = await this.localState(true);
      const runId = local.fields.get('run_id') ?? '';
      trail.add(`local ${describeSnapshot(local.snapshot)}`, since);

      let replicatedFromPeer = false;
      if (catchUpFrom === null) {
        trail.add('no catch-up source');
      } else if (!waitForSync) {
        trail.add(`catch-up with ${formatHostPort(catchUpFrom)} disabled (promotion.wait_for_sync off)`);
      } else {
        replicatedFromPeer = await this.catchUp(catchUpFrom, local.snapshot, runId, trail);
      }
      if (replicatedFromPeer && syncDelayMs > 0) {
        since = nowMs();
        await sleep(syncDelayMs);
        trail.add(`sync delay ${syncDelayMs} ms`, since);
      }

      since = nowMs();
      const before = await this.localReplication();
      if (before.role === 'master') {
        trail.add('already master, nothing to change', since);
        return { ok: true, detail: trail.toString(), redis: before };
      }
      await this.retryWhileBusy(() => this.control.run(this.controlTimeoutMs, (c) => c.replicaof('NO', 'ONE')));
      trail.add('REPLICAOF NO ONE', since);
      since = nowMs();
      const after = await this.localReplication();
      if (after.role !== 'master') {
        trail.add(`still ${describeSnapshot(after)} after REPLICAOF NO ONE`, since);
        return { ok: false, detail: trail.toString(), redis: after };
      }
      trail.add(`verified ${describeSnapshot(after)}`, since);
      this.log.info({ offset: after.offset, replId: after.replId }, 'redis promoted');
      return { ok: true, detail: trail.toString(), redis: after };
    } catch (err) {
      trail.add(`failed: local Redis: ${messageOf(err)}`);
      const detail = trail.toString();
      this.log.warn({ detail }, 'redis promotion failed');
      return { ok: false, detail, redis: null };
    }
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

  /** Closes both local connections. */
  async close(): Promise<void> {
    await Promise.all([this.health.close(), this.control.close()]);
  }

  /**
   * Replicates from `source` until caught up (see `promote`). Returns whether the
   * local Redis was pointed at the peer, i.e. whether `REPLICAOF NO ONE` is needed.
   */
  private async catchUp(source: HostPort, local: RedisSnapshot, localRunId: string, trail: Trail): Promise<boolean> {
    const name = formatHostPort(source);
    const { maxSyncWaitMs, peerTimeoutMs } = this.options.promotion;
    let since = nowMs();
    const peer = this.peerConnection(source);
    try {
      const probe = await this.probePeer(source, peer);
      if (!probe.ok) {
        trail.add(`catch-up skipped: peer ${name} unreachable (${probe.detail})`, since);
        return false;
      }
      if (sameServer(probe.runId, localRunId)) {
        trail.add(`catch-up skipped: ${name} is this very server (same run_id)`, since);
        return false;
      }
      if (probe.snapshot.role !== 'master') {
        // Never chain behind a replica: its data is no newer than its own master's.
        trail.add(`catch-up skipped: peer ${name} is not a master (${describeSnapshot(probe.snapshot)})`, since);
        return false;
      }
      trail.add(`peer ${name} is master at offset ${probe.snapshot.offset}`, since);

      await this.setMasterAuth(trail);
      since = nowMs();
      if (replicatesFrom(local, source)) {
        trail.add(`already replicating from ${name}`);
      } else {
        await this.control.run(this.controlTimeoutMs, (c) => c.replicaof(source.host, source.port));
        trail.add(`REPLICAOF ${source.host} ${source.port}`, since);
      }

      since = nowMs();
      let target: RedisSnapshot;
      try {
        target = await peer.run(peerTimeoutMs, async (c) => parseReplicationInfo(await c.info('replication')));
      } catch (err) {
        trail.add(`catch-up abandoned: peer ${name} stopped answering (${messageOf(err)})`, since);
        return true;
      }
      const waited = await this.waitForCatchUp(source, target, peer, since + maxSyncWaitMs);
      trail.add(waited, since);
      return true;
    } finally {
      await peer.close();
    }
  }

  /**
   * Polls the local replica until it has applied the peer's stream up to
   * `target.offset`; returns the step text. Each poll gets the full control timeout
   * (a poll cut short would cost the connection), so a local Redis that stops
   * answering can stretch the wait past `deadline` by one poll.
   */
  private async waitForCatchUp(
    source: HostPort,
    target: RedisSnapshot,
    peer: Connection,
    deadline: number,
  ): Promise<string> {
    const { maxSyncWaitMs, peerTimeoutMs } = this.options.promotion;
    let last: LocalState | null = null;
    let lastError = '';
    let lastProbe = nowMs();
    for (;;) {
      try {
        last = await this.localState(false);
        const s = last.snapshot;
        if (replicatesFrom(s, source) && s.linkUp && !s.syncInProgress && s.offset >= target.offset) {
          return `caught up to offset ${s.offset} (peer was at ${target.offset})`;
        }
      } catch (err) {
        // Gone is final (promotion cannot succeed); slow is not: a replica flushing or
        // loading a big dataset can miss a poll.
        if (err instanceof RedisControlError && err.code === REDIS_UNREACHABLE) throw err;
        lastError = messageOf(err);
      }
      if (nowMs() >= deadline) break;
      if (nowMs() - lastProbe >= PEER_PROBE_INTERVAL_MS) {
        lastProbe = nowMs();
        // Not awaited: a failed probe drops the peer connection, which `lost` reports below.
        peer.run(peerTimeoutMs, (c) => c.ping()).catch(() => undefined);
      }
      if (peer.lost) {
        return `catch-up abandoned: peer connection lost while waiting${behind(last, target)}; promoting anyway`;
      }
      await sleep(SYNC_POLL_INTERVAL_MS);
    }
    const why = last === null ? ` (local Redis: ${lastError})` : behind(last, target);
    this.log.warn({ source: formatHostPort(source), target: target.offset, maxSyncWaitMs }, 'redis catch-up timed out');
    return `catch-up timed out after ${maxSyncWaitMs} ms${why}; promoting anyway`;
  }

  private peerConnection(target: HostPort): Connection {
    return new Connection({
      endpoint: this.options.peer,
      target,
      name: `${this.clientName}-peer`,
      timeoutMs: this.options.promotion.peerTimeoutMs,
    });
  }

  /** Asks `target` for its run_id and replication state; never throws. */
  private async probePeer(
    target: HostPort,
    connection?: Connection,
  ): Promise<{ ok: true; runId: string; snapshot: RedisSnapshot } | { ok: false; detail: string }> {
    const peer = connection ?? this.peerConnection(target);
    try {
      const [server, replication] = await peer.run(this.options.promotion.peerTimeoutMs, (c) =>
        Promise.all([c.info('server'), c.info('replication')]),
      );
      return {
        ok: true,
        runId: parseInfoFields(server).get('run_id') ?? '',
        snapshot: parseReplicationInfo(replication),
      };
    } catch (err) {
      return { ok: false, detail: messageOf(err) };
    } finally {
      if (connection === undefined) await peer.close();
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
      return await this.control.run(this.controlTimeoutMs, async (c) => {
        const list = await c.client('LIST', 'TYPE', 'NORMAL');
        const ids = parseClientList(typeof list === 'string' ? list : String(list))
          .filter((entry) => !entry.name.startsWith(this.clientName))
          .map((entry) => entry.id);
        if (ids.length === 0) return 'no application clients to disconnect';
        const pipeline = c.pipeline();
        for (const id of ids) pipeline.call('CLIENT', 'KILL', 'ID', id);
        const results = (await pipeline.exec()) ?? [];
        const killed = results.filter(([err, reply]) => err === null && Number(reply) > 0).length;
        this.log.info({ killed }, 'application clients disconnected');
        return `disconnected ${killed} application client(s)`;
      });
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

/**
 * How far a catch-up that did not finish got, for `detail`. During a full sync the
 * stream offset says nothing yet (the snapshot carries the data), so the transfer
 * progress is given instead of a byte distance.
 */
function behind(state: LocalState | null, target: RedisSnapshot): string {
  if (state === null) return '';
  const { snapshot, fields } = state;
  if (snapshot.syncInProgress) {
    const read = fields.get('master_sync_read_bytes');
    const total = Number(fields.get('master_sync_total_bytes') ?? -1);
    // Diskless sync streams the snapshot without announcing its size (total 0 or -1).
    const size = total > 0 ? ` of ${total}` : '';
    return ` (full sync still in progress${read !== undefined ? `: ${read}${size} snapshot bytes received` : ''})`;
  }
  // Offsets only compare within one history: before its first sync the replica still counts its own.
  if (snapshot.replId !== target.replId) {
    return ` (not synced with the peer yet, link ${snapshot.linkUp ? 'up' : 'down'}; peer at offset ${target.offset})`;
  }
  const distance = Math.max(0, target.offset - snapshot.offset);
  return ` (${distance} bytes behind (offset ${snapshot.offset} of ${target.offset})${snapshot.linkUp ? '' : ', link down'})`;
}

/** Two run_ids name the same server process; an unknown (empty) run_id matches nothing. */
function sameServer(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && a !== '' && a === b;
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

/** The id and name of each line of `CLIENT LIST` (`id=7 addr=... name=foo ...`). */
export function parseClientList(text: string): { id: string; name: string }[] {
  const clients: { id: string; name: string }[] = [];
  for (const line of text.split('\n')) {
    const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
    if (id === undefined) continue;
    const name = /(?:^|\s)name=(\S*)/.exec(line)?.[1] ?? '';
    clients.push({ id, name });
  }
  return clients;
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
