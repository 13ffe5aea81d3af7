/**
 * Promotion epochs: which values a node takes from the network, and which it makes.
 *
 * An epoch orders masterships: a node takes one more than the highest it knows when it
 * takes over, and of two masters the one with the newer epoch holds the newer writes.
 * Because the highest epoch heard is adopted and persisted, one advert could otherwise
 * poison it for good: a value at the top of the 32-bit wire field made the next takeover
 * unencodable, and the master fell silent across restarts. Two bounds stop that:
 *
 *  - a ceiling, half the wire field: nothing above it is accepted from the network (the
 *    decoders refuse it) or the state file, and a takeover never makes more than it, so
 *    every epoch this node can hold still fits the field;
 *  - a step: an epoch more than `MAX_EPOCH_STEP` above what this node knows is adopted
 *    only with evidence that the sender's history is the one this node follows (its
 *    Redis replicates the sender's, with the link up and the same replication id), or
 *    by a node that knows no epoch yet (a new or wiped host has nothing to protect).
 *    Without evidence the sender is still heard and ranked by what it claims, but the
 *    jump is not persisted, and this node's own takeovers do not build on it.
 *
 * Should an epoch at the ceiling be adopted all the same (a fresh node, or a node that
 * follows a poisoned sender), no takeover can make a newer one: it is refused, audited and
 * shown as critical by `status` (reset both state files), never made as a silent tie. A
 * `handover` names an epoch at most a step above the known one. Maintenance generations
 * share the ceiling and get a step of their own (`MAX_MAINTENANCE_GEN_STEP`).
 */
import type { HostPort, RedisSnapshot } from './types.js';

/** Largest epoch accepted from the network or the state file, and the largest a takeover makes. */
export const EPOCH_CEILING = 0x7fff_ffff;

/** How far above the known epoch a heard epoch may be adopted without evidence. */
export const MAX_EPOCH_STEP = 16;

/**
 * How far above its own a peer's maintenance generation is adopted (each `maintenance on`
 * or `off` raises it by one: this many changes while a node was down).
 */
export const MAX_MAINTENANCE_GEN_STEP = 1024;

/** Whether no epoch above `known` can be made any more: a takeover must be refused, loudly. */
export function epochExhausted(...known: readonly number[]): boolean {
  return Math.max(0, ...known) >= EPOCH_CEILING;
}

/**
 * Why a handover's epoch must not be taken, or null: it must be above the known epoch and
 * at most a step above it (the old master names one more than the highest it knows, and
 * both nodes heard each other's epochs until then).
 */
export function handoverEpochProblem(known: number, named: number): string | null {
  if (named <= known) return `its epoch ${named} is not above the known epoch ${known}`;
  if (named - known > MAX_EPOCH_STEP) return `its epoch ${named} is more than ${MAX_EPOCH_STEP} above the known epoch ${known}`;
  return null;
}

/** Whether to adopt the peer's maintenance generation `heard` over this node's `own`. */
export function maintenanceGenAdoptable(own: number, heard: number): boolean {
  return own === 0 || heard - own <= MAX_MAINTENANCE_GEN_STEP;
}

/** The epoch of a new mastership: one above every epoch given, never above the ceiling. */
export function nextEpoch(...known: readonly number[]): number {
  return Math.min(Math.max(0, ...known) + 1, EPOCH_CEILING);
}

/** What this node sees of the sender when it hears an epoch. */
export interface EpochEvidence {
  /** The local Redis, as last checked. */
  readonly local: RedisSnapshot | null;
  /** Where the local Redis replicates from when this node is backup (the sender's Redis). */
  readonly peerRedis: HostPort;
  /** The sender's Redis replication id, from its advert. */
  readonly senderReplId: string;
}

/** The verdict on an epoch heard from the peer. */
export type EpochAdoption =
  | { readonly adopt: true; readonly knownEpoch: number }
  | { readonly adopt: false; readonly knownEpoch: number; readonly why: string };

/** Whether to raise `known` to `heard` (see the file header). */
export function adoptEpoch(known: number, heard: number, evidence: EpochEvidence): EpochAdoption {
  if (heard <= known) return { adopt: true, knownEpoch: known };
  const capped = Math.min(heard, EPOCH_CEILING);
  if (known === 0 || capped - known <= MAX_EPOCH_STEP || followsSender(evidence)) return { adopt: true, knownEpoch: capped };
  return {
    adopt: false,
    knownEpoch: known,
    why: `epoch ${heard} is more than ${MAX_EPOCH_STEP} above the known epoch ${known} and the local Redis does not replicate that node's history`,
  };
}

function followsSender(e: EpochEvidence): boolean {
  const local = e.local;
  return local !== null && local.role === 'replica' && local.linkUp &&
    local.masterHost === e.peerRedis.host && local.masterPort === e.peerRedis.port &&
    e.senderReplId !== '' && local.replId === e.senderReplId;
}
