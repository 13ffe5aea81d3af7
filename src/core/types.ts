/**
 * Shared vocabulary of the decision core: node states, what an advert says, what a
 * health check saw, and the events and actions `step()` consumes and produces.
 *
 * Pure types only. The wire format lives in `src/proto/`, the effects in
 * `src/adapters/`; both speak these types.
 */

/** Node states, as in keepalived (RFC 5798 §6.4 plus FAULT). */
export type NodeState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT';

/** The Redis role as observed; `unknown` when Redis could not be asked. */
export type RedisRole = 'master' | 'replica' | 'unknown';

/**
 * What `INFO replication` told us about a Redis server. Offsets are byte offsets in
 * the replication stream; `replId2`/`secondOffset` identify the history a promoted
 * replica inherited (see Redis PSYNC2), which is how divergence is measured.
 */
export interface RedisSnapshot {
  readonly role: 'master' | 'replica';
  readonly replId: string;
  readonly replId2: string;
  /** `master_repl_offset` (for a replica: what it has processed). */
  readonly offset: number;
  /** `second_repl_offset`: first offset NOT shared with `replId2`, or -1. */
  readonly secondOffset: number;
  /** Replica only: where it replicates from. */
  readonly masterHost: string | null;
  readonly masterPort: number | null;
  /** Replica only: `master_link_status:up`. */
  readonly linkUp: boolean;
  /** Replica only: `master_sync_in_progress:1`. */
  readonly syncInProgress: boolean;
  readonly connectedReplicas: number;
  /**
   * Master only: replicas online that acknowledged within the `with-replica` fence's lag
   * bound, less one second (so the daemon sees a replica going stale before Redis's own
   * fence trips on it). Absent: count `connectedReplicas`.
   */
  readonly goodReplicas?: number;
  /**
   * `run_id` (INFO server): a new value is a new server process, which may have come back
   * without its data (the data guard, `data-guard.ts`). Absent: not read (tests, probes).
   */
  readonly runId?: string;
}

/** A point of a replication history, as a health check saw it (the data guard). */
export interface ReplPosition {
  readonly runId: string;
  readonly replId: string;
  readonly offset: number;
}

/** The local Redis came back (a new run) behind where it was (`data-guard.ts`). */
export interface HistoryLoss {
  readonly atMs: number;
  readonly before: ReplPosition;
  readonly after: ReplPosition;
}

/** The Redis part of an advert: enough to compare histories across nodes. */
export interface AdvertRedis {
  readonly role: RedisRole;
  readonly replId: string;
  readonly replId2: string;
  readonly offset: number;
  readonly secondOffset: number;
}

export interface AdvertFlags {
  /** The sender's Redis failed its health checks. */
  readonly fault: boolean;
  /** The sender is leaving (priority 0): take over after the skew time alone. */
  readonly resigning: boolean;
  /** Automatic failover is frozen on the sender (maintenance mode). */
  readonly maintenance: boolean;
  /** The sender is switching its master role over to the peer (a planned switchover is running). */
  readonly switchingOver: boolean;
  /** The sender holds the VIP (or is claiming it): a switchover's old master releases it only then. */
  readonly holdsVip: boolean;
  /**
   * The sender will not take the master role now (its state file cannot be written, or no
   * newer epoch can be made): a switchover towards it is refused before Redis is touched.
   * Absent in hand-made adverts (tests): false.
   */
  readonly cannotTakeOver?: boolean;
  /**
   * The sender wants the master role and is asking the quorum for the leader key (a
   * takeover waits for it), or is MASTER still promoting its Redis: a master serving
   * without its lease (failsafe) fences at once when it hears this, and a node leaves its
   * Redis to the sender's catch-up meanwhile (`reconcileReplica`). Absent in hand-made
   * adverts (tests): false.
   */
  readonly takingOver?: boolean;
  /**
   * The sender took the master role over automatically less than its recovery block
   * period ago: its peer takes no automatic takeover meanwhile (anti-flapping). Absent in
   * hand-made adverts (tests): false.
   */
  readonly recoveredRecently?: boolean;
}

/** An authenticated advert, as decoded by `src/proto/advert.ts`. */
export interface Advert {
  readonly groupId: number;
  readonly nodeName: string;
  readonly state: NodeState;
  /** Effective priority: 0 when resigning. */
  readonly priority: number;
  readonly advertIntervalMs: number;
  /** Sender's boot time (ms since the Unix epoch); with `seq`, the anti-replay pair. */
  readonly bootTimeMs: number;
  readonly seq: number;
  /** The receiver's boot time as the sender last heard it (0: none yet); the transport checks it. */
  readonly echoBootTimeMs: number;
  /** Promotion epoch: raised by a node each time it takes over; the higher holds newer writes. */
  readonly epoch: number;
  readonly flags: AdvertFlags;
  /**
   * Generation of the sender's maintenance flag: raised on every change, so the newer
   * setting wins when the two nodes disagree (one was down when it changed).
   */
  readonly maintenanceGen: number;
  readonly redis: AdvertRedis;
}

