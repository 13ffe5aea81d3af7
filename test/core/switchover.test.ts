/**
 * Planned switchover in the decision core: the master's checks, the handover and its
 * outcomes, forwarding from the backup, the messages between the daemons, duplicates
 * and deadlines. Time is the `now` argument; no mocks.
 */
import { describe, expect, it } from 'vitest';
import type { CoreState } from '../../src/core/state.js';
import { vipDesired } from '../../src/core/state.js';
import { ARP_LOCKTIME_MARGIN_MS, step } from '../../src/core/step.js';
import type { Event } from '../../src/core/types.js';
import {
  B_ADDR, REPL_A, aCfg, advert, bAdvert, coreConfig, fired, find, heard, last, masterSnap, masterWithBackup, ok, replicaSnap, run, types,
} from './fixtures.js';

/** Node a (priority 100) is MASTER; its peer b is a healthy BACKUP replicating it. */
function masterA(): CoreState {
  const s = masterWithBackup();
  expect(s.role).toBe('MASTER');
  expect(s.vipClaimed).toBe(true);
  return { ...s, epoch: 1, knownEpoch: 1 };
}

/** Node b (default config, priority 90) is BACKUP following a. */
function backupB(): CoreState {
  const s = last(run(coreConfig(), [
    [0, { type: 'started' }],
    [10, ok(replicaSnap())],
    [20, heard(advert({ state: 'MASTER', epoch: 1 }))],
  ])).state;
  expect(s.role).toBe('BACKUP');
  return s;
}

/** The old master's advert while it hands over (the flag a handover is accepted on). */
const HANDING_OVER = { fault: false, resigning: false, maintenance: false, switchingOver: true, holdsVip: true };

/** `s` after hearing the master hand over at `at`. */
function handingOver(s: CoreState, at: number, epoch = 1): CoreState {
  return step(s, heard(advert({ state: 'MASTER', epoch, flags: HANDING_OVER })), at, coreConfig()).state;
}

const handover = (requestId: string, epoch: number, from = 'a'): Event =>
  ({ type: 'handover-received', requestId, epoch, force: false, from });

const request = (over: Partial<Extract<Event, { type: 'switchover-requested' }>> = {}): Event => ({
  type: 'switchover-requested', requestId: 'r1', timeoutMs: 5000, force: false, user: 'alice', origin: 'local', ...over,
});

const finished = (outcome: 'done' | 'refused' | 'rolled-back' | 'failed'): Event => ({
  type: 'redis-switchover-finished', outcome, method: 'failover', detail: 'FAILOVER TO ...', pausedMs: 12,
  redis: outcome === 'done' ? replicaSnap({ masterHost: B_ADDR, offset: 1200 }) : masterSnap({ replId: REPL_A, offset: 1200 }),
});

