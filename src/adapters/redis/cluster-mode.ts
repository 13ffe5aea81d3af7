/**
 * Redis Cluster is recognised and refused (issue 14): what `INFO cluster` and `CLUSTER
 * INFO` say about a server, and the words redis-ha uses when it finds a cluster node.
 * Pure: no I/O. The reads are in `cluster-check.ts`; `check-config`, `run`'s start-up,
 * the health check, the takeover's and the demotion's look at the peer, the switchover's
 * pre-checks and `status` all take their facts and their text from here.
 *
 * Why a cluster node is refused: Redis Cluster elects its own masters (a replica takes
 * over a failed master by itself) and its clients follow MOVED redirections to the
 * nodes' own addresses, never a VIP. A daemon that moved a VIP there and sent
 * `REPLICAOF`, `CONFIG SET` or `CLIENT PAUSE` would fight the cluster's own failover and
 * break it. So redis-ha sends a cluster node nothing that changes it, and says what to
 * use instead.
 *
 * A server whose mode cannot be read (a Redis before 3.0 has no cluster section in
 * INFO; an ACL user without `+info`) is not silently taken for a standalone one: it is
 * reported (`unknown`), with the ACL rule that would let redis-ha read it, but not refused.
 */
import { parseInfoFields } from './info.js';
import { formatHostPort } from './snapshot.js';

/** The ACL rules redis-ha needs to read a server's cluster mode. */
export const CLUSTER_ACL_RULES = '+info +cluster|info';

/** What a server's cluster mode was found to be. */
export type ClusterMode =
  /** `cluster_enabled:0`: a standalone server, as redis-ha expects. */
  | { readonly kind: 'standalone' }
  /** `cluster_enabled:1`: a Redis Cluster node, refused. */
  | { readonly kind: 'cluster'; readonly info: ClusterInfo }
  /** The mode could not be read (`why`): warned about, not refused. */
  | { readonly kind: 'unknown'; readonly why: string };

/**
 * What `CLUSTER INFO` said of a cluster node: `cluster_state` (`ok`, `fail`) and
 * `cluster_known_nodes` (1: not joined to any other node yet), each null when it did not
 * say; `unreadable`: why it could not be asked (an ACL without `+cluster|info`), or null.
 */
export interface ClusterInfo {
  readonly state: string | null;
  readonly knownNodes: number | null;
  readonly unreadable: string | null;
}

/** Which of the two servers a message is about, and where it is. */
export interface ClusterNode {
  readonly side: 'local' | 'peer';
  readonly host: string;
  readonly port: number;
  /** The ACL user redis-ha logs in as (null: the default user): named in the ACL advice. */
  readonly username?: string | null;
}

/**
 * `cluster_enabled` of an `INFO cluster` reply: true (1), false (0), or null when the
 * field is missing (a Redis before 3.0 answers an empty section) or has another value.
 */
export function clusterEnabledOf(infoCluster: string): boolean | null {
  const value = parseInfoFields(infoCluster).get('cluster_enabled');
  return value === '1' ? true : value === '0' ? false : null;
}

/** The mode an `INFO cluster` reply gives (`cluster` with an empty `ClusterInfo`, to be filled by `parseClusterInfo`). */
export function clusterModeOf(infoCluster: string): ClusterMode {
  const enabled = clusterEnabledOf(infoCluster);
  if (enabled === true) return { kind: 'cluster', info: { state: null, knownNodes: null, unreadable: null } };
  if (enabled === false) return { kind: 'standalone' };
  const raw = parseInfoFields(infoCluster).get('cluster_enabled');
  return {
    kind: 'unknown',
    why: raw === undefined
      ? 'INFO cluster has no cluster_enabled field (a Redis before 3.0 has no cluster section)'
      : `INFO cluster reports cluster_enabled:${raw}, neither 0 nor 1`,
  };
}

/** `cluster_state` and `cluster_known_nodes` of a `CLUSTER INFO` reply. */
export function parseClusterInfo(text: string): ClusterInfo {
  const fields = parseInfoFields(text);
  const nodes = fields.get('cluster_known_nodes');
  return {
    state: fields.get('cluster_state') ?? null,
    knownNodes: nodes !== undefined && /^\d+$/.test(nodes) ? Number(nodes) : null,
    unreadable: null,
  };
}

/** Whether a reply error is an ACL refusal (`-NOPERM`). */
export function isNoPermission(message: string): boolean {
  return /\bNOPERM\b/.test(message);
}

/** The two commands' refusals as `unknown` and `unreadable` say them. */
export function noPermissionText(command: 'INFO' | 'CLUSTER INFO', message: string): string {
  return `${command} is not permitted for this ACL user (${message.trim()})`;
}

function nodeName(node: ClusterNode): string {
  const where = formatHostPort(node);
  return node.side === 'local' ? `the local Redis ${where} (redis.host, redis.port)` : `the peer's Redis ${where} (peer_redis)`;
}