/** What the core puts in an advert; the sender adds group, boot time, sequence and MAC. */
export type AdvertBody = Omit<Advert, 'groupId' | 'bootTimeMs' | 'seq' | 'echoBootTimeMs'>;

/** A Redis endpoint as the core names it (where to replicate from). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Timers are deadlines held in the state; the runtime arms one OS timer for the earliest. */
export type TimerName =
  | 'advert' | 'master-down' | 'preempt' | 'init-listen' | 'garp-refresh' | 'switchover' | 'persist-retry'
  | 'quorum-retry' | 'quorum-fence' | 'recovery-block' | 'fault-release';

/** Who holds the leader key, as the quorum named it. */
export interface KeyHolder {
  readonly node: string;
  readonly epoch: number;
}

/** A master as etcd recorded it once its Redis served (`record-served`): its node, epoch and Redis replication id. */
export interface ServedRecord {
  readonly node: string;
  readonly epoch: number;
  readonly replId: string;
}

/**
 * What etcd remembers beyond any lease, read with the key (`QuorumMemory` in
 * src/adapters/quorum/types.ts): the last master whose Redis served (`last`: a Redis
 * whose history does not contain its replication id may lack its writes, finding Q9) and
 * a master that relaxed its fence and has not cleared the mark (`relaxed`: its Redis may
 * take writes no replica holds, finding Q12).
 */
export interface QuorumMemory {
  readonly last: ServedRecord | null;
  readonly relaxed: KeyHolder | null;
}

/**
 * A write of etcd's durable records (beside the leader key, without a lease):
 *   relax   this master's fence is about to be `accepted` (no replica): `leader-relaxed`
 *           names it, so a new master fences its Redis through Redis first; only while it
 *           holds the key
 *   clear   `leader-relaxed` is deleted if it is exactly `holder` (this node's own once a
 *           replica acknowledges again, or a node whose Redis this node's promotion fenced)
 *   served  this master's Redis serves with `replId`: `leader-last`, only while it holds the key
 */
export type QuorumMark =
  | { readonly kind: 'relax'; readonly epoch: number }
  | { readonly kind: 'clear'; readonly holder: KeyHolder }
  | { readonly kind: 'served'; readonly epoch: number; readonly replId: string };

/** The quorum's answer to `acquire-quorum` (`src/adapters/quorum`, or the simulation's model). */
export type QuorumAnswer =
  /** This node holds the key in `epoch` until `validUntilAtMs` (monotonic) unless renewed. */
  | { readonly outcome: 'held'; readonly epoch: number; readonly validUntilAtMs: number; readonly memory: QuorumMemory; readonly detail: string }
  /** Another node holds it (or the previous holder's lease has not ended yet); `holder` null when unreadable. */
  | { readonly outcome: 'held-by-other'; readonly holder: KeyHolder | null; readonly detail: string }
  /** etcd did not answer in time, or refused the call. */
  | { readonly outcome: 'unreachable'; readonly detail: string };

/**
 * The local Redis's write fence (`min-replicas-to-write`, managed by the daemon with a
 * quorum): `refused` (no writes at all), `with-replica` (writes only while a replica
 * acknowledges: Redis fences itself when it loses its replica, daemon or not) or
 * `accepted` (no condition).
 */
export type FenceSetting = 'refused' | 'with-replica' | 'accepted';

/**
 * Requests between the two daemons during a planned switchover. They travel over the
 * authenticated advert channel (`src/proto/message.ts`).
 */
export type PeerRequest =
  | {
      readonly kind: 'switchover-request';
      readonly requestId: string;
      readonly timeoutMs: number;
      readonly force: boolean;
      readonly user: string;
    }
  | { readonly kind: 'switchover-result'; readonly requestId: string; readonly ok: boolean; readonly detail: string }
  | { readonly kind: 'handover'; readonly requestId: string; readonly epoch: number; readonly force: boolean }
  /** A backup whose replica's link to the master dropped asks the master's daemon for an advert now (`peer-fault.ts`). */
  | { readonly kind: 'advert-request'; readonly requestId: string };

/** How the Redis part of a planned switchover ended (`RedisControl.switchOver`). */
export type SwitchoverOutcome = 'done' | 'refused' | 'rolled-back' | 'failed';

/** The pair-wide maintenance flag and its generation (the newer generation wins). */
export interface Maintenance {
  readonly on: boolean;
  readonly gen: number;
}

