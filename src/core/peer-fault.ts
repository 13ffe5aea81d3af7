/**
 * A backup takes over from a master whose Redis is gone on the master's own FAULT report
 * (its advert), and looks at that Redis itself when its replica's link drops (issue 12):
 * the master's Redis refused a connection from here. A refusal usually means the process
 * is gone, but not always (a firewall's REJECT on the path answers the same, and the
 * master's own loopback check would not see it), so it is not taken as the master's
 * report: it brings the master-down timer forward to one advert interval (+ skew). A live
 * master's daemon reports FAULT, or advertises MASTER again (which restores the timer),
 * before that; a master whose daemon died with its Redis is then taken over through the
 * silence path, with its catch-up from (and fencing of) a Redis that may have restarted
 * meanwhile, and every gate of that path (`prefer: safety`, the quorum's failsafe grace).
 *
 * With the probe, the backup asks the master's daemon for an advert now (an
 * `advert-request` message): a master that is alive and serving answers within a round
 * trip, so a refusal the master's daemon does not share (the firewall case) has its
 * shortened timer put back at once rather than at the next regular advert; a master whose
 * Redis is gone answers with its FAULT advert if it has not sent it already. A node that
 * advertises answers every such request, at most one per `SOLICITED_ADVERT_GAP_MS`.
 */
import { audit, done, livePeer, message, sendAdvert, withTimers, type StepResult } from './common.js';
import { freeze } from './maintenance.js';
import type { CoreConfig, CoreState, PeerView } from './state.js';
import { ARP_LOCKTIME_MARGIN_MS, SOLICITED_ADVERT_GAP_MS, skewMs } from './timing.js';
import { takeOver } from './transitions.js';

/** The next announcement no later than Linux's ARP locktime from now (the periodic refresh otherwise). */
export function announceAfterLocktime(s: CoreState, now: number): CoreState {
  const at = now + ARP_LOCKTIME_MARGIN_MS;
  const current = s.timers['garp-refresh'];
  return withTimers(s, { 'garp-refresh': current === undefined ? at : Math.min(current, at) });
}

/** The automatic takeover from a master that reported its Redis FAULT (`why` says so). */
export function takeOverFromFault(s: CoreState, now: number, config: CoreConfig, why: string): StepResult {
  if (s.maintenance.on) return freeze(s, now, `${why}; not taking over`);
  const r = takeOver(s, now, config, why, { afterFault: true });
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
  const at = now + peer.advertIntervalMs + skewMs(config.priority, peer.advertIntervalMs);
  const current = s.timers['master-down'];
  const what = `peer ${peer.nodeName}'s Redis refused a connection from here (${detail})`;
  if (current !== undefined && current <= at) return done(s, [], `${what}; the master-down timer fires sooner anyway`);
  return done(withTimers(s, { 'master-down': at }), [audit('peer-redis-refused', { detail, masterDownInMs: Math.round(at - now) })],
    `${what}: master-down in ${Math.round(at - now)} ms unless ${peer.nodeName} reports FAULT or advertises MASTER again`);
}

/** The replica's link to the master dropped (the runtime probes that Redis too): ask the master's daemon for an advert now. */
export function onReplicaLinkDropped(s: CoreState, now: number, config: CoreConfig): StepResult {
  const peer = servingMaster(s, now, config);
  if (s.role !== 'BACKUP' || s.switchover !== null || peer === null || !followsPeer(s, config)) {
    return done(s, [], `replica link dropped; not a replica of a live master here (${s.role}${s.switchover ? ', switchover' : ''}): no advert asked for`);
  }
  return done(s, [message({ kind: 'advert-request', requestId: `link-${Math.max(0, Math.round(now))}` })],
    `replica link to ${peer.nodeName} dropped: asking it for an advert now, probing its Redis`);
}

/** The peer asked for an advert now: sent if this node advertises, at most one per `SOLICITED_ADVERT_GAP_MS`. */
export function onAdvertRequested(s: CoreState, from: string, now: number, config: CoreConfig): StepResult {
  if (s.timers.advert === undefined) return done(s, [], `${from} asked for an advert; not advertising (${s.role})`);
  if (s.solicitedAdvertAtMs !== null && now - s.solicitedAdvertAtMs < SOLICITED_ADVERT_GAP_MS) {
    return done(s, [], `${from} asked for an advert; one was sent ${Math.round(now - s.solicitedAdvertAtMs)} ms ago`);
  }
  return done({ ...s, solicitedAdvertAtMs: now }, [sendAdvert(s, config)], `${from} asked for an advert: sent (${s.role})`);
}
