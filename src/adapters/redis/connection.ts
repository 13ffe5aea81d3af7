/**
 * The Redis transport of the adapter: one lazily (re)opened, deadline-bounded ioredis
 * connection (`Connection`), the error codes its failures carry, the one function
 * that turns any error into the words `detail` uses (`describeError`), and the probe
 * that asks a server who it is (`probeServer`: run_id, version, replication state, and
 * whether it is a Redis Cluster node, which redis-ha refuses to touch: `cluster-mode.ts`).
 *
 * Connections are not reconnected by ioredis in the background: a connection that
 * failed (refused, reset, timed out) is destroyed, and the next operation opens a
 * fresh one. That keeps a refused connection an immediate failure, a recovered
 * server a success at the very next check, and a SIGSTOPped server a timeout
 * rather than an ever-growing queue of unanswered commands.
 *
 * ioredis 5.11.1 can leave a client `ready` on a dead socket when the connection
 * closes during its connect handshake (redis/ioredis#2099, fixed upstream by #2123):
 * the handshake's `CLIENT SETNAME` is rejected by the close, and its completion then
 * runs the ready handler anyway. Every command on such a client fails at once with
 * "Stream isn't writeable". It cannot hold a `Connection` here: the handshake's
 * `connect()` promise is rejected by that same close, the failure destroys the client,
 * and a client whose socket is destroyed is never reused whatever its status says.
 *
 * A connection made with `refuseClusterNode` (the local control connection) sends nothing
 * to a Redis Cluster node (issue 14): a Redis restarted as one between two health checks
 * gets no fence, REPLICAOF or CLIENT KILL that was already on its way.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import type { HostPort, RedisSnapshot } from '../../core/types.js';
import type { RedisEndpoint } from '../../config/types.js';
import { errorMessage, RedisControlError } from '../../errors.js';
import { clusterEnabledOf, clusterRefusalLine, type ClusterNode } from './cluster-mode.js';
import { parseInfoFields, parseReplicationInfo } from './info.js';

/** Error codes carried by `RedisControlError`s raised by the Redis adapter. */
export const REDIS_TIMEOUT = 'REDIS_TIMEOUT';
export const REDIS_UNREACHABLE = 'REDIS_UNREACHABLE';
export const REDIS_REPLY = 'REDIS_REPLY';
/** The server is a Redis Cluster node, and the connection refuses to send it anything (`refuseClusterNode`). */
export const REDIS_CLUSTER_NODE = 'REDIS_CLUSTER_NODE';

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

/** An error as an operator reads it in `detail` (socket codes spelled out); the adapter's one error formatter. */
export function describeError(err: unknown): string {
  if (err instanceof RedisControlError) return err.message;
  const code = errorCode(err);
  if (code !== undefined && SOCKET_ERRORS[code] !== undefined) return SOCKET_ERRORS[code];
  return errorMessage(err);
}

/**
 * Whether a client can still carry a command: not closed, and not `ready` on a
 * socket that is gone (the ioredis bug in the file header).
 */
export function usable(client: Redis): boolean {
  if (client.status === 'end' || client.status === 'close') return false;
  const stream = client.stream as typeof client.stream | undefined;
  return stream === undefined || !stream.destroyed;
}

/** Where a `Connection` goes, under which name and bound. */
export interface ConnectionOptions {
  readonly endpoint: RedisEndpoint;
  readonly target: HostPort;
  readonly name: string;
  /** ioredis connect and per-command timeout. */
  readonly timeoutMs: number;
  /**
   * Called when an established connection closes by the server's or the network's doing
   * (not by `close()` or a failure handled here): the health check uses it to look again
   * at once (a crashed Redis closes every connection within a millisecond).
   */
  readonly onLost?: () => void;
  /**
   * Refuse to send anything to a Redis Cluster node (issue 14): each new client first asks
   * `INFO cluster`, and every `run()` on a client whose server says `cluster_enabled:1`
   * fails with `REDIS_CLUSTER_NODE` (the refusal naming `node`) before its work starts. An
   * INFO the ACL refuses, or a server that does not say, is not refused.
   */
  readonly refuseClusterNode?: ClusterNode;
}