/** Inputs to `step()`. Past tense: things that happened. */
export type Event =
  | {
      readonly type: 'started';
      /** The VIP was found on this host at start-up (a crash or a restart in place left it). */
      readonly vipPresent?: boolean;
      /** What the daemon loaded (configuration source and summary, boot time): audited as `config-loaded`. */
      readonly loaded?: Readonly<Record<string, unknown>>;
    }
  | { readonly type: 'advert-received'; readonly advert: Advert; readonly fromAddress: string }
  | {
      readonly type: 'health-checked';
      /** When the check was sent; a snapshot older than the last role change is not trusted. */
      readonly startedAtMs?: number;
      readonly ok: boolean;
      readonly detail: string;
      readonly redis: RedisSnapshot | null;
      /** The connection was refused: no Redis is listening, so none takes writes. */
      readonly down?: boolean;
      /**
       * The local Redis is a Redis Cluster node (`cluster_enabled:1`, issue 14): refused as
       * proof, like a refused connection (FAULT at once, in maintenance too), and nothing
       * that changes it is sent to it (no promotion, demotion or fence). `detail` says why.
       */
      readonly clusterEnabled?: boolean;
    }
  | { readonly type: 'timer-fired'; readonly timer: TimerName }
  | {
      readonly type: 'promotion-finished';
      readonly ok: boolean;
      readonly detail: string;
      readonly redis: RedisSnapshot | null;
    }
  | { readonly type: 'demotion-finished'; readonly ok: boolean; readonly detail: string }
  | { readonly type: 'vip-observed'; readonly present: boolean }
  /** The claim effect finished: the VIP is on the interface and the first announcement is out. */
  | { readonly type: 'vip-claimed'; readonly changed?: boolean }
  /** The release effect finished: the VIP is off the interface (`changed`: it was there). */
  | { readonly type: 'vip-released'; readonly changed: boolean }
  /**
   * An effect threw. The actions the same step emitted after it were not run: they are
   * handed back in `skipped`, and the core decides what still has to happen.
   */
  | {
      readonly type: 'effect-failed';
      readonly action: Action['type'];
      readonly detail: string;
      readonly skipped?: readonly Action[];
    }
  /** SIGUSR2: stop without resigning, leaving Redis and the VIP for the next process to adopt. */
  | { readonly type: 'detach-requested' }
  /** The control socket answered a request (who asked what, and how it ended): audited. */
  | { readonly type: 'control-handled'; readonly record: Readonly<Record<string, unknown>> }
  /** A `persist-state` effect completed: the state it carried is on disk. */
  | { readonly type: 'state-persisted' }
  | { readonly type: 'shutdown-requested' }
  /**
   * The daemon's event loop was stalled (VM pause, SIGSTOP): timers fired this late,
   * and adverts that arrived meanwhile are still queued. Like Sentinel's TILT.
   */
  | { readonly type: 'stalled'; readonly stalledMs: number }
  /**
   * The runtime probed the peer's Redis because the local replica's link to it dropped:
   * `down` when the connection was refused (`peer-fault.ts`).
   */
  | { readonly type: 'peer-redis-probed'; readonly down: boolean; readonly detail: string }
  /** The local replica's link to its master went from up to down (the runtime probes the master's Redis too). */
  | { readonly type: 'replica-link-dropped' }
  /** The peer's daemon asked for an advert now (an `advert-request` message). */
  | { readonly type: 'advert-requested'; readonly from: string }
  | {
      /** An operator asked for a planned switchover, here (`local`) or on the peer, which forwarded it. */
      readonly type: 'switchover-requested';
      readonly requestId: string;
      readonly timeoutMs: number;
      readonly force: boolean;
      readonly user: string;
      readonly origin: 'local' | 'peer';
    }
  | {
      readonly type: 'redis-switchover-finished';
      readonly outcome: SwitchoverOutcome;
      readonly method: 'failover' | 'pause' | null;
      readonly detail: string;
      readonly pausedMs: number | null;
      readonly redis: RedisSnapshot | null;
    }
  /** The peer handed us the master role: its Redis already follows ours. */
  | { readonly type: 'handover-received'; readonly requestId: string; readonly epoch: number; readonly force: boolean; readonly from: string }
  | { readonly type: 'switchover-result-received'; readonly requestId: string; readonly ok: boolean; readonly detail: string }
  | { readonly type: 'maintenance-requested'; readonly requestId: string; readonly on: boolean; readonly user: string }
  /**
   * `redis-ha failover` on this node: take the master role past a held-back takeover
   * (`forced-failover.ts`). Without `acceptDataLoss` nothing changes: the reply says what
   * a forced takeover would do and what holds the automatic one back.
   */
  | {
      readonly type: 'failover-requested';
      readonly requestId: string;
      /** As for a switchover: `name(uid N)`. */
      readonly user: string;
      /** The caller's process id (SO_PEERCRED), for the audit; null when unknown. */
      readonly pid: number | null;
      readonly acceptDataLoss: boolean;
    }
  /** The quorum answered an `acquire-quorum` for `epoch`. */
  | { readonly type: 'quorum-answered'; readonly epoch: number; readonly answer: QuorumAnswer }
  /** A keepalive of this node's lease was acknowledged: the key is held until `validUntilAtMs`. */
  | { readonly type: 'quorum-renewed'; readonly validUntilAtMs: number }
  /** This node's lease ended or its key was taken (`key-taken`): it no longer holds the key. */
  | { readonly type: 'quorum-lost'; readonly reason: 'deadline-passed' | 'lease-expired' | 'key-taken'; readonly detail: string }
  /** A `fence-redis` effect finished. */
  | { readonly type: 'fence-applied'; readonly writes: FenceSetting; readonly ok: boolean; readonly detail: string }
  /** A `mark-quorum` call finished (`ok`: etcd holds the mark, or no longer holds it for `clear-relaxed`/`record-served` alike). */
  | { readonly type: 'quorum-marked'; readonly mark: QuorumMark; readonly ok: boolean; readonly detail: string };

