/**
 * What a planned switchover is asked, what it answers, and what it needs from the
 * rest of the adapter (`RedisControl.switchOver` wires it; tests wire it directly).
 */
import type { Logger } from '../../../logger.js';
import type { HostPort, RedisSnapshot } from '../../../core/types.js';
import type { RedisEndpoint } from '../../../config/types.js';
import type { Connection } from '../connection.js';
import type { Trail } from '../trail.js';

/** What the operator asked for (config `switchover.*`, overridden on the command line). */
export interface SwitchoverRequest {
  /** The peer's Redis as this node reaches it (config `peer_redis`). */
  readonly target: HostPort;
  /** Bound on the write pause plus catch-up. */
  readonly timeoutMs: number;
  /** The operator accepts the risk: skip the lag bounds; FAILOVER FORCE; promote a replica that answers but did not catch up. */
  readonly force: boolean;
  readonly method: 'auto' | SwitchoverMethod;
  /** Refusal bound on `master_repl_offset` minus the replica's acknowledged offset. */
  readonly maxLagBytes: number;
  /** Refusal bound on the replica's `lag=` (seconds since its last REPLCONF ACK). */
  readonly maxAckAgeS: number;
  /**
   * With the quorum: the target's write fence is set to `refused` after the pre-checks and
   * before it is promoted; its daemon lifts it once it holds the leader key (finding Q8).
   * Not set: refused, nothing changed.
   */
  readonly fenceTarget?: boolean;
}

/** How a switchover moves the master: Redis' own FAILOVER, or our pause, catch-up and promotion. */
export type SwitchoverMethod = 'failover' | 'pause';

/**
 * How a switchover ended (the core's word for it). `done`: the target is master and ours
 * replicates from it. `refused`: nothing was changed. `rolled-back`: ours is still master
 * and unpaused, the target a replica. `failed`: anything else; `detail` says which state
 * each server is in.
 */
import type { SwitchoverOutcome } from '../../../core/types.js';
export type { SwitchoverOutcome };

/** How a switchover ended, with its account. */
export interface SwitchoverResult {
  readonly outcome: SwitchoverOutcome;
  /** The method used; `null` when refused before one was chosen. */
  readonly method: SwitchoverMethod | null;
  /** Each step with its duration, for the audit log. */
  readonly detail: string;
  /** The local `INFO replication` afterwards, when known. */
  readonly redis: RedisSnapshot | null;
  /** How long writes were paused or refused on the old master, measured; `null` when they never were. */
  readonly pausedMs: number | null;
}

/** What the switchover needs from `RedisControl`. */
export interface SwitchoverDeps {
  /** The control connection to the local Redis. */
  readonly local: Connection;
  /** Bound of each command on `local`. */
  readonly localTimeoutMs: number;
  /** Credentials (and TLS) for the peer's Redis. */
  readonly peerEndpoint: RedisEndpoint;
  /** Bound of each command on the peer. */
  readonly peerTimeoutMs: number;
  /** `CLIENT SETNAME` prefix: our connections are never killed, and the peer connection is named with it. */
  readonly clientName: string;
  /**
   * `CONFIG SET masterauth/masteruser` locally for the peer's credentials, recorded in
   * `trail`; bounded by `localTimeoutMs` (the renewed pause counts on it), never throws.
   */
  setMasterAuth(trail: Trail): Promise<void>;
  readonly logger: Logger;
}

/** Seams for tests; the daemon passes none. */
export interface SwitchoverHooks {
  /** Runs once the pre-checks passed, before anything changes (tests stop the replica here). */
  readonly afterPreChecks?: () => Promise<void>;
  /** Taken as the local `redis_version` (tests of the < 6.2 path on a newer server). */
  readonly assumeVersion?: string;
}