/** What was found, in one phrase: `cluster_enabled:1, cluster_state:ok, cluster_known_nodes:6`. */
export function clusterFacts(info: ClusterInfo): string {
  const facts = ['cluster_enabled:1'];
  if (info.state !== null) facts.push(`cluster_state:${info.state}`);
  if (info.knownNodes !== null) facts.push(`cluster_known_nodes:${info.knownNodes}`);
  let text = facts.join(', ');
  if (info.knownNodes === 1) text += ' (not joined to any other node yet)';
  if (info.unreadable !== null) text += `; CLUSTER INFO could not be read: ${info.unreadable} (grant ${CLUSTER_ACL_RULES})`;
  return text;
}

const WHY =
  'redis-ha moves a VIP between the two servers of a standalone master/replica pair and makes one the replica of the ' +
  "other (REPLICAOF); Redis Cluster elects its own masters and its clients follow MOVED redirections to the nodes' own " +
  "addresses, never a VIP, so a REPLICAOF, CONFIG SET or CLIENT PAUSE from redis-ha would fight the cluster's own failover and break it";

const INSTEAD =
  'let the cluster fail over by itself (a replica takes over a failed master); for a planned move of a master, run ' +
  'CLUSTER FAILOVER on the replica that should take over; connect applications with a cluster-aware client (redis-cli -c, ' +
  "ioredis's Cluster, redis-py's RedisCluster) given several nodes' addresses";

const STANDALONE =
  'redis-ha manages standalone Redis servers (cluster-enabled no): point redis and peer_redis at such servers, or do not ' +
  'run redis-ha for these nodes';

/** What was found on one cluster node, as the first line of a refusal. */
export function clusterRefusalHeadline(node: ClusterNode, info: ClusterInfo): string {
  return `${nodeName(node)} is a Redis Cluster node: ${clusterFacts(info)}; nothing was changed on it`;
}

/**
 * The refusal as `check-config` and `run` print it, one line each: what was found on each
 * cluster node (`headlines`), then once why redis-ha does not manage it and what to use instead.
 */
export function clusterRefusalLines(headlines: readonly string[]): string[] {
  return [...headlines, `why: ${WHY}`, `instead: ${INSTEAD}`, STANDALONE];
}

/** The refusal in one line: the health check's detail, the FAULT reason and `status`. */
export function clusterRefusalLine(node: ClusterNode, info: ClusterInfo): string {
  const where = formatHostPort(node);
  return `${node.side === 'local' ? 'local' : "peer's"} Redis ${where} is a Redis Cluster node (${clusterFacts(info)}): ` +
    'redis-ha does not manage Redis Cluster and sends it nothing; the cluster fails over by itself, CLUSTER FAILOVER on a ' +
    'replica moves a master, clients need a cluster-aware client (point redis-ha at standalone servers only)';
}

/** The warning for a server whose cluster mode could not be read. */
export function clusterUnknownText(node: ClusterNode, why: string): string {
  const user = node.username ?? 'default';
  return `cannot tell whether ${nodeName(node)} is a Redis Cluster node: ${why}; it is taken for a standalone server ` +
    `(a cluster node must not be managed by redis-ha). To let redis-ha check, allow INFO and CLUSTER INFO: ` +
    `ACL SETUSER ${user} ${CLUSTER_ACL_RULES}`;
}

/** The note for a server that did not answer the probe (not an error: Redis may be started after redis-ha). */
export function clusterUnreachableText(node: ClusterNode, detail: string): string {
  const later = node.side === 'local'
    ? 'checked again at every health check of the running daemon'
    : 'checked again before redis-ha sends it any command that changes it';
  return `${nodeName(node)} could not be asked now (${detail}): whether it is a Redis Cluster node is ${later}`;
}

/** One server's probe (`probeClusterMode`): its mode, or why it did not answer. */
export type ClusterProbe =
  | { readonly reachable: true; readonly mode: ClusterMode }
  | { readonly reachable: false; readonly detail: string };

/** What the probes of the local and the peer's Redis amount to. */
export interface ClusterVerdict {
  /** One headline per cluster node found (`clusterRefusalHeadline`): `check-config` exits 78, `run` does not start. */
  readonly refusals: readonly string[];
  /** Servers whose mode could not be read. */
  readonly warnings: readonly string[];
  /** Servers that did not answer (no error: Redis may be started after redis-ha). */
  readonly notes: readonly string[];
  /** Servers found standalone, one phrase each. */
  readonly standalone: readonly string[];
}

/** Sorts the probes' outcomes into refusals, warnings and notes (pure). */
export function clusterVerdict(probes: readonly { readonly node: ClusterNode; readonly probe: ClusterProbe }[]): ClusterVerdict {
  const refusals: string[] = [];
  const warnings: string[] = [];
  const notes: string[] = [];
  const standalone: string[] = [];
  for (const { node, probe } of probes) {
    if (!probe.reachable) notes.push(clusterUnreachableText(node, probe.detail));
    else if (probe.mode.kind === 'cluster') refusals.push(clusterRefusalHeadline(node, probe.mode.info));
    else if (probe.mode.kind === 'unknown') warnings.push(clusterUnknownText(node, probe.mode.why));
    else standalone.push(`${node.side === 'local' ? 'local' : "peer's"} Redis ${formatHostPort(node)} is standalone (cluster_enabled:0)`);
  }
  return { refusals, warnings, notes, standalone };
}
