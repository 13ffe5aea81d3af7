/**
 * What a benchmarked failover setup must provide. Each setup (redis-ha, redis-ha-etcd,
 * redis-ha-fast, keepalived-classic, sentinel, ...) is one small driver in
 * `tools/bench/setups/`, so more can be added; the runner (`tools/bench/run.ts`) builds a
 * fresh pair lab per run, hands it to the driver, warms up, injects the fault, measures
 * through the same client, and tears everything down.
 *
 * The lab a driver receives (`PairLab` from `tools/lab/pair.ts`, started with
 * `startDaemons: false` and the driver's `labOptions`): namespaces `a`, `b` (Redis hosts)
 * and `c` (client) on a bridge, Redis running on a and b (a master, b `replicaof a`, the
 * same `requirepass`/`masterauth` = `lab.password`), the VIP `lab.vip` not yet on any host,
 * interface `eth0` in every namespace; with `labOptions.quorum` of backend `etcd`, also the
 * lab's etcd witness on `c` (`lab.etcd()`), running. Run commands and processes in a
 * namespace with `lab.net.exec(host, argv)` / `lab.net.spawn(host, argv, opts)`; keep
 * files under `lab.dir` (removed at teardown).
 */
import type { PairHost, PairLab, PairNode, PairOptions } from '../lab/pair.js';

/** Faults the benchmark injects, each on the current master unless named otherwise. */
export type FaultName =
  | 'redis-kill' // SIGKILL of the master's Redis
  | 'redis-hang' // SIGSTOP of the master's Redis (SIGCONT at the end of the run)
  | 'link-down' // the master host's link cut (bridge side of its veth down)
  | 'daemon-kill' // SIGKILL of the setup's own failover daemon on the master host
  | 'daemon-stall' // SIGSTOP of that daemon for a fixed time longer than its master-down interval, then SIGCONT
  | 'partition' // the two Redis hosts cut from each other; the client still reaches both
  | 'loss' // 30 % packet loss between the two Redis hosts for 20 s
  | 'switchover'; // a planned handover, where the setup offers one

export const FAULTS: readonly FaultName[] = [
  'redis-kill', 'redis-hang', 'link-down', 'daemon-kill', 'daemon-stall', 'partition', 'loss', 'switchover',
];

/**
 * A role change a setup recorded itself, with its wall-clock time (`Date.now()` scale,
 * the same as `nowWallMs()` within the clock's granularity). Only setups that keep such
 * a record provide them (redis-ha: its audit log); the benchmark derives the step-down
 * after a stall and the VIP claim after a promotion from them.
 */
export interface RoleRecord {
  readonly node: PairNode;
  readonly wallMs: number;
  /**
   * `to-master`: the node's failover daemon became master; `from-master`: it left the
   * master role; `redis-promoted`: it made its Redis a master (promotion succeeded);
   * `vip-claimed`: it reported the VIP added.
   */
  readonly kind: 'to-master' | 'from-master' | 'redis-promoted' | 'vip-claimed';
}

/** One benchmarked setup. */
export interface SetupDriver {
  /** Name used on the command line and in the results, e.g. `keepalived-classic`. */
  readonly name: string;
  /** One line for the results table: what it is and how it is configured. */
  readonly description: string;
  /** Faults this setup can meaningfully be put through (`switchover` only if it has one). */
  readonly supports: readonly FaultName[];
  /**
   * What the lab must be built with beyond the default (absent: nothing). `quorum` writes
   * that `quorum` section into both nodes' generated configuration (`lab.baseConfig`) and,
   * for backend `etcd`, starts the lab's etcd witness on `c` before Redis, exactly as the
   * lab and the end-to-end tests run it (`PairOptions.quorum`). Whoever builds a lab for
   * this driver (the runner, the footprint, the tests) passes these to `startPair`.
   */
  readonly labOptions?: Pick<PairOptions, 'quorum'>;
  /**
   * Starts the setup's failover machinery on the lab and resolves once it is ready:
   * the VIP on `a`, `a`'s Redis master, `b`'s Redis replicating `a`. Bounded (≤ 60 s);
   * throws with a clear message (and the setup's own log tail) when it does not settle.
   */
  start(lab: PairLab): Promise<void>;
  /** SIGKILL of the setup's own failover process(es) on `node` (for `daemon-kill`). */
  killDaemon(lab: PairLab, node: PairNode): Promise<void>;
  /**
   * SIGSTOP of the same process(es) as `killDaemon` and every process they started
   * (for `daemon-stall`), as a stalled host, VM or cgroup freezes them; the Redis on
   * the host keeps running. Only for setups that list `daemon-stall` in `supports`.
   */
  suspendDaemon?(lab: PairLab, node: PairNode): Promise<void>;
  /** SIGCONT of exactly what `suspendDaemon` stopped on `node`; idempotent, a no-op when nothing is stopped. */
  resumeDaemon?(lab: PairLab, node: PairNode): Promise<void>;
  /** The role changes the setup recorded so far on a and b, if it keeps a record (redis-ha: its audit log). */
  roleRecords?(lab: PairLab): RoleRecord[];
  /** A planned switchover of the master role from `a` to `b` (for `switchover`). */
  switchover?(lab: PairLab): Promise<void>;
  /**
   * PIDs of the setup's failover processes on `host`, for the footprint measurement:
   * everything the setup needs to decide, a witness included (the etcd member on `c`).
   */
  daemonPids(lab: PairLab, host: PairHost): number[];
  /**
   * Stops everything the driver started and every process `daemonPids` lists (by PID),
   * waiting for exit; idempotent.
   */
  stop(lab: PairLab): Promise<void>;
}
