/**
 * Which authenticated packets reach the core: the replay guard's order, and freshness.
 *
 * The replay guard (`replay.ts`) refuses a `(bootTimeMs, seq)` that is not newer than
 * the last one accepted from its sender, but it lives in memory: after this daemon
 * restarts it would accept any packet recorded before, once. Seen: a `handover` captured
 * during an earlier switchover and replayed between the backup daemon's restart and the
 * master's first advert made the backup promote without catching up; a replayed MASTER
 * advert can keep a dead master looking alive.
 *
 * So every packet also carries `echoBootTimeMs`: the boot time of its receiver as the
 * sender last heard it. A daemon's boot time is new at every start (persisted, never
 * going back), so no packet recorded before this run echoes it, whatever its sequence.
 * A packet is delivered only when it echoes this run's boot time; one that does not is
 * still recorded by the guard (it is genuine and newer, so its boot time is what this
 * node echoes back), which is how two daemons that just met learn each other: each
 * refuses the other's packets for at most one advert interval, until its own advert has
 * been heard and echoed.
 *
 * What the guard last accepted from each sender is also kept across restarts (the state
 * file, `seed`): a packet of an older run of the peer is refused as `stale-boot` at once,
 * and this node echoes the peer's current run from its first advert instead of one
 * interval later (a restart in place is not mistaken for a silent master).
 *
 * A run kept in the state file is a hint, not a lock: should the peer come back with a
 * smaller boot time (its own state file moved away while its clock was behind), its
 * packets would be `stale-boot` for ever. So while nothing of the peer has been accepted
 * in this run, a smaller boot time is accepted from a packet that echoes this run (a
 * recording cannot: this run is new), and replaces the kept one.
 *
 * A pair has one peer: the echo is the boot time of the last sender accepted. Pure: no
 * clock, no I/O.
 */
import { ReplayGuard, type ReplayRejectReason } from './replay.js';

/** Why an authenticated packet was refused. */
export type AdmissionRejectReason = ReplayRejectReason | 'not-fresh';

/** Every reason `Admission.check` can refuse for. */
export const ADMISSION_REJECT_REASONS: readonly AdmissionRejectReason[] = ['replayed', 'stale-boot', 'not-fresh'];

/** The last pair accepted from one sender, as persisted. */
export interface PeerSeen {
  readonly nodeName: string;
  readonly bootTimeMs: number;
  readonly seq: number;
}

/** The fields of a packet admission reads. */
export interface Stamped {
  readonly nodeName: string;
  readonly bootTimeMs: number;
  readonly seq: number;
  readonly echoBootTimeMs: number;
}

export type AdmissionCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: AdmissionRejectReason; readonly detail: string };

const ADMITTED: AdmissionCheck = Object.freeze({ ok: true });

export interface AdmissionOptions {
  /** What was accepted from each sender before this run (the state file). */
  readonly seed?: readonly PeerSeen[];
  /** Senders the replay guard remembers; see `ReplayGuard`. */
  readonly maxSenders?: number;
  /** Told when a packet of a sender's new run is accepted in order (the daemon persists it). */
  readonly onNewRun?: (seen: PeerSeen) => void;
}

export class Admission {
  private readonly guard: ReplayGuard;
  private heard: PeerSeen | null = null;
  /** Senders known only from the seed: nothing of theirs accepted in this run yet. */
  private readonly seededOnly = new Set<string>();

  private readonly onNewRun: (seen: PeerSeen) => void;

  /** @param ownBootTimeMs this run's boot time now (it changes only if the sequence wraps). */
  constructor(private readonly ownBootTimeMs: () => number, options: AdmissionOptions = {}) {
    this.guard = new ReplayGuard(options.maxSenders);
    this.onNewRun = options.onNewRun ?? (() => undefined);
    for (const p of options.seed ?? []) {
      this.guard.check(p.nodeName, p.bootTimeMs, p.seq);
      this.seededOnly.add(p.nodeName);
      this.heard = p;
    }
  }

  /** Records `p` if it is newer than its sender's last packet, and admits it if it is also fresh. */
  check(p: Stamped): AdmissionCheck {
    const own = this.ownBootTimeMs();
    let ordered = this.guard.check(p.nodeName, p.bootTimeMs, p.seq);
    if (!ordered.ok && ordered.reason === 'stale-boot' && this.seededOnly.has(p.nodeName) && p.echoBootTimeMs === own) {
      this.guard.forget(p.nodeName);
      ordered = this.guard.check(p.nodeName, p.bootTimeMs, p.seq);
    }
    if (!ordered.ok) return ordered;
    const previous = this.heard;
    this.heard = { nodeName: p.nodeName, bootTimeMs: p.bootTimeMs, seq: p.seq };
    if (previous?.nodeName !== p.nodeName || previous.bootTimeMs !== p.bootTimeMs) this.onNewRun(this.heard);
    if (p.echoBootTimeMs !== own) {
      const said = p.echoBootTimeMs === 0 ? 'has not heard this daemon yet' : `echoes boot time ${p.echoBootTimeMs}`;
      return {
        ok: false,
        reason: 'not-fresh',
        detail: `${p.nodeName} ${said}, this run started at ${own} (a packet from before this restart, or sent before its sender heard this run)`,
      };
    }
    this.seededOnly.delete(p.nodeName);
    return ADMITTED;
  }

  /** The boot time to echo in outgoing packets: the last sender's run, 0 before any. */
  echo(): number {
    return this.heard?.bootTimeMs ?? 0;
  }

  /** The last pair accepted from the sender heard last, for the state file; null before any. */
  lastHeard(): PeerSeen | null {
    return this.heard;
  }
}
