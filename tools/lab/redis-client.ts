/**
 * The lab writer's Redis client: its options, and the check for a client that ioredis
 * left "ready" on a dead socket.
 *
 * ioredis 5.x up to 5.11.1 (redis/ioredis#2099, fixed by #2123 in 6.0.0) can do that
 * when a connection closes during its handshake. With `enableReadyCheck: false`,
 * `connectHandler` waits for the handshake commands (AUTH, CLIENT SETINFO) and then
 * runs the ready handler without checking that the connection is still the current
 * one. When the connection closes first, the close handler schedules a reconnect and,
 * with `maxRetriesPerRequest: 0`, flushes those commands; their rejections are
 * swallowed, so the ready handler runs anyway and sets the status to `ready`. The
 * scheduled reconnect then refuses ("already connecting/connected"), no close event is
 * left to come, and every command fails at once with "Stream isn't writeable". The
 * writer opens a connection after every failover or switchover, so a reset that ends
 * one in its first milliseconds (the VIP moving under it) is enough.
 */
import type { Redis, RedisOptions } from 'ioredis';

/** Command timeout: an op still unanswered after this is `unknown`. */
export const COMMAND_TIMEOUT_MS = 250;
/** Shortest command/connect timeout a run may ask for: below this a loaded lab host times out healthy commands. */
export const MIN_COMMAND_TIMEOUT_MS = 20;
/** Delay before each reconnect attempt. */
export const RECONNECT_DELAY_MS = 20;
/** ioredis waits this long for a polite close before destroying the socket. */
const DISCONNECT_TIMEOUT_MS = 50;

/**
 * The writer's deliberately unforgiving client: no offline queue, no retries, no
 * resends, 250 ms command and connect timeouts (`timeoutMs`), quick reconnects.
 *
 * The timeouts set the grain of how soon the client notices a master that went silent
 * (link down): a command sent into the silence, or a connect whose SYN went to the old
 * host, waits its timeout before the client tries the new one (TCP's own retransmission
 * would wait 200 ms, then 400 ms, ...). A failover faster than the timeout is seen as
 * the timeout.
 */
export function writerClientOptions(target: { host: string; port: number; password: string | null }, timeoutMs = COMMAND_TIMEOUT_MS): RedisOptions {
  return {
    host: target.host,
    port: target.port,
    password: target.password ?? undefined,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    enableReadyCheck: false,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    retryStrategy: () => RECONNECT_DELAY_MS,
    reconnectOnError: () => false,
  };
}

/**
 * Whether `client` says `ready` but has no live socket: the state described in the
 * file header, which ioredis never leaves by itself. A client that is reconnecting is
 * not stuck (its commands fail with the same "Stream isn't writeable" until the
 * reconnect lands), so only `ready` counts.
 */
export function isStuckReady(client: Pick<Redis, 'status' | 'stream'>): boolean {
  if (client.status !== 'ready') return false;
  const stream = client.stream as Redis['stream'] | undefined;
  return stream === undefined || stream.destroyed || !stream.writable;
}