/** The ioredis options of every `Connection` (exported for tests of the handshake). */
export function clientOptions(options: ConnectionOptions): RedisOptions {
  const { endpoint, target, name, timeoutMs } = options;
  return {
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
}

interface ConnectionEntry {
  readonly client: Redis;
  /** Settles when the connection is usable (or failed); set right after the error listener. */
  ready: Promise<void>;
  /** Last `error` event: the real reason behind a later "Connection is closed.". */
  lastError: Error | null;
  /** The connection was established (its `ready` event came). */
  opened: boolean;
  /** We are closing it ourselves (`destroy`): its `close` event is no news. */
  dropped: boolean;
  /** With `refuseClusterNode`: whether the server is a cluster node (undefined: not asked yet). */
  clusterNode: boolean | undefined;
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
    return this.entry === null || !usable(this.entry.client);
  }

  async run<T>(deadlineMs: number, work: (client: Redis) => Promise<T>): Promise<T> {
    if (this.closed) throw new RedisControlError(REDIS_UNREACHABLE, 'connection closed');
    const entry = this.acquire();
    const attempt = entry.ready.then(() => this.refuseCluster(entry)).then(() => work(entry.client));
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
    if (current !== null && usable(current.client)) return current;
    if (current !== null) this.destroy(current);
    const client = new Redis(clientOptions(this.options));
    const entry: ConnectionEntry = { client, ready: Promise.resolve(), lastError: null, opened: false, dropped: false, clusterNode: undefined };
    client.on('error', (err: Error) => {
      entry.lastError = err;
    });
    client.on('ready', () => {
      entry.opened = true;
    });
    client.on('close', () => {
      if (entry.opened && !entry.dropped && !this.closed) this.options.onLost?.();
    });
    entry.ready = client.connect();
    entry.ready.catch(() => undefined);
    this.entry = entry;
    return entry;
  }

  /** See `refuseClusterNode`: asked once per client, inside the caller's deadline. */
  private async refuseCluster(entry: ConnectionEntry): Promise<void> {
    const node = this.options.refuseClusterNode;
    if (node === undefined) return;
    if (entry.clusterNode === undefined) {
      let text = '';
      try {
        text = await entry.client.info('cluster');
      } catch (err) {
        // Refused by the ACL (NOPERM): the mode is unknown, which `run` warned about at start-up.
        if (!isReplyError(err)) throw err;
      }
      entry.clusterNode = clusterEnabledOf(text) === true;
    }
    if (entry.clusterNode) {
      throw new RedisControlError(REDIS_CLUSTER_NODE, clusterRefusalLine(node, { state: null, knownNodes: null, unreadable: null }));
    }
  }

  private destroy(entry: ConnectionEntry): void {
    entry.dropped = true;
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
    const message = describeError(reason);
    const closed = message === 'Connection is closed.' || message.startsWith("Stream isn't writeable");
    return new RedisControlError(REDIS_UNREACHABLE, closed ? 'connection closed' : message, { cause: err });
  }
}

/** What `probeServer` learned about a server that answered. */
export interface ServerProbe {
  readonly ok: true;
  readonly runId: string;
  /** `redis_version`, e.g. `7.0.15`; empty when INFO did not say. */
  readonly version: string;
  readonly snapshot: RedisSnapshot;
  /**
   * `cluster_enabled` of `INFO cluster`: true for a Redis Cluster node, to which the caller
   * sends nothing that changes it; null when the server did not say (a Redis before 3.0).
   */
  readonly clusterEnabled: boolean | null;
}

/**
 * Asks a server for its run_id, version, replication state and cluster mode, bounded by
 * `timeoutMs`; never throws.
 */
export async function probeServer(
  connection: Connection,
  timeoutMs: number,
): Promise<ServerProbe | { readonly ok: false; readonly detail: string }> {
  try {
    const [server, replication, cluster] = await connection.run(timeoutMs, (c) =>
      Promise.all([c.info('server'), c.info('replication'), c.info('cluster')]),
    );
    const fields = parseInfoFields(server);
    return {
      ok: true,
      runId: fields.get('run_id') ?? '',
      version: fields.get('redis_version') ?? '',
      snapshot: parseReplicationInfo(replication),
      clusterEnabled: clusterEnabledOf(cluster),
    };
  } catch (err) {
    return { ok: false, detail: describeError(err) };
  }
}
