/**
 * Reading a server's cluster mode (`cluster-mode.ts` says what it means): `INFO cluster`,
 * then, on a cluster node only, `CLUSTER INFO`. Read on a client the caller already holds
 * (the health check, once per connection: `cluster-enabled` cannot change without a
 * restart, which closes the connection), or by a one-shot probe bounded by one deadline
 * (`check-config` and `run`'s start-up: one attempt, never retried, never hanging).
 *
 * An ACL refusal (`-NOPERM`) is an answer, not a failure: the mode is `unknown` (INFO
 * refused) or the cluster's state unreadable (CLUSTER INFO refused). Anything else that
 * goes wrong (the connection, a timeout) is thrown to the caller as usual.
 */
import type { Redis } from 'ioredis';
import type { RedisEndpoint } from '../../config/types.js';
import {
  clusterModeOf,
  isNoPermission,
  noPermissionText,
  parseClusterInfo,
  type ClusterInfo,
  type ClusterMode,
  type ClusterProbe,
} from './cluster-mode.js';
import { Connection, describeError } from './connection.js';

function replyError(err: unknown): Error | null {
  return err instanceof Error && err.name === 'ReplyError' ? err : null;
}

/** `cluster_state` and `cluster_known_nodes` of a cluster node; a reply error is reported in `unreadable`. */
export async function readClusterInfo(client: Redis): Promise<ClusterInfo> {
  try {
    return parseClusterInfo(String(await client.call('CLUSTER', 'INFO')));
  } catch (err) {
    const reply = replyError(err);
    if (reply === null) throw err;
    const unreadable = isNoPermission(reply.message) ? noPermissionText('CLUSTER INFO', reply.message) : reply.message;
    return { state: null, knownNodes: null, unreadable };
  }
}

/** The server's cluster mode, read on `client` (see the file header for what throws). */
export async function readClusterMode(client: Redis): Promise<ClusterMode> {
  let text: string;
  try {
    text = await client.info('cluster');
  } catch (err) {
    const reply = replyError(err);
    if (reply !== null && isNoPermission(reply.message)) return { kind: 'unknown', why: noPermissionText('INFO', reply.message) };
    throw err;
  }
  const mode = clusterModeOf(text);
  return mode.kind === 'cluster' ? { kind: 'cluster', info: await readClusterInfo(client) } : mode;
}

/**
 * One look at `endpoint`'s cluster mode over a connection of its own, connect and
 * commands together bounded by `timeoutMs`; closed afterwards. Never throws: a server
 * that cannot be asked is `reachable: false` with the reason.
 */
export async function probeClusterMode(endpoint: RedisEndpoint, timeoutMs: number, clientName: string): Promise<ClusterProbe> {
  const connection = new Connection({
    endpoint,
    target: { host: endpoint.host, port: endpoint.port },
    name: clientName,
    timeoutMs,
  });
  try {
    return { reachable: true, mode: await connection.run(timeoutMs, (client) => readClusterMode(client)) };
  } catch (err) {
    return { reachable: false, detail: describeError(err) };
  } finally {
    await connection.close();
  }
}
