/**
 * The Redis effect, and the only file of this folder that callers import: health
 * checks, promotion (with a fenced takeover from an old master that still answers),
 * demotion, the operator's planned switchover from this master to its replica, the
 * eviction of application clients and the start-up bind check, all in process
 * through ioredis (no `redis-cli` scripts).
 *
 *   index.ts        this facade: `RedisControl` and the types callers need
 *   connection.ts   one deadline-bounded connection, its errors, `probeServer`
 *   info.ts         INFO parsers (pure)
 *   cluster-mode.ts what INFO cluster / CLUSTER INFO say, and the refusal of a Redis
 *                   Cluster node in words (pure); cluster-check.ts reads them
 *   snapshot.ts     how snapshots and addresses read in `detail` (pure)
 *   trail.ts        the step-by-step `detail` of one operation
 *   rules.ts        pause budgets, refusals, FAILOVER timing and outcomes (pure)
 *   health.ts       the health check
 *   local.ts        the local Redis as role changes drive it
 *   promote.ts      promotion
 *   takeover.ts     the automatic fenced takeover from the old master (`FencedTakeover`)
 *   demote.ts       demotion
 *   clients.ts      CLIENT KILL of application clients
 *   bind-check.ts   whether Redis accepts connections on the VIP
 *   switchover/     the operator's planned switchover (FAILOVER or pause)
 *
 * Four kinds of connection, so that a slow role change never delays a health check:
 *
 *   health   (`redis-ha`)          long-lived, PING + INFO replication, bounded by
 *                                  `health.timeoutMs`
 *   control  (`redis-ha-control`)  long-lived, REPLICAOF / CONFIG / CLIENT on the local Redis
 *   peer     (`redis-ha-peer`)     per operation, INFO / CLIENT PAUSE / REPLICAOF on the peer
 *                                  during promotion and switchover, INFO during demotion
 *   self     (`redis-ha-self`)     per promotion, checks that `self` names the local Redis
 *
 * Every connection is named with the `clientName` prefix so demotion (and the fence of
 * an old master) can kill the application clients still attached without killing our
 * own (or the other node's daemon). Failures never escape as exceptions from the public
 * methods: they become `{ ok: false, detail }`, and `detail` is written for the
 * audit log (each step with its duration). Connections, and why they are never
 * reconnected in the background, are in `connection.ts`.
 */
import type { Logger } from '../../logger.js';
import type { FenceSetting, HostPort } from '../../core/types.js';
import type { Config, RedisEndpoint } from '../../config/types.js';
import { bindWarning } from './bind-check.js';
import { probeClusterMode } from './cluster-check.js';
import { clusterVerdict, type ClusterNode, type ClusterVerdict } from './cluster-mode.js';
import { Connection, probeServer } from './connection.js';
import { demote, type RedisReplicateResult } from './demote.js';
import { applyFence, type FenceResult } from './fence.js';
import { checkHealth, isRefusal, type RedisCheckResult } from './health.js';
import { LocalRedis } from './local.js';
import { promote, type RedisPromoteResult } from './promote.js';
import { switchOver } from './switchover/switchover.js';
import type { SwitchoverRequest, SwitchoverResult } from './switchover/types.js';

export { REDIS_CLUSTER_NODE, REDIS_REPLY, REDIS_TIMEOUT, REDIS_UNREACHABLE } from './connection.js';
export { clusterRefusalLines } from './cluster-mode.js';
export type { ClusterVerdict } from './cluster-mode.js';
export type { RedisCheckResult } from './health.js';
export type { RedisPromoteResult } from './promote.js';
export type { RedisReplicateResult } from './demote.js';
export type { FenceResult } from './fence.js';
export type {
  SwitchoverMethod,
  SwitchoverOutcome,
  SwitchoverRequest,
  SwitchoverResult,
} from './switchover/types.js';
import { clusterProbeMsOf, CONTROL_MIN_TIMEOUT_MS, fenceApplyMsOf } from '../../core/timing.js';

/** Default `CLIENT SETNAME` of the health connection; other connections add a suffix. */
export const DEFAULT_CLIENT_NAME = 'redis-ha';


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

/**
 * The Redis adapter. One instance per daemon; `close()` on shutdown.
 *
 * Public methods never throw: every failure is a `{ ok: false, detail }` (or, for
 * `bindWarning`, a warning string; for `switchOver`, an outcome other than `done`).
 */
