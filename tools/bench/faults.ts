/**
 * Fault injection on the pair lab, one entry per `FaultName`, always on the master
 * the setup elected at start-up (`a`). Each fault says when it took effect, whether
 * it lasts a fixed time (partition, loss: healed after `TIMED_FAULT_MS`; daemon-stall:
 * continued after `DAEMON_STALL_MS`; both inside the fault phase) or until the
 * runner's observation ends, and how it is repaired
 * afterwards the way an operator or a supervisor would (restart the killed Redis with
 * its unchanged config, plug the cable back, SIGCONT), so that the end state says
 * whether the setup heals.
 *
 * A killed daemon is not restarted (the lab has no supervisor, and a driver has no
 * restart hook): the run shows what the surviving side does alone. A switchover is
 * the driver's own planned handover.
 *
 * Packet loss needs nftables in the namespaces (`LabNetwork.addLoss`); when that is not
 * available the fault is reported unsupported on this machine with the reason, never
 * faked.
 */
import { nowWallMs, type PairLab, type PairNode } from '../lab/pair.js';
import type { FaultName, SetupDriver } from './setup.js';

/** How long partition and loss last before they are healed. */
export const TIMED_FAULT_MS = 20_000;
/** Share of packets dropped between a and b by the `loss` fault. */
export const LOSS_PERCENT = 30;
/**
 * How long `daemon-stall` keeps the master host's failover daemon stopped before the
 * SIGCONT: longer than every setup's master-down interval on b (priority 90: 3 × 1 s +
 * skew ≈ 3.65 s for redis-ha and keepalived-classic, ≈ 0.37 s for redis-ha-fast), so
 * the peer has taken over when the stalled master wakes up and must step down, with
 * about two seconds of margin for a busy machine. (Sentinel's failover does not depend
 * on the sentinel beside the master; see its driver.) Results taken with another value
 * must not be merged with these.
 */
export const DAEMON_STALL_MS = 6_000;

/** A repair step run after the observation (or, for timed faults, the heal). */
export interface FaultRepair {
  readonly description: string;
  run(): Promise<void>;
}

/** A fault in effect. */
export interface ActiveFault {
  readonly name: FaultName;
  /** What was done, for the results. */
  readonly description: string;
  /** `nowWallMs()` when the fault took effect. */
  readonly injectedWallMs: number;
  /** Fixed duration before `repair` heals it inside the fault phase, or `null`. */
  readonly durationMs: number | null;
  /** The repair, or `null` when the fault is left as it is. */
  readonly repair: FaultRepair | null;
  /** Run whatever happened before teardown (a stopped Redis must be resumed to die). */
  cleanup(): Promise<void>;
  /** What the fault itself observed (e.g. packets dropped), for the results. */
  readonly notes: string[];
}

let lossSupportCache: { ok: boolean; reason: string } | null = null;

/**
 * Why `fault` cannot run for `driver` on this machine, or `null` when it can. Needs a
 * lab to probe nftables in (once per process).
 */
export async function faultUnsupported(fault: FaultName, driver: SetupDriver, lab: PairLab): Promise<string | null> {
  if (!driver.supports.includes(fault)) return `${driver.name} does not support ${fault}`;
  if (fault === 'switchover' && !driver.switchover) return `${driver.name} offers no switchover`;
  if (fault === 'daemon-stall' && (!driver.suspendDaemon || !driver.resumeDaemon)) return `${driver.name} cannot stop and continue its daemon`;
  if (fault === 'loss') {
    lossSupportCache ??= await lab.net.lossSupport();
    if (!lossSupportCache.ok) {
      return `packet loss unsupported on this machine: the kernel has no netem/tc actions and ${lossSupportCache.reason}`;
    }
  }
  return null;
}

/** The cached loss-support probe result, if probed. */
export function lossSupportProbe(): { ok: boolean; reason: string } | null {
  return lossSupportCache;
}

const noCleanup = async (): Promise<void> => {};

