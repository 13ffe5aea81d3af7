/**
 * The faults a simulated history is made of, as plain data (fast-check generates them,
 * a failing case prints them). Each has a start `at` and, where it lasts, a duration;
 * `pair.ts` schedules them onto the world, `net.ts` reads the network ones.
 *
 * Three hosts: the two nodes and etcd (`etcd-model.ts`, only with the quorum). A
 * `partition` cuts the nodes from each other, an `etcd-partition` one node from etcd;
 * `loss` and `jitter` act on every link, etcd's included.
 */
import { switchoverForwardWaitMs } from '../../src/core/timing.js';
import type { NodeId } from './world.js';

/** Which datagrams a partition drops: both directions, or only those from one node to the other. */
export type PartitionDirection = 'both' | 'a->b' | 'b->a';

/**
 * Which way a node's link to etcd drops packets: both, only the node's requests
 * (`to-etcd`), or only etcd's answers (`from-etcd`: etcd acts on requests the node never
 * hears back about).
 */
export type EtcdPartitionDirection = 'both' | 'to-etcd' | 'from-etcd';

export type Fault =
  /** Datagrams are dropped (one-way: only in one direction); Redis links (TCP) are cut either way. */
  | { readonly kind: 'partition'; readonly at: number; readonly durationMs: number; readonly direction: PartitionDirection }
  /** Each datagram is lost with probability `rate`. */
  | { readonly kind: 'loss'; readonly at: number; readonly durationMs: number; readonly rate: number }
  /** Datagrams are delayed up to `maxDelayMs` (so reordered) and duplicated with probability `dupRate`. */
  | { readonly kind: 'jitter'; readonly at: number; readonly durationMs: number; readonly maxDelayMs: number; readonly dupRate: number }
  /** The node's Redis dies; it comes back `durationMs` later, with its data (AOF) or empty. */
  | { readonly kind: 'redis-crash'; readonly node: NodeId; readonly at: number; readonly durationMs: number; readonly keepData: boolean }
  /** The VIP interface loses its carrier: health checks fail (keepalived's track_interface), the client cannot reach the host. */
  | { readonly kind: 'link-down'; readonly node: NodeId; readonly at: number; readonly durationMs: number }
  /** The node's daemon is frozen (SIGSTOP, VM pause): it hears nothing and its timers fire late. */
  | { readonly kind: 'stall'; readonly node: NodeId; readonly at: number; readonly durationMs: number }
  /**
   * The node's daemon stops and is started again `durationMs` later from its state file:
   * `stop` (SIGTERM: resigns), `detach` (SIGUSR2: restart in place), `crash` (SIGKILL).
   * `execStopPost`: systemd's ExecStopPost (`redis-ha release-vip`) runs after it ends,
   * removing the VIP unless the restart was in place.
   */
  | {
      readonly kind: 'restart';
      readonly node: NodeId;
      readonly at: number;
      readonly durationMs: number;
      readonly how: 'stop' | 'detach' | 'crash';
      readonly execStopPost: boolean;
    }
  /** The link between `node` and etcd drops packets (see `EtcdPartitionDirection`). */
  | {
      readonly kind: 'etcd-partition';
      readonly node: NodeId;
      readonly at: number;
      readonly durationMs: number;
      readonly direction: EtcdPartitionDirection;
    }
  /** etcd is frozen (SIGSTOP): it answers nothing and expires nothing until it resumes. */
  | { readonly kind: 'etcd-freeze'; readonly at: number; readonly durationMs: number }
  /**
   * etcd is killed (connections refused) and started again `durationMs` later; it answers
   * once it is leader, an election timeout later, and the restart extends every lease.
   */
  | { readonly kind: 'etcd-restart'; readonly at: number; readonly durationMs: number }
  /** An operator runs `redis-ha switchover` on `node`. */
  | { readonly kind: 'switchover'; readonly node: NodeId; readonly at: number; readonly force: boolean; readonly timeoutMs: number }
  /** `redis-ha maintenance on` on `node`, and `off` on `offOn` `durationMs` later. */
  | { readonly kind: 'maintenance'; readonly node: NodeId; readonly offOn: NodeId; readonly at: number; readonly durationMs: number }
  /** The node's effects (promote, re-point, switchover, claim, release, persist, ...) throw with probability `rate`. */
  | { readonly kind: 'flaky'; readonly node: NodeId; readonly at: number; readonly durationMs: number; readonly rate: number };

export type FaultKind = Fault['kind'];

/**
 * When the fault's effect is over; for a switchover, when the longest wait it can start has
 * run out (a backup that forwarded it waits that long for the master's answer, and leaves
 * its Redis alone meanwhile).
 */
export function faultEnd(f: Fault, advertIntervalMs: number): number {
  return f.kind === 'switchover' ? f.at + switchoverForwardWaitMs(f.timeoutMs, advertIntervalMs) : f.at + f.durationMs;
}

/** Faults of etcd and of the links to it (they only matter with the quorum). */
export const ETCD_KINDS: readonly FaultKind[] = ['etcd-partition', 'etcd-freeze', 'etcd-restart'];

/** Faults that may lose acknowledged writes by design (no quorum: a cut-off master keeps accepting them). */
export const LOSSY_KINDS: ReadonlySet<FaultKind> = new Set<FaultKind>(['partition', 'loss', 'jitter']);

/** Short text of a fault for traces and failure messages. */
export function describeFault(f: Fault): string {
  const { kind, at, ...rest } = f;
  return `${kind}@${at} ${JSON.stringify(rest)}`;
}