export class RedisControl {
  private readonly log: Logger;
  private readonly clientName: string;
  private readonly health: Connection;
  private readonly control: Connection;
  private readonly controlTimeoutMs: number;
  private readonly local: LocalRedis;
  /** The local Redis as a refusal names it (`cluster-mode.ts`). */
  private readonly localNode: ClusterNode;
  private lostListener: (() => void) | null = null;

  constructor(private readonly options: RedisControlOptions) {
    this.log = options.logger.child({ component: 'redis-control' });
    this.clientName = options.clientName ?? DEFAULT_CLIENT_NAME;
    this.controlTimeoutMs = Math.max(CONTROL_MIN_TIMEOUT_MS, options.health.timeoutMs);
    const target = { host: options.local.host, port: options.local.port };
    this.localNode = { side: 'local', ...target, username: options.local.username };
    this.health = new Connection({
      endpoint: options.local,
      target,
      name: this.clientName,
      timeoutMs: options.health.timeoutMs,
      onLost: () => this.lostListener?.(),
    });
    this.control = new Connection({
      endpoint: options.local,
      target,
      name: `${this.clientName}-control`,
      timeoutMs: this.controlTimeoutMs,
      // Every role change, fence and client eviction goes over this connection: a Redis
      // restarted as a cluster node since the last health check gets none of them.
      refuseClusterNode: this.localNode,
    });
    this.local = new LocalRedis({
      connection: this.control,
      timeoutMs: this.controlTimeoutMs,
      peerEndpoint: options.peer,
      clientName: this.clientName,
      logger: this.log,
    });
  }

  /**
   * The health check: PING (must answer PONG) and `INFO replication`, together
   * bounded by `health.timeoutMs`. A refused connection fails at once; a hung
   * server fails at the timeout and the connection is replaced on the next check; a
   * Redis Cluster node fails with `clusterEnabled` (refused: `cluster-mode.ts`).
   */
  check(): Promise<RedisCheckResult> {
    return checkHealth(this.health, this.options.health.timeoutMs, this.log, this.localNode);
  }

  /**
   * Whether the local Redis or the peer's is a Redis Cluster node, before anything
   * changes (`check-config`, `run`'s start-up): one bounded look at each, in parallel,
   * on connections of their own (`clusterProbeMsOf` the health and peer timeouts). A
   * server that cannot be asked is a note, not an error. Never throws.
   */
  static async clusterModes(options: Pick<RedisControlOptions, 'local' | 'peer' | 'health' | 'clientName'> & {
    readonly promotion: Pick<Config['promotion'], 'peerTimeoutMs'>;
  }): Promise<ClusterVerdict> {
    const name = `${options.clientName ?? DEFAULT_CLIENT_NAME}-check`;
    const sides = [
      { node: { side: 'local', ...hostPortOf(options.local), username: options.local.username } as const, endpoint: options.local,
        timeoutMs: clusterProbeMsOf(options.health.timeoutMs) },
      { node: { side: 'peer', ...hostPortOf(options.peer), username: options.peer.username } as const, endpoint: options.peer,
        timeoutMs: clusterProbeMsOf(options.promotion.peerTimeoutMs) },
    ];
    const probes = await Promise.all(sides.map(async (side) => ({ node: side.node, probe: await probeClusterMode(side.endpoint, side.timeoutMs, name) })));
    return clusterVerdict(probes);
  }

  /**
   * The backup's own look at its master's Redis (issue 12): asked when the local replica's
   * link to it dropped. `down` when the connection is refused: usually the peer's host
   * answering that nothing listens, though a firewall's REJECT looks the same (the core
   * only brings its master-down timer forward on it, `peer-fault.ts`); a silent host or a
   * timeout is not `down`. One connection, bounded by `promotion.peer_timeout_ms`; never
   * throws.
   */
  async probePeer(): Promise<{ down: boolean; detail: string }> {
    const { peer, promotion } = this.options;
    const connection = new Connection({
      endpoint: peer,
      target: { host: peer.host, port: peer.port },
      name: `${this.clientName}-peer`,
      timeoutMs: promotion.peerTimeoutMs,
    });
    try {
      const probe = await probeServer(connection, promotion.peerTimeoutMs);
      // Only read: a Redis Cluster node there is named, and left to the takeover's refusal.
      const cluster = probe.ok && probe.clusterEnabled === true ? ', a Redis Cluster node (cluster_enabled:1): redis-ha sends it nothing' : '';
      if (probe.ok) return { down: false, detail: `answered as ${probe.snapshot.role}${cluster}` };
      return { down: isRefusal(probe.detail), detail: probe.detail };
    } finally {
      await connection.close();
    }
  }

