/**
 * The quorum's gate on every way to the master role (backend `etcd`): a node becomes
 * MASTER only while it holds the leader key in the epoch it will carry. A transition
 * that wants the role and does not hold the key records what it wanted
 * (`quorum.wanted`), asks for the key, and stays where it is; `quorum.ts` resumes it
 * when the key is granted. With backend `none` the gate is open (the pair decides alone).
 *
 * Kept apart from `quorum.ts` so that `transitions.ts` can call it without an import
 * cycle (`quorum.ts` calls the transitions).
 */
import { audit, done, sendAdvert, withTimers, type StepResult } from './common.js';
import type { CoreConfig, CoreState, WantedMastership } from './state.js';
import { failsafeGraceMs } from './timing.js';
import type { Action } from './types.js';

/** Whether this node holds the key (in `epoch`, if given) with time to spare before its fence lead. */
export function holdsKey(s: CoreState, now: number, config: CoreConfig, epoch?: number): boolean {
  const held = s.quorum.held;
  // The key records this node's epoch, never lowered by etcd: one at least as high will do.
  return held !== null && now < held.validUntilAtMs - config.quorum.fenceLeadMs && (epoch === undefined || held.epoch >= epoch);
}

/**
 * After a silence, when a master that lost etcd (failsafe) has surely fenced: see
 * `failsafeGraceMs`. Null when no wait applies.
 */
function failsafeGraceUntil(s: CoreState, now: number, config: CoreConfig, want: Omit<WantedMastership, 'sinceMs'>): number | null {
  const peer = s.peer;
  // Only a peer heard as MASTER can be serving without its lease; one etcd named as the
  // holder since the wish began fences before its key is free.
  if (!want.afterSilence || peer === null || peer.masterHeardAtMs == null || s.quorum.wanted?.sawPeerHold === true) return null;
  const lead = config.quorum.fenceLeadMs;
  // It fences once it has not heard us for the failsafe silence (a cut both ways: it last
  // heard us about when we last heard it, give or take an interval), or when it hears us
  // say we are taking over (a cut one way: every advert since the wish began says so, one
  // interval apart). Which of the two applies is unknown here: wait for both.
  const silent = peer.masterHeardAtMs + peer.advertIntervalMs + failsafeGraceMs(config.advertIntervalMs, peer.advertIntervalMs, lead);
  const told = (s.quorum.wanted?.sinceMs ?? now) + config.advertIntervalMs + lead;
  return Math.max(silent, told);
}

/**
 * Null when the mastership `want` may go ahead now; otherwise the step that holds it
 * back until the key is held (asking for it unless an ask is in flight).
 */
export function quorumGate(s: CoreState, now: number, config: CoreConfig, want: Omit<WantedMastership, 'sinceMs'>): StepResult | null {
  if (config.quorum.backend === 'none') return null;
  const graceUntil = failsafeGraceUntil(s, now, config, want);
  const holds = holdsKey(s, now, config, want.epoch);
  if (holds && (graceUntil === null || now >= graceUntil)) return null;
  const previous = s.quorum.wanted;
  const wanted: WantedMastership = {
    ...want, sinceMs: previous?.sinceMs ?? now, ...(previous?.sawPeerHold === true ? { sawPeerHold: true } : {}),
  };
  let next: CoreState = { ...s, quorum: { ...s.quorum, wanted } };
  const actions: Action[] = [];
  let why: string;
  if (holds && graceUntil !== null) {
    next = withTimers(next, { 'quorum-retry': graceUntil });
    why = `holding the leader key; waiting ${Math.round(graceUntil - now)} ms more so a master serving without etcd has fenced`;
  } else if (next.quorum.asking === null) {
    next = { ...next, quorum: { ...next.quorum, asking: want.epoch } };
    actions.push({ type: 'acquire-quorum', epoch: want.epoch });
    why = `asking etcd for the leader key (epoch ${want.epoch})`;
  } else {
    why = `waiting for etcd's answer (epoch ${next.quorum.asking})`;
  }
  if (previous === null) {
    // Tell the peer at once, ahead of the ask (which may wait for etcd up to its call
    // timeout): a master serving without its lease fences when it hears it (review S2).
    actions.unshift(audit('quorum-key-wanted', { kind: want.kind, epoch: want.epoch, reason: want.reason }), sendAdvert(next, config));
  }
  return done(next, actions, `${want.reason}; not master until this node holds the leader key: ${why}`);
}
