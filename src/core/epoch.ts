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
 */
import type { HostPort, RedisSnapshot } from './types.js';

/** Largest epoch accepted from the network or the state file, and the largest a takeover makes. */
export const EPOCH_CEILING = 0x7fff_ffff;

/** How far above the known epoch a heard epoch may be adopted without evidence. */
export const MAX_EPOCH_STEP = 16;

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
