/**
 * A backup takes over from a master whose Redis is gone: on the master's own FAULT report
 * (its advert), or on its own look at that Redis (issue 12): its replica's link to the
 * master dropped, and the master's Redis refused a connection from here. A refusal comes
 * from the master's host, so the host is up and nothing listens there: the process is
 * gone, as surely as when the master's daemon says so. It matters when that report is lost
 * or the master's daemon died with its Redis; otherwise the report comes first. A silent
 * host or a timeout proves nothing and leaves the master-down timer to decide.
 */
import { done, livePeer, withTimers, type StepResult } from './common.js';
import { freeze } from './maintenance.js';
import type { CoreConfig, CoreState, PeerView } from './state.js';
import { ARP_LOCKTIME_MARGIN_MS } from './timing.js';
import { takeOver } from './transitions.js';

/** The next announcement no later than Linux's ARP locktime from now (the periodic refresh otherwise). */
export function announceAfterLocktime(s: CoreState, now: number): CoreState {
  const at = now + ARP_LOCKTIME_MARGIN_MS;
  const current = s.timers['garp-refresh'];
  return withTimers(s, { 'garp-refresh': current === undefined ? at : Math.min(current, at) });
}

/**
 * The automatic takeover from a master whose Redis is gone (`why` says how we know). A
 * master that reported FAULT is not asked for a catch-up (`catchUpSource`); after our own
 * refused probe its advert still says MASTER, so `noCatchUp` says it.
 */
export function takeOverFromFault(s: CoreState, now: number, config: CoreConfig, why: string, noCatchUp = false): StepResult {
  if (s.maintenance.on) return freeze(s, now, `${why}; not taking over`);
  const r = takeOver(s, now, config, why, { afterFault: true, ...(noCatchUp ? { catchUpFrom: null } : {}) });
  // The FAULT advert may come before the peer lets the VIP go (it keeps it refusing for
  // a moment, `toFault`): a client that learnt its MAC meanwhile is moved by one more
  // announcement once Linux's locktime is past.
  return r.state.role === 'MASTER' ? { ...r, state: announceAfterLocktime(r.state, now) } : r;
}

/** Whether the local Redis is a replica of the peer's (the link whose drop asked for the probe). */
function followsPeer(s: CoreState, config: CoreConfig): boolean {
  const local = s.health.redis;
  return local?.role === 'replica' && local.masterHost === config.peerRedis.host && local.masterPort === config.peerRedis.port;
}

/** The master this backup follows, if it is live and says it serves. */
function servingMaster(s: CoreState, now: number, config: CoreConfig): PeerView | null {
  const peer = livePeer(s, now, config);
  return peer !== null && peer.state === 'MASTER' && !peer.flags.fault && !peer.flags.resigning ? peer : null;
}

/** The runtime's probe of the peer's Redis, asked because the replica's link to it dropped. */
export function onPeerRedisProbed(s: CoreState, down: boolean, detail: string, now: number, config: CoreConfig): StepResult {
  if (!down) return done(s, [], `peer's Redis probed: ${detail}; the master-down timer decides`);
  if (s.role !== 'BACKUP' || s.redisOp !== null || s.switchover !== null) {
    return done(s, [], `peer's Redis refused a connection (${detail}); nothing to do (${s.role}${s.redisOp ? `, ${s.redisOp}` : ''}${s.switchover ? ', switchover' : ''})`);
  }
  const peer = servingMaster(s, now, config);
  if (peer === null || !followsPeer(s, config) || s.health.healthy !== true) {
    return done(s, [], `peer's Redis refused a connection (${detail}); not a healthy replica of a live master: nothing to do`);
  }
  return takeOverFromFault(s, now, config, `peer ${peer.nodeName}'s Redis refused a connection from here (${detail}): its process is gone`, true);
}
