/**
 * The Redis transport shared by the control adapter and the promotion handover: one
 * lazily (re)opened, deadline-bounded ioredis connection (`Connection`), the
 * step-by-step account that becomes an operation's `detail` (`Trail`), and the small
 * helpers both sides use to read and describe a server (probe, client eviction).
 *
 * Connections are not reconnected by ioredis in the background: a connection that
 * failed (refused, reset, timed out) is destroyed, and the next operation opens a
 * fresh one. That keeps a refused connection an immediate failure, a recovered
 * server a success at the very next check, and a SIGSTOPped server a timeout
 * rather than an ever-growing queue of unanswered commands.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import type { HostPort, RedisSnapshot } from '../../core/types.js';
import type { RedisEndpoint } from '../../config/types.js';
import { RedisControlError } from '../../errors.js';
import { parseInfoFields, parseReplicationInfo } from './info.js';

/** Error codes carried by `RedisControlError`s raised by the Redis adapters. */
export const REDIS_TIMEOUT = 'REDIS_TIMEOUT';
export const REDIS_UNREACHABLE = 'REDIS_UNREACHABLE';
export const REDIS_REPLY = 'REDIS_REPLY';

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

/** An error as an operator reads it (socket codes spelled out). */
export function messageOf(err: unknown): string {
  if (err instanceof RedisControlError) return err.message;
  const code = errorCode(err);
  if (code !== undefined && SOCKET_ERRORS[code] !== undefined) return SOCKET_ERRORS[code];
  return err instanceof Error ? err.message : String(err);
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatHostPort(target: HostPort): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

/** One phrase for a replication snapshot, as `detail` shows it. */
export function describeSnapshot(s: RedisSnapshot): string {
  if (s.role === 'master') return `role master, offset ${s.offset}, ${s.connectedReplicas} replica(s)`;
  const link = s.linkUp ? 'link up' : s.syncInProgress ? 'full sync in progress' : 'link down';
  return `role replica of ${s.masterHost ?? '?'}:${s.masterPort ?? '?'}, ${link}, offset ${s.offset}`;
}

/** Whether `s` is a replica pointed at `target` (link up or not). */
export function replicatesFrom(s: RedisSnapshot, target: HostPort): boolean {
  return s.role === 'replica' && s.masterHost === target.host && s.masterPort === target.port;
}

/** Monotonic milliseconds: durations in `detail` must not jump with the wall clock. */
export function nowMs(): number {
  return performance.now();
}

/** The step-by-step account of one operation that ends up in `detail`. */
export class Trail {
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

/** Where a `Connection` goes, under which name and bound. */
export interface ConnectionOptions {
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
export class Connection {
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

/** A server's `INFO replication` snapshot plus the raw fields read with it. */
export interface LocalState {
  readonly snapshot: RedisSnapshot;
  readonly fields: Map<string, string>;
}

/** Two run_ids name the same server process; an unknown (empty) run_id matches nothing. */
export function sameServer(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && a !== '' && a === b;
}

/** What `probeServer` learned about a server that answered. */
export interface ServerProbe {
  readonly ok: true;
  readonly runId: string;
  /** `redis_version`, e.g. `7.0.15`; empty when INFO did not say. */
  readonly version: string;
  readonly snapshot: RedisSnapshot;
}

/** Asks a server for its run_id, version and replication state, bounded by `timeoutMs`; never throws. */
export async function probeServer(
  connection: Connection,
  timeoutMs: number,
): Promise<ServerProbe | { readonly ok: false; readonly detail: string }> {
  try {
    const [server, replication] = await connection.run(timeoutMs, (c) =>
      Promise.all([c.info('server'), c.info('replication')]),
    );
    const fields = parseInfoFields(server);
    return {
      ok: true,
      runId: fields.get('run_id') ?? '',
      version: fields.get('redis_version') ?? '',
      snapshot: parseReplicationInfo(replication),
    };
  } catch (err) {
    return { ok: false, detail: messageOf(err) };
  }
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

/**
 * `CLIENT KILL`s every normal client whose name does not start with `keepPrefix`
 * (ours and the other daemon's connections, which share the prefix, survive; so do
 * replication links, which are not of type normal). Returns how many were killed.
 */
export async function killNormalClients(connection: Connection, timeoutMs: number, keepPrefix: string): Promise<number> {
  return connection.run(timeoutMs, async (c) => {
    const list = await c.client('LIST', 'TYPE', 'NORMAL');
    const ids = parseClientList(typeof list === 'string' ? list : String(list))
      .filter((entry) => !entry.name.startsWith(keepPrefix))
      .map((entry) => entry.id);
    if (ids.length === 0) return 0;
    const pipeline = c.pipeline();
    for (const id of ids) pipeline.call('CLIENT', 'KILL', 'ID', id);
    const results = (await pipeline.exec()) ?? [];
    return results.filter(([err, reply]) => err === null && Number(reply) > 0).length;
  });
}

/**
 * How far a catch-up that did not finish got, for `detail`. During a full sync the
 * stream offset says nothing yet (the snapshot carries the data), so the transfer
 * progress is given instead of a byte distance.
 */
export function behind(state: LocalState | null, target: RedisSnapshot): string {
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