/** Injects `fault` on `master` (the elected master, `a` at start-up). */
export async function injectFault(fault: FaultName, lab: PairLab, driver: SetupDriver, master: PairNode = 'a'): Promise<ActiveFault> {
  const peer = master === 'a' ? 'b' : 'a';
  switch (fault) {
    case 'redis-kill': {
      const injectedWallMs = nowWallMs();
      lab.killRedis(master, 'SIGKILL');
      return {
        name: fault,
        description: `SIGKILL of ${master}'s Redis`,
        injectedWallMs,
        durationMs: null,
        repair: {
          description: `restart ${master}'s Redis with its start-up config (an empty master, no persistence)`,
          run: () => lab.restartRedis(master),
        },
        cleanup: noCleanup,
        notes: [],
      };
    }
    case 'redis-hang': {
      const injectedWallMs = nowWallMs();
      lab.killRedis(master, 'SIGSTOP');
      const resume = async (): Promise<void> => lab.killRedis(master, 'SIGCONT');
      return {
        name: fault,
        description: `SIGSTOP of ${master}'s Redis`,
        injectedWallMs,
        durationMs: null,
        repair: { description: `SIGCONT of ${master}'s Redis`, run: resume },
        cleanup: resume,
        notes: [],
      };
    }
    case 'link-down': {
      await lab.cutLink(master);
      // After `ip` returned: ops issued while it ran still reached the master.
      const injectedWallMs = nowWallMs();
      return {
        name: fault,
        description: `${master}'s link cut (bridge-side veth down)`,
        injectedWallMs,
        durationMs: null,
        repair: { description: `${master}'s link restored`, run: () => lab.restoreLink(master) },
        cleanup: async () => {
          await lab.restoreLink(master).catch(() => undefined);
        },
        notes: [],
      };
    }
    case 'daemon-kill': {
      const injectedWallMs = nowWallMs();
      await driver.killDaemon(lab, master);
      return {
        name: fault,
        description: `SIGKILL of ${driver.name}'s daemon(s) on ${master}, not restarted`,
        injectedWallMs,
        durationMs: null,
        repair: null,
        cleanup: noCleanup,
        notes: [],
      };
    }
    case 'daemon-stall': {
      const { suspendDaemon, resumeDaemon } = driver;
      if (!suspendDaemon || !resumeDaemon) throw new Error(`${driver.name} cannot stop and continue its daemon`);
      await suspendDaemon.call(driver, lab, master);
      // After the SIGSTOP: the daemon's last adverts may still be on their way.
      const injectedWallMs = nowWallMs();
      const resume = (): Promise<void> => resumeDaemon.call(driver, lab, master);
      return {
        name: fault,
        description: `SIGSTOP of ${driver.name}'s daemon(s) on ${master} for ${DAEMON_STALL_MS / 1000} s (its Redis keeps running)`,
        injectedWallMs,
        durationMs: DAEMON_STALL_MS,
        repair: { description: `SIGCONT: ${driver.name}'s daemon(s) on ${master} continued`, run: resume },
        cleanup: resume,
        notes: [],
      };
    }
    case 'partition': {
      await lab.partitionNodes();
      const injectedWallMs = nowWallMs();
      return {
        name: fault,
        description: `a and b cut from each other (both reach the client) for ${TIMED_FAULT_MS / 1000} s`,
        injectedWallMs,
        durationMs: TIMED_FAULT_MS,
        repair: { description: 'partition healed', run: () => lab.healNodes() },
        cleanup: async () => {
          await lab.healNodes().catch(() => undefined);
        },
        notes: [],
      };
    }
    case 'loss': {
      await lab.net.addLoss(master, peer, LOSS_PERCENT);
      const injectedWallMs = nowWallMs();
      const notes: string[] = [];
      return {
        name: fault,
        description: `${LOSS_PERCENT} % random packet loss between a and b (nftables) for ${TIMED_FAULT_MS / 1000} s`,
        injectedWallMs,
        durationMs: TIMED_FAULT_MS,
        repair: {
          description: 'packet loss removed',
          run: async () => {
            const dropped = await lab.net.lossDropped(master, peer);
            notes.push(`packets dropped by the loss rule: ${Object.entries(dropped).map(([host, n]) => `${n} arriving at ${host}`).join(', ')}`);
            await lab.net.clearLoss(master, peer);
          },
        },
        cleanup: async () => {
          await lab.net.clearLoss(master, peer).catch(() => undefined);
        },
        notes,
      };
    }
    case 'switchover': {
      if (!driver.switchover) throw new Error(`${driver.name} offers no switchover`);
      const injectedWallMs = nowWallMs();
      await driver.switchover(lab);
      return {
        name: fault,
        description: `planned switchover a -> b by ${driver.name}`,
        injectedWallMs,
        durationMs: null,
        repair: null,
        cleanup: noCleanup,
        notes: [],
      };
    }
  }
}