/** Outputs of `step()`. Imperative: things to do, in order. */
export type Action =
  | { readonly type: 'send-advert'; readonly advert: AdvertBody }
  | {
      readonly type: 'promote-redis';
      /** Catch up with this (peer) master first, if it is reachable and a master; `null`: don't. */
      readonly catchUpFrom: HostPort | null;
      /**
       * Promote only once the old master can be fenced through Redis (`catchUpFrom`
       * answered, is a master, and the local Redis caught up with it): `prefer: safety`
       * without a quorum, after a silence. Otherwise the promotion fails and nothing
       * changes. Absent: false.
       */
      readonly requireFence?: boolean;
    }
  | {
      readonly type: 'replicate-from';
      readonly master: HostPort;
      /**
       * The data guard (`data-guard.ts`): `REPLICAOF` at once, before the demotion delay
       * and the probe of the master, so that the peer's replica cannot resync from a
       * Redis that lost its data. Absent: false.
       */
      readonly guard?: boolean;
    }
  | { readonly type: 'claim-vip' }
  | { readonly type: 'release-vip' }
  /**
   * Keep the VIP but refuse every connection to it (a TCP reset) until `release-vip`: a
   * master whose Redis is gone, while the peer takes over (`toFault`, `faultVipHoldMs`).
   */
  | { readonly type: 'refuse-vip' }
  | { readonly type: 'announce-vip' }
  /** Disconnect the application clients of the local Redis so they reconnect through the VIP. */
  | { readonly type: 'disconnect-clients' }
  | {
      readonly type: 'persist-state';
      readonly epoch: number;
      readonly knownEpoch: number;
      readonly maintenance: Maintenance;
      readonly switchoverIds: readonly string[];
    }
  /** Switch the Redis master role over to the peer's Redis (FAILOVER, or pause + promote + demote). */
  | {
      readonly type: 'switchover-redis'; readonly target: HostPort; readonly timeoutMs: number; readonly force: boolean;
      /**
       * With the quorum: set the target's write fence to `refused` before it becomes the
       * Redis master, so that it takes writes only once its daemon holds the leader key
       * and lifts the fence as the new master (finding Q8).
       */
      readonly fenceTarget?: true;
    }
  | { readonly type: 'send-message'; readonly message: PeerRequest }
  /** Answer an operator's request (the control socket connection waiting for it). */
  | {
      readonly type: 'reply';
      readonly requestId: string;
      readonly ok: boolean;
      readonly detail: string;
      readonly data: Readonly<Record<string, unknown>>;
    }
  | { readonly type: 'audit'; readonly event: string; readonly data: Readonly<Record<string, unknown>> }
  /** Ask the quorum for the leader key in `epoch` (create if absent, raise if mine). */
  | { readonly type: 'acquire-quorum'; readonly epoch: number }
  /** Give the key up (revoke this node's lease): only once this node's Redis cannot take writes. */
  | { readonly type: 'release-quorum' }
  /** Write one of etcd's durable records (`QuorumMark`); answered by `quorum-marked`. */
  | { readonly type: 'mark-quorum'; readonly mark: QuorumMark }
  /** Make the local Redis refuse or accept writes by itself (`min-replicas-to-write`). */
  | { readonly type: 'fence-redis'; readonly writes: FenceSetting }
  | { readonly type: 'exit'; readonly code: number }
  /** Stop every loop without resigning (restart in place); the runtime then ends with status 0. */
  | { readonly type: 'detach' };
