/**
 * Maintenance mode: a pair-wide flag that freezes automatic role changes, like
 * Patroni's pause. While it is on, adverts and health checks go on and are shown in
 * the status, but no node takes over, steps down from MASTER or re-points its Redis on
 * its own; what would have happened is kept in `frozen` (status shows it) and audited
 * once. Still allowed: a planned switchover, a takeover after the master's daemon
 * resigned (a planned stop is an operator's request too), BACKUP <-> FAULT (no role
 * moves), and the resolution of two masters (the VIP must never stay on two hosts).
 *
 * Sharing: the flag travels in every advert with a generation number raised on each
 * change. A node adopts a higher generation from its peer (so a node that was down when
 * the flag changed catches up); on equal generations `on` wins. Both are persisted.
 * When maintenance ends, held-back decisions are re-evaluated at once (`resume`).
 */
import { epochExhausted, maintenanceGenAdoptable, nextEpoch } from './epoch.js';
import { audit, done, livePeer, peerCannotServe, persistState, prepend, sendAdvert, withTimers, type StepResult } from './common.js';
import type { CoreConfig, CoreState } from './state.js';
import { masterDownMs } from './timing.js';
import { reconcileReplica, takeOver, toBackup, toFault } from './transitions.js';
import type { Advert, Maintenance } from './types.js';

/** Holds back an automatic action during maintenance; audited once per distinct reason. */
export function freeze(s: CoreState, now: number, what: string): StepResult {
  const reason = `maintenance: ${what}; automatic failover is off`;
  if (s.frozen?.reason === what) return done(s, [], reason);
  return done({ ...s, frozen: { reason: what, atMs: now } }, [audit('failover-held', { reason: what, role: s.role })], reason);
}

/** `redis-ha maintenance on|off` on this node. */
export function onMaintenanceRequested(
  s: CoreState,
  e: { requestId: string; on: boolean; user: string },
  now: number,
  config: CoreConfig,
): StepResult {
  const word = e.on ? 'on' : 'off';
  if (s.maintenance.on === e.on && s.peer === null) {
    // The flag is pair-wide and the newer generation wins: until the peer's advert has
    // told us its generation, "already off" could be undone by its newer "on" a moment
    // later. A change is applied (with a new generation) and needs no such wait.
    const why = 'the peer has not been heard since this daemon started and its flag may be newer; retry in a few seconds';
    return done(s, [reply(e.requestId, false, `maintenance ${word} here, not confirmed: ${why}`, s.maintenance)], `maintenance ${word} not confirmed: ${why}`);
  }
  if (s.maintenance.on === e.on) {
    return done(s, [reply(e.requestId, true, `maintenance already ${word}`, s.maintenance)], `maintenance already ${word}`);
  }
  if (epochExhausted(s.maintenance.gen)) {
    const why = `the maintenance generation ${s.maintenance.gen} is at its ceiling: stop both daemons and move both state files away`;
    return done(s, [reply(e.requestId, false, why, s.maintenance)], `maintenance ${word} refused: ${why}`);
  }
  // From our own generation: it already holds every newer one the peer sent that we adopted
  // (a jump we refused is not built on).
  const maintenance: Maintenance = { on: e.on, gen: nextEpoch(s.maintenance.gen) };
  const next: CoreState = { ...s, maintenance, frozen: e.on ? s.frozen : null };
  const reason = `maintenance ${word} (requested by ${e.user})`;
  const first = [
    persistState(next),
    audit('maintenance-set', { on: e.on, gen: maintenance.gen, user: e.user, origin: 'local' }),
    sendAdvert(next, config),
    reply(e.requestId, true, `maintenance ${word}; the peer adopts it from the next advert`, maintenance),
  ];
  if (e.on) return done(next, first, reason);
  return prepend(first, resume(next, now, config, reason));
}