  /**
   * `listener` runs when the health connection, once established, is closed by the
   * server or the network (a crashed Redis closes it at once): the runtime then checks
   * again without waiting for the next interval.
   */
  onConnectionLost(listener: () => void): void {
    this.lostListener = listener;
  }

  /**
   * Makes the local Redis a master.
   *
   * With `catchUpFrom` and `promotion.waitForSync`, first takes over from that peer
   * if it answers, is a master, and is not this very server (`FencedTakeover`):
   * replicate it until the link is up, pause its writes, catch up to its frozen
   * offset (each wait bounded by `maxSyncWaitMs`), `REPLICAOF NO ONE` and a check of
   * `role:master`, then fence it (`REPLICAOF self`), unpause it and disconnect its
   * application clients. A catch-up that times out still promotes, and `detail` says
   * how far behind; nothing on the peer's side fails the promotion, and a pause is
   * lifted on every path. `promote(null)` never contacts the peer.
   */
  promote(catchUpFrom: HostPort | null, options: { requireFence?: boolean } = {}): Promise<RedisPromoteResult> {
    const takeover = {
      promotion: this.options.promotion,
      peerEndpoint: this.options.peer,
      localEndpoint: this.options.local,
      self: this.options.self,
      clientName: this.clientName,
      logger: this.log,
    };
    return promote({ local: this.local, takeover, logger: this.log }, catchUpFrom, options);
  }

  /**
   * Makes the local Redis a replica of `master` (demotion): `REPLICAOF host port`
   * with `masterauth`/`masteruser` from the peer endpoint, a bounded check that
   * the role changed, then `CLIENT KILL` of the normal clients still attached (not
   * ours, recognised by the `clientName` prefix) so applications reconnect through
   * the VIP. Refuses to replicate from itself. The link need not be up yet: a full
   * sync of a large dataset can take minutes. `guard` (the data guard): `REPLICAOF`
   * first, without the demotion delay or asking the master who it is.
   */
  replicateFrom(master: HostPort, options: { guard?: boolean } = {}): Promise<RedisReplicateResult> {
    return demote(
      {
        local: this.local,
        localAddress: { host: this.options.local.host, port: this.options.local.port },
        peerEndpoint: this.options.peer,
        peerTimeoutMs: this.options.promotion.peerTimeoutMs,
        clientName: this.clientName,
        delayMs: options.guard === true ? 0 : this.options.demotion.delayMs,
        logger: this.log,
      },
      master,
      options,
    );
  }

  /**
   * The operator's planned switchover from this (master) node to `request.target`, our
   * replica: pre-checks, then Redis FAILOVER or a paused catch-up with `REPLICAOF NO
   * ONE` on the target, rolled back when anything fails before the target is promoted
   * (`switchover/`). Never throws.
   */
  switchOver(request: SwitchoverRequest): Promise<SwitchoverResult> {
    return switchOver(
      {
        local: this.control,
        localTimeoutMs: this.controlTimeoutMs,
        peerEndpoint: this.options.peer,
        peerTimeoutMs: this.options.promotion.peerTimeoutMs,
        clientName: this.clientName,
        setMasterAuth: (trail) => this.local.setMasterAuth(trail),
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
  bindWarning(vip: string): Promise<string | null> {
    return bindWarning(
      { connection: this.control, timeoutMs: this.controlTimeoutMs, passwordConfigured: this.options.local.password !== null },
      vip,
    );
  }

  /**
   * Disconnects the local Redis's application clients (not ours, recognised by the
   * `clientName` prefix) so they reconnect through the VIP; a readable outcome, never throws.
   */
  disconnectClients(): Promise<string> {
    return this.local.disconnectApplicationClients();
  }

  /**
   * Makes the local Redis refuse writes by itself (`min-replicas-to-write` above any
   * replica count) or accept them again (`fence.ts`). Never throws.
   */
  fence(writes: FenceSetting): Promise<FenceResult> {
    // Bounded like a health check, at least FENCE_APPLY_MIN_MS: the fence lead (src/core/timing.ts) counts on it.
    return applyFence(this.control, fenceApplyMsOf(this.options.health.timeoutMs), writes);
  }

  /** Closes both local connections. */
  async close(): Promise<void> {
    await Promise.all([this.health.close(), this.control.close()]);
  }
}

function hostPortOf(endpoint: RedisEndpoint): HostPort {
  return { host: endpoint.host, port: endpoint.port };
}