describe('switchover on the master', () => {
  it('starts the Redis handover, keeps the VIP and flags the advert', () => {
    const r = step(masterA(), request(), 100, aCfg);
    expect(types(r.actions)).toEqual(['send-advert', 'send-advert', 'switchover-redis']);
    expect(find(r.actions, 'switchover-redis')).toEqual({ type: 'switchover-redis', target: { host: B_ADDR, port: 6379 }, timeoutMs: 5000, force: false });
    expect(find(r.actions, 'send-advert')?.advert.flags.switchingOver).toBe(true);
    expect(r.state.role).toBe('MASTER');
    expect(r.state.redisOp).toBe('switching-over');
    expect(vipDesired(r.state)).toBe(true);
    expect(r.reason).toMatch(/switchover r1 by alice: handing the master role to b/);
  });

  it('on success steps down keeping the VIP (make before break), and tells the peer to take a newer epoch', () => {
    const s1 = step(masterA(), request(), 100, aCfg).state;
    const r = step(s1, finished('done'), 150, aCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(types(r.actions)).toEqual(['persist-state', 'send-advert', 'send-message']);
    expect(vipDesired(r.state)).toBe(true);
    expect(find(r.actions, 'send-advert')?.advert.flags.holdsVip).toBe(true);
    expect(find(r.actions, 'send-message')?.message).toEqual({ kind: 'handover', requestId: 'r1', epoch: 2, force: false });
    expect(r.state.switchover?.phase).toBe('awaiting-peer');
    expect(r.state.knownEpoch).toBe(2);
    expect(r.state.timers.switchover).toBeGreaterThan(150);
    expect(r.reason).toMatch(/Redis master handed to b \(failover, writes paused 12 ms\)/);
  });

  it('lets go of the VIP and answers once the peer advertises MASTER holding the VIP', () => {
    let s = step(masterA(), request(), 100, aCfg).state;
    s = step(s, finished('done'), 150, aCfg).state;
    const early = step(s, heard(bAdvert({ state: 'BACKUP' }), B_ADDR), 160, aCfg);
    expect(find(early.actions, 'reply')).toBeUndefined();
    const masterRedis = { role: 'master', replId: REPL_A, replId2: '', offset: 1200, secondOffset: -1 } as const;
    // Promoting: MASTER but not yet holding the VIP.
    const promotingFlags = { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false };
    const promoting = step(early.state, heard(bAdvert({ state: 'MASTER', epoch: 2, flags: promotingFlags, redis: masterRedis }), B_ADDR), 180, aCfg);
    expect(find(promoting.actions, 'release-vip')).toBeUndefined();
    const holding = { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: true };
    const r = step(promoting.state, heard(bAdvert({ state: 'MASTER', epoch: 2, flags: holding, redis: masterRedis }), B_ADDR), 200, aCfg);
    expect(types(r.actions)).toEqual(['release-vip', 'disconnect-clients', 'send-advert', 'reply']);
    expect(find(r.actions, 'send-advert')?.advert.flags.holdsVip).toBe(false);
    expect(vipDesired(r.state)).toBe(false);
    const reply = find(r.actions, 'reply');
    expect(reply).toMatchObject({ requestId: 'r1', ok: true });
    expect(reply?.detail).toMatch(/b is master \(epoch 2\)/);
    expect(r.state.switchover).toBeNull();
    expect(r.state.timers.switchover).toBeUndefined();
    expect(r.state.role).toBe('BACKUP');
  });

  it('re-sends handover on advert ticks, at most five times', () => {
    let s = step(masterA(), request(), 100, aCfg).state;
    s = step(s, finished('done'), 150, aCfg).state;
    let sent = 0;
    for (let i = 1; i <= 8; i++) {
      const r = step(s, fired('advert'), 150 + i * 1000, aCfg);
      sent += r.actions.filter((a) => a.type === 'send-message').length;
      s = r.state;
    }
    expect(sent).toBe(5);
  });

  it('a deadline without the peer advertising MASTER answers with a failure', () => {
    let s = step(masterA(), request(), 100, aCfg).state;
    s = step(s, finished('done'), 150, aCfg).state;
    const r = step(s, fired('switchover'), s.timers.switchover!, aCfg);
    expect(find(r.actions, 'release-vip')).toBeDefined();
    expect(find(r.actions, 'reply')).toMatchObject({ ok: false });
    expect(find(r.actions, 'reply')?.detail).toMatch(/has not advertised MASTER/);
    expect(r.state.switchover).toBeNull();
  });

  it('a node that went FAULT during the handover stays FAULT and still tells the peer to take over', () => {
    let s = step(masterA(), request(), 100, aCfg).state;
    s = { ...s, role: 'FAULT' };
    const r = step(s, finished('done'), 150, aCfg);
    expect(r.state.role).toBe('FAULT');
    expect(find(r.actions, 'send-message')?.message).toMatchObject({ kind: 'handover', requestId: 'r1' });
    expect(vipDesired(r.state)).toBe(false);
  });

  it('stopping while waiting for the new master releases the VIP it kept', () => {
    let s = step(masterA(), request(), 100, aCfg).state;
    s = step(s, finished('done'), 150, aCfg).state;
    const r = step(s, { type: 'shutdown-requested' }, 160, aCfg);
    expect(types(r.actions)).toContain('release-vip');
  });

  it('the peer refusing the role: the old master lets go of the VIP and its clients', () => {
    let s = step(masterA(), request(), 100, aCfg).state;
    s = step(s, finished('done'), 150, aCfg).state;
    const r = step(s, { type: 'switchover-result-received', requestId: 'r1', ok: false, detail: 'handover ignored: FAULT' }, 170, aCfg);
    expect(types(r.actions)).toEqual(['release-vip', 'disconnect-clients', 'reply']);
  });

  for (const outcome of ['refused', 'rolled-back', 'failed'] as const) {
    it(`${outcome}: stays master with the VIP and answers at once`, () => {
      const s1 = step(masterA(), request(), 100, aCfg).state;
      const r = step(s1, finished(outcome), 150, aCfg);
      expect(r.state.role).toBe('MASTER');
      expect(r.state.redisOp).toBeNull();
      expect(r.state.switchover).toBeNull();
      expect(types(r.actions)).toEqual(['reply', 'send-advert']);
      expect(find(r.actions, 'reply')).toMatchObject({ ok: false, data: { outcome } });
      expect(find(r.actions, 'send-advert')?.advert.flags.switchingOver).toBe(false);
      expect(vipDesired(r.state)).toBe(true);
    });
  }

  const refusals: { name: string; prepare: (s: CoreState) => CoreState; event?: Partial<Extract<Event, { type: 'switchover-requested' }>>; now?: number; why: RegExp }[] = [
    { name: 'peer FAULT', prepare: (s) => step(s, heard(bAdvert({ state: 'FAULT', flags: { fault: true, resigning: false, maintenance: false, switchingOver: false, holdsVip: false } }), B_ADDR), 50, aCfg).state, why: /peer b is FAULT/ },
    { name: 'peer silent', prepare: (s) => s, now: 20_000, why: /no advert from b for \d+ ms/ },
    { name: 'peer lagging', prepare: (s) => step(s, heard(bAdvert({ state: 'BACKUP', redis: { role: 'replica', replId: REPL_A, replId2: '', offset: -2_000_000, secondOffset: -1 } }), B_ADDR), 50, aCfg).state, why: /lags 2001000 bytes \(bound 1000000/ },
    { name: 'peer Redis not a replica', prepare: (s) => step(s, heard(bAdvert({ state: 'BACKUP', redis: { role: 'unknown', replId: '', replId2: '', offset: 0, secondOffset: -1 } }), B_ADDR), 50, aCfg).state, why: /Redis is unknown, not a replica/ },
    // Maintenance was just turned off here (gen 2) and the peer has not adopted it yet.
    { name: 'maintenance flags disagree', prepare: (s) => step({ ...s, maintenance: { on: false, gen: 2 } }, heard(bAdvert({ state: 'BACKUP', flags: { fault: false, resigning: false, maintenance: true, switchingOver: false, holdsVip: false }, maintenanceGen: 1 }), B_ADDR), 50, aCfg).state, why: /wait until they agree/ },
    { name: 'already running', prepare: (s) => step(s, request({ requestId: 'r0' }), 50, aCfg).state, why: /switchover r0 is already running \(switching-over\)/ },
    // Issue 10: the peer's state file cannot be written; even --force would hand Redis to a
    // node that then refuses the role.
    { name: 'peer cannot take over', event: { force: true }, prepare: (s) => step(s, heard(bAdvert({ state: 'BACKUP', flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false, cannotTakeOver: true } }), B_ADDR), 50, aCfg).state, why: /peer b cannot take the master role now/ },
  ];
  for (const c of refusals) {
    it(`refuses, changing nothing: ${c.name}`, () => {
      const before = c.prepare(masterA());
      const r = step(before, request(c.event), c.now ?? 100, aCfg);
      expect(types(r.actions)).toEqual(['reply']);
      expect(find(r.actions, 'reply')).toMatchObject({ ok: false, data: { outcome: 'refused' } });
      expect(find(r.actions, 'reply')?.detail).toMatch(c.why);
      expect(r.state).toBe(before);
    });
  }

  it('--force accepts a lagging replica', () => {
    const s = step(masterA(), heard(bAdvert({ state: 'BACKUP', redis: { role: 'replica', replId: REPL_A, replId2: '', offset: -2_000_000, secondOffset: -1 } }), B_ADDR), 50, aCfg).state;
    const r = step(s, request({ force: true }), 100, aCfg);
    expect(find(r.actions, 'switchover-redis')?.force).toBe(true);
  });

  it('a request forwarded by the peer: refusal goes back as a message, a duplicate is ignored', () => {
    const silent = masterA();
    const refused = step(silent, request({ origin: 'peer', requestId: 'p1' }), 20_000, aCfg);
    expect(types(refused.actions)).toEqual(['send-message']);
    expect(find(refused.actions, 'send-message')?.message).toMatchObject({ kind: 'switchover-result', requestId: 'p1', ok: false });

    const started = step(masterA(), request({ origin: 'peer', requestId: 'p2' }), 100, aCfg);
    expect(find(started.actions, 'switchover-redis')).toBeDefined();
    const dup = step(started.state, request({ origin: 'peer', requestId: 'p2' }), 110, aCfg);
    expect(dup.actions).toEqual([]);
    const doneR = step(started.state, finished('done'), 150, aCfg);
    expect(find(doneR.actions, 'reply')).toBeUndefined();
    expect(find(doneR.actions, 'send-message')?.message).toMatchObject({ kind: 'handover', requestId: 'p2' });
  });
});

describe('switchover on the backup', () => {
  const bCfg = coreConfig();

  it('does not forward while this node could not take the role (its state file cannot be written)', () => {
    const s: CoreState = { ...backupB(), persistFailure: { detail: 'EROFS', sinceMs: 0, attempts: 2, heldTakeover: null } };
    const r = step(s, request(), 100, bCfg);
    expect(types(r.actions)).toEqual(['reply']);
    expect(find(r.actions, 'reply')?.detail).toMatch(/cannot take the master role: its state file cannot be written \(EROFS\)/);
    // And its adverts say so, for the master's own check.
    const t = step(s, { type: 'timer-fired', timer: 'advert' }, 200, bCfg);
    expect(find(t.actions, 'send-advert')?.advert.flags.cannotTakeOver).toBe(true);
  });

  it('forwards the request to the master twice and waits', () => {
    const r = step(backupB(), request(), 100, bCfg);
    expect(types(r.actions)).toEqual(['send-message', 'send-message']);
    expect(find(r.actions, 'send-message')?.message).toEqual({ kind: 'switchover-request', requestId: 'r1', timeoutMs: 5000, force: false, user: 'alice' });
    expect(r.state.switchover?.phase).toBe('forwarded');
    expect(r.state.timers.switchover).toBeGreaterThan(5100);
  });

  it('takes over on handover without catching up from the old master, and answers after promotion', () => {
    let s = handingOver(step(backupB(), request(), 100, bCfg).state, 150);
    const r = step(s, handover('r1', 7), 200, bCfg);
    expect(r.state.role).toBe('MASTER');
    expect(r.state.epoch).toBe(7);
    expect(find(r.actions, 'promote-redis')).toEqual({ type: 'promote-redis', catchUpFrom: null });
    expect(r.state.timers.switchover).toBeUndefined();
    s = r.state;
    const p = step(s, { type: 'promotion-finished', ok: true, detail: 'already master', redis: masterSnap() }, 210, bCfg);
    expect(types(p.actions)).toEqual(['claim-vip', 'send-advert', 'reply']);
    // Not yet "holds the VIP": the old master must not let go before the claim is done.
    expect(find(p.actions, 'send-advert')?.advert.flags.holdsVip).toBe(false);
    const claimed = step(p.state, { type: 'vip-claimed' }, 215, bCfg);
    expect(find(claimed.actions, 'send-advert')?.advert.flags.holdsVip).toBe(true);
    expect(find(p.actions, 'reply')).toMatchObject({ requestId: 'r1', ok: true });
    expect(p.state.switchover).toBeNull();
    const dup = step(p.state, handover('r1', 7), 220, bCfg);
    expect(dup.actions).toEqual([]);
  });

  it('re-announces the VIP when the old master lets go, and again after the ARP locktime', () => {
    let s = step(handingOver(backupB(), 150), handover('x', 2), 200, bCfg).state;
    s = step(s, { type: 'promotion-finished', ok: true, detail: 'ok', redis: masterSnap() }, 210, bCfg).state;
    s = step(s, { type: 'vip-claimed' }, 215, bCfg).state;
    const holding = { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: true };
    s = step(s, heard(advert({ state: 'BACKUP', epoch: 1, flags: holding })), 220, bCfg).state;
    const r = step(s, heard(advert({ state: 'BACKUP', epoch: 1, flags: { ...holding, holdsVip: false } })), 230, bCfg);
    expect(types(r.actions)).toContain('announce-vip');
    expect(r.state.timers['garp-refresh']).toBe(230 + ARP_LOCKTIME_MARGIN_MS);
  });

  it('a handover the master started (no local request) takes over without a reply', () => {
    const r = step(handingOver(backupB(), 150), handover('x', 2), 200, bCfg);
    expect(r.state.role).toBe('MASTER');
    const p = step(r.state, { type: 'promotion-finished', ok: true, detail: 'ok', redis: masterSnap() }, 210, bCfg);
    expect(find(p.actions, 'reply')).toBeUndefined();
    expect(find(p.actions, 'claim-vip')).toBeDefined();
  });

  it('ignores a handover from a peer not heard handing over, from another node, or for a switchover it already saw', () => {
    // Replayed handovers (a restart wiped the replay guard's memory) must not promote
    // without catch-up: the sender must be the live peer, now flagged as handing over.
    const notFlagged = step(backupB(), handover('x', 2), 200, bCfg);
    expect(notFlagged.state.role).toBe('BACKUP');
    expect(notFlagged.reason).toMatch(/not heard handing over/);
    const stranger = step(handingOver(backupB(), 150), handover('x', 2, 'c'), 200, bCfg);
    expect(stranger.state.role).toBe('BACKUP');
    expect(stranger.reason).toMatch(/c is not a live peer/);
    const silent = step(handingOver(backupB(), 150), handover('x', 2), 150 + 10_000, bCfg);
    expect(silent.reason).toMatch(/not a live peer/);
    // The ids are persisted: a node restarted with 'x' in its state file ignores it too.
    const restarted: CoreState = { ...handingOver(backupB(), 150), switchoverIds: ['x'] };
    const known = step(restarted, handover('x', 2), 200, bCfg);
    expect(known.state.role).toBe('BACKUP');
    expect(known.reason).toMatch(/already took part/);
    // Accepting one remembers its id in the state written before the promotion.
    const taken = step(handingOver(backupB(), 150), handover('y', 2), 200, bCfg);
    expect(taken.state.switchoverIds).toEqual(['y']);
    expect(find(taken.actions, 'persist-state')?.switchoverIds).toEqual(['y']);
  });

  it("does not demote its Redis while the master's advert says it is switching over", () => {
    let s = backupB();
    s = step(s, heard(advert({ state: 'MASTER', epoch: 1, flags: { fault: false, resigning: false, maintenance: false, switchingOver: true, holdsVip: false } })), 100, bCfg).state;
    const r = step(s, ok(masterSnap({ replId: 'c'.repeat(40), replId2: REPL_A, secondOffset: 1001 })), 150, bCfg);
    expect(find(r.actions, 'replicate-from')).toBeUndefined();
    expect(r.state.redisOp).toBeNull();
  });

  it("the master's refusal and a silent master are answered", () => {
    const s = step(backupB(), request(), 100, bCfg).state;
    const refused = step(s, { type: 'switchover-result-received', requestId: 'r1', ok: false, detail: 'refused: lagging' }, 150, bCfg);
    expect(find(refused.actions, 'reply')).toMatchObject({ ok: false });
    expect(find(refused.actions, 'reply')?.detail).toMatch(/a: refused: lagging/);
    const silent = step(s, fired('switchover'), s.timers.switchover!, bCfg);
    expect(find(silent.actions, 'reply')?.detail).toMatch(/no answer from the master/);
    expect(silent.state.role).toBe('BACKUP');
  });

  it('refuses when its replication link is down or it is not healthy', () => {
    const s = backupB();
    const down = step(s, ok(replicaSnap({ linkUp: false })), 50, bCfg).state;
    expect(find(step(down, request(), 100, bCfg).actions, 'reply')?.detail).toMatch(/replication link is down/);
  });

  it('a switchover requested on a FAULT node is refused', () => {
    const s: CoreState = { ...backupB(), role: 'FAULT' };
    expect(find(step(s, request(), 100, bCfg).actions, 'reply')?.detail).toMatch(/this node is FAULT/);
  });
});