/**
 * Adopts the peer's maintenance flag when its generation is newer (or equal and on), and
 * not more than a step newer (see `epoch.ts`; `previousGen`: what the peer's previous
 * advert carried, so a refused jump is audited once).
 * Returns `null` when nothing changes; `turnedOff` tells the caller to `resume`.
 */
export function adoptPeerMaintenance(s: CoreState, advert: Advert, previousGen: number | null): { state: CoreState; actions: StepResult['actions']; turnedOff: boolean } | null {
  const theirs: Maintenance = { on: advert.flags.maintenance, gen: advert.maintenanceGen ?? 0 };
  const mine = s.maintenance;
  const newer = theirs.gen > mine.gen || (theirs.gen === mine.gen && theirs.on && !mine.on);
  if (!newer || (theirs.gen === mine.gen && theirs.on === mine.on)) return null;
  if (!maintenanceGenAdoptable(mine.gen, theirs.gen)) {
    // Once per value heard, not once per advert.
    if (previousGen === theirs.gen) return null;
    return { state: s, actions: [audit('maintenance-not-adopted', { peer: advert.nodeName, heard: theirs.gen, own: mine.gen })], turnedOff: false };
  }
  const state: CoreState = { ...s, maintenance: theirs, frozen: theirs.on ? s.frozen : null };
  return {
    state,
    actions: [persistState(state), audit('maintenance-set', { on: theirs.on, gen: theirs.gen, origin: 'peer', peer: advert.nodeName })],
    turnedOff: mine.on && !theirs.on,
  };
}

/** Maintenance ended: re-evaluate what it held back, as the normal rules would have. */
export function resume(s: CoreState, now: number, config: CoreConfig, why: string): StepResult {
  const h = s.health;
  switch (s.role) {
    case 'MASTER':
      if (s.redisOp !== null) return done(s, [], `${why}: ${s.redisOp} in progress`);
      if (h.healthy === false) return toFault(s, now, config, `${why}: local Redis is failing (${h.detail})`);
      if (h.redis?.role === 'replica') {
        return toBackup(s, now, config, `${why}: local Redis is a replica while MASTER (changed during maintenance)`);
      }
      return done(s, [], `${why}: master healthy`);
    case 'BACKUP': {
      const peer = livePeer(s, now, config);
      if (peer && peerCannotServe(peer)) return takeOver(s, now, config, `${why}: peer ${peer.nodeName} reported FAULT`, { afterFault: true });
      if (!peer && s.peer) {
        // A master-down deadline still ahead was restarted by a stall: what we last heard
        // is stale, and the peer gets a fresh interval before we take over (as the timers do).
        const downAt = s.timers['master-down'];
        if (downAt !== undefined && downAt > now) {
          return done(s, [], `${why}: no recent advert from ${s.peer.nodeName}; the master-down timer decides in ${Math.round(downAt - now)} ms`);
        }
        return takeOver(s, now, config, `${why}: no advert from ${s.peer.nodeName} for ${Math.round(now - s.peer.receivedAtMs)} ms`, { afterSilence: true });
      }
      if (!peer) {
        // Never heard (just started): its adverts may simply not have arrived yet.
        const downAt = s.timers['master-down'] ?? now + masterDownMs(config.priority, config.advertIntervalMs);
        return done(withTimers(s, { 'master-down': downAt }), [], `${why}: waiting for the peer's adverts`);
      }
      const interval = peer.advertIntervalMs;
      const downAt = peer.state === 'MASTER'
        ? peer.receivedAtMs + masterDownMs(config.priority, interval)
        : s.timers['master-down'] ?? now + masterDownMs(config.priority, interval);
      return reconcileReplica(withTimers(s, { 'master-down': downAt }), now, config, why);
    }
    case 'INIT':
    case 'FAULT':
      return done(s, [], `${why}: nothing held back in ${s.role}`);
  }
}

function reply(requestId: string, ok: boolean, detail: string, m: Maintenance): StepResult['actions'][number] {
  return { type: 'reply', requestId, ok, detail, data: { maintenance: m.on, gen: m.gen } };
}
