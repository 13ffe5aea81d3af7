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
import { failsafeGraceMs, masterDownMs } from './timing.js';
import type { Action } from './types.js';

/** Whether this node holds the key (in `epoch`, if given) with time to spare before its fence lead. */
export function holdsKey(s: CoreState, now: number, config: CoreConfig, epoch?: number): boolean {
  const held = s.quorum.held;
  return held !== null && now < held.validUntilAtMs - config.quorum.fenceLeadMs && (epoch === undefined || held.epoch === epoch);
}

/** `quorum.last.what` of a takeover held back by `prefer: safety`. */
export const SAFETY_HOLD = 'safety-hold';

/**
 * Without a quorum, `prefer: safety`: a silent master cannot be told from a cut one, and
 * a cut one may still be acknowledging writes (until its `with-replica` fence trips), so
 * it is replaced only through its own Redis: while the local replica's link to it is up,
 * the promotion's fenced takeover pauses it, catches up and makes it a replica (nothing
 * it acknowledged is lost). With the link down too, no automatic takeover: the master
 * may be serving clients on the other side. A FAULT report or a resignation is not a
 * silence and passes.
 */
function safetyGate(s: CoreState, now: number, config: CoreConfig, want: Omit<WantedMastership, 'sinceMs'>): StepResult | null {
  if (!want.afterSilence) return null;
  const local = s.health.redis;
  if (local !== null && local.role === 'replica' && local.linkUp) return null;
  const again = now + masterDownMs(config.priority, s.peer?.advertIntervalMs ?? config.advertIntervalMs);
  const why = 'prefer safety: the master is silent and its Redis unreachable from here (it may still serve clients on the other side); ' +
    'not taking over without a quorum';
  // Audited once per silence (since the master was last heard).
  const last = s.quorum.last;
  const first = last === null || last.what !== SAFETY_HOLD || last.atMs < (s.peer?.receivedAtMs ?? Number.NEGATIVE_INFINITY);
  const held: CoreState = first ? { ...s, quorum: { ...s.quorum, last: { what: SAFETY_HOLD, detail: why, atMs: now } } } : s;
  const next = withTimers(held, { 'master-down': again });
  return done(next, first ? [audit('takeover-held', { reason: want.reason, blocker: why })] : [], `${want.reason}; ${why}`);
}

/**
 * After a silence, when a master that lost etcd (failsafe) has surely fenced: see
 * `failsafeGraceMs`. Null when no wait applies.
 */
function failsafeGraceUntil(s: CoreState, config: CoreConfig, want: Omit<WantedMastership, 'sinceMs'>): number | null {
  const peer = s.peer;
  if (!want.afterSilence || peer === null) return null;
  return peer.receivedAtMs + failsafeGraceMs(config.advertIntervalMs, peer.advertIntervalMs, config.quorum.fenceLeadMs);
}

/**
 * Null when the mastership `want` may go ahead now; otherwise the step that holds it
 * back until the key is held (asking for it unless an ask is in flight).
 */
export function quorumGate(s: CoreState, now: number, config: CoreConfig, want: Omit<WantedMastership, 'sinceMs'>): StepResult | null {
  if (config.quorum.backend === 'none') return config.quorum.prefer === 'safety' ? safetyGate(s, now, config, want) : null;
  const graceUntil = failsafeGraceUntil(s, config, want);
  const holds = holdsKey(s, now, config, want.epoch);
  if (holds && (graceUntil === null || now >= graceUntil)) return null;
  const previous = s.quorum.wanted;
  const wanted: WantedMastership = { ...want, sinceMs: previous?.sinceMs ?? now };
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
    // Tell the peer at once: a master serving without its lease fences when it hears it.
    actions.unshift(audit('quorum-key-wanted', { kind: want.kind, epoch: want.epoch, reason: want.reason }));
    actions.push(sendAdvert(next, config));
  }
  return done(next, actions, `${want.reason}; not master until this node holds the leader key: ${why}`);
}
