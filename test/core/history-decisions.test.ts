/**
 * Decisions that make one Redis resync from another look at both replication histories
 * first (src/core/history.ts; findings 7, 9, 10 of test/sim/findings.test.ts): a demotion
 * (`reconcileReplica`), INIT adopting its master Redis or contesting a live master.
 */
import { describe, expect, it } from 'vitest';
import { initialState, type CoreConfig, type CoreState } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import type { Advert, AdvertRedis, RedisSnapshot } from '../../src/core/types.js';
import { A_ADDR, B_ADDR, advert, coreConfig, fired, heard, last, masterSnap, ok, replicaSnap, run, types } from './fixtures.js';
import { QUORUM } from './quorum-fixtures.js';

const R1 = '1'.repeat(40);
const R2 = '2'.repeat(40);
const R3 = '3'.repeat(40);
const NONE = '0'.repeat(40);

/** b (priority 90) without a quorum, `prefer: availability` (the default). */
const bAvail = coreConfig();
/** b with `prefer: safety` and no quorum. */
const bSafe = coreConfig({ quorum: { backend: 'none', prefer: 'safety', retryMs: 1000, fenceLeadMs: 0 } });
/** b with etcd. */
const bEtcd = coreConfig({ quorum: QUORUM });

/** a's Redis in a's MASTER advert. */
const aRedis = (over: Partial<AdvertRedis> = {}): AdvertRedis => ({ role: 'master', replId: R1, replId2: NONE, offset: 5000, secondOffset: -1, ...over });
const masterA = (epoch: number, redis: AdvertRedis, over: Partial<Advert> = {}): Advert => advert({ state: 'MASTER', epoch, redis, ...over });

/** b's Redis promoted out of a's history at `fork` and written on to `offset`. */
const forked = (offset: number, fork = 4000): RedisSnapshot => masterSnap({ replId: R2, replId2: R1, offset, secondOffset: fork + 1 });

/** b BACKUP at `epoch`, its Redis `redis`, having heard nothing yet. */
function backupB(epoch: number, redis: RedisSnapshot, config: CoreConfig): CoreState {
  const s = last(run(config, [[0, { type: 'started' }], [10, ok(replicaSnap())]], initialState(0, { epoch, knownEpoch: epoch }))).state;
  expect(s.role).toBe('BACKUP');
  return { ...s, health: { ...s.health, redis } };
}

const demotions = (r: { actions: readonly { type: string }[] }): number => r.actions.filter((a) => a.type === 'replicate-from').length;
const audits = (r: { actions: readonly { type: string; event?: string }[] }): string[] => r.actions.flatMap((a) => (a.type === 'audit' ? [a.event!] : []));

describe('reconcileReplica: no demotion onto an older point of our own history', () => {
  it('the master\'s history holds ours: the local master Redis follows it', () => {
    const s = backupB(1, forked(4500), bSafe);
    const r = step(s, heard(masterA(2, aRedis({ replId: R3, replId2: R2, offset: 4800, secondOffset: 4601 }))), 100, bSafe);
    expect(demotions(r)).toBe(1);
    expect(r.state.redisDiverged).toBeNull();
  });

  it('the master\'s Redis is an older point of ours (finding 10): a backup takes the role over as it is, in every mode without a quorum', () => {
    for (const config of [bAvail, bSafe]) {
      // a's Redis stopped at b's fork (4000): b holds all of it and 500 bytes more.
      const r = step(backupB(1, forked(4500), config), heard(masterA(2, aRedis({ offset: 4000 }))), 100, config);
      expect(demotions(r)).toBe(0);
      expect(r.state).toMatchObject({ role: 'MASTER', epoch: 3, redisOp: null });
      expect(r.reason).toMatch(/contesting a: .*a's Redis \w+@4000 is an older point of the local \w+@4500 .*which holds all of it and 500 bytes written since/);
      expect(types(r.actions)).toContain('claim-vip');
    }
  });

  it('a Redis promoted out of the master\'s history that wrote nothing of its own follows it (an advert\'s stale offset is no reason to contest)', () => {
    const r = step(backupB(1, forked(4000), bAvail), heard(masterA(2, aRedis({ offset: 3800 }))), 100, bAvail);
    expect(demotions(r)).toBe(1);
    expect(r.state.role).toBe('BACKUP');
  });

  it('with etcd (the master holds the key) the Redis is kept as it is: redis-diverged audited once, said in the state', () => {
    const s = backupB(1, forked(4500), bEtcd);
    const r = step(s, heard(masterA(2, aRedis({ offset: 4000 }))), 100, bEtcd);
    expect(demotions(r)).toBe(0);
    expect(r.state.role).toBe('BACKUP');
    expect(audits(r)).toContain('redis-diverged');
    expect(r.state.redisDiverged).toMatchObject({ peer: 'a', sinceMs: 100 });
    expect(r.state.redisDiverged?.detail).toMatch(/older point of the local .*not following it/);
    // Looked at again at every health check, audited only once.
    const again = step(r.state, ok(forked(4500)), 600, bEtcd);
    expect(demotions(again)).toBe(0);
    expect(audits(again)).not.toContain('redis-diverged');
    expect(again.state.redisDiverged?.sinceMs).toBe(100);
    // Once the master's history holds ours, the Redis follows it and the divergence ends.
    const caught = step(again.state, heard(masterA(2, aRedis({ replId: R3, replId2: R2, offset: 4700, secondOffset: 4501 }))), 1100, bEtcd);
    expect(demotions(caught)).toBe(1);
    expect(caught.state.redisDiverged).toBeNull();
    expect(audits(caught)).toContain('redis-demote');
  });

  it('FAULT keeps it (no takeover from FAULT), so does the step that enters BACKUP; the next check takes over', () => {
    const s0 = backupB(1, forked(4500), bAvail);
    const heardA = step(s0, heard(masterA(2, aRedis({ offset: 4000 }))), 50, bAvail).state;
    const fault: CoreState = { ...s0, peer: heardA.peer, role: 'FAULT', health: { ...s0.health, healthy: false, consecutiveOk: 0, consecutiveFail: 2 } };
    const inFault = step(fault, ok(forked(4500)), 100, bAvail);
    expect(inFault.state.role).toBe('FAULT');
    expect(demotions(inFault)).toBe(0);
    expect(inFault.state.redisDiverged).not.toBeNull();
    const entered = step(inFault.state, ok(forked(4500)), 600, bAvail);
    expect(entered.state.role).toBe('BACKUP');
    expect(demotions(entered)).toBe(0);
    const next = step(entered.state, ok(forked(4500)), 1100, bAvail);
    expect(next.state.role).toBe('MASTER');
    expect(next.reason).toMatch(/contesting a/);
    expect(next.state.redisDiverged).toBeNull();
  });

  it('diverged histories (both wrote past the fork): the split brain\'s loser gives way, the discarded bytes audited', () => {
    for (const config of [bAvail, bSafe, bEtcd]) {
      const r = step(backupB(1, forked(4500), config), heard(masterA(2, aRedis({ offset: 5000 }))), 100, config);
      expect(demotions(r)).toBe(1);
      const demote = r.actions.find((a) => a.type === 'audit' && a.event === 'redis-demote');
      expect(demote?.type === 'audit' && demote.data['discardedBytes']).toBe(500);
    }
  });

  it('the old master\'s tail (the master forked from our history after we stopped): the failover\'s loss, audited', () => {
    const r = step(backupB(1, masterSnap({ replId: R1, offset: 5100 }), bEtcd), heard(masterA(2, aRedis({ replId: R2, replId2: R1, offset: 6000, secondOffset: 5001 }))), 100, bEtcd);
    expect(demotions(r)).toBe(1);
  });

  it('unlinked ids (a Redis restarted as a master under a backup): the master is followed', () => {
    const r = step(backupB(1, masterSnap({ replId: R3, offset: 900 }), bSafe), heard(masterA(0, aRedis())), 100, bSafe);
    expect(demotions(r)).toBe(1);
  });
});

describe('reconcileReplica: a master still taking over is left to its catch-up (finding 7)', () => {
  const taking = { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false, takingOver: true };

  it('its advert says takingOver while it promotes: our Redis is left as it is, then followed once it is done', () => {
    const s = backupB(1, masterSnap({ replId: R1, offset: 4000 }), bAvail);
    const r = step(s, heard(masterA(2, aRedis({ offset: 3000 }), { flags: taking })), 100, bAvail);
    expect(demotions(r)).toBe(0);
    expect(r.reason).toMatch(/a is still taking over .*Redis left as it is/);
    const promoted = aRedis({ replId: R2, replId2: R1, offset: 4000, secondOffset: 4001 });
    const after = step(r.state, heard(masterA(2, promoted)), 200, bAvail);
    expect(demotions(after)).toBe(1);
  });

  it('a node taking over says so in its adverts until its promotion has finished', () => {
    const a = coreConfig({ nodeName: 'a', nodeAddress: A_ADDR, priority: 100, peerRedis: { host: B_ADDR, port: 6379 } });
    const backup = last(run(a, [[0, { type: 'started' }], [10, ok(replicaSnap({ masterHost: B_ADDR }))],
      [20, heard(advert({ nodeName: 'b', state: 'MASTER', priority: 90, epoch: 1 }), B_ADDR)]])).state;
    const taking = step(backup, fired('master-down'), 5000, a);
    expect(taking.state).toMatchObject({ role: 'MASTER', redisOp: 'promoting' });
    const sent = taking.actions.find((x) => x.type === 'send-advert');
    expect(sent?.type === 'send-advert' && sent.advert.flags.takingOver).toBe(true);
    const done = step(taking.state, { type: 'promotion-finished', ok: true, detail: 'caught up', redis: masterSnap() }, 5100, a);
    const after = done.actions.find((x) => x.type === 'send-advert');
    expect(after?.type === 'send-advert' && after.advert.flags.takingOver).toBe(false);
  });
});

describe('INIT', () => {
  const a = coreConfig({ nodeName: 'a', nodeAddress: A_ADDR, priority: 100, peerRedis: { host: B_ADDR, port: 6379 } });
  /** a INIT at epoch `epoch` with its Redis `redis`, hearing `peer` before the listen window ends. */
  function init(epoch: number, redis: RedisSnapshot, peer: Advert): ReturnType<typeof step> {
    const s = last(run(a, [[0, { type: 'started' }], [10, ok(redis)]], initialState(0, { epoch, knownEpoch: epoch }))).state;
    return step(s, heard(peer, B_ADDR), 20, a);
  }
  const bMaster = (epoch: number, redis: AdvertRedis): Advert => advert({ nodeName: 'b', priority: 90, state: 'MASTER', epoch, redis });

  it('does not contest a live master of its own epoch by priority alone (finding 9): it goes BACKUP', () => {
    const r = init(0, masterSnap({ replId: R1, offset: 0 }), bMaster(0, aRedis({ replId: R3, offset: 2200 })));
    expect(r.state.role).toBe('BACKUP');
    expect(r.reason).toMatch(/not contesting peer master b: it serves in epoch 0, not older than this node's \(0\)/);
    expect(types(r.actions)).not.toContain('claim-vip');
  });

  it('contests a live master of an older epoch whose Redis holds nothing ours lacks', () => {
    const r = init(3, masterSnap({ replId: R2, replId2: R1, offset: 5000, secondOffset: 4001 }), bMaster(2, aRedis({ offset: 4000 })));
    expect(r.state.role).toBe('MASTER');
    expect(r.reason).toMatch(/outranks peer master b/);
  });

  it('does not contest a live master of an older epoch whose Redis holds writes ours lacks', () => {
    const r = init(3, masterSnap({ replId: R1, offset: 4000 }), bMaster(2, aRedis({ replId: R2, replId2: R1, offset: 4600, secondOffset: 4001 })));
    expect(r.state.role).toBe('BACKUP');
    expect(r.reason).toMatch(/holds 600 bytes the local .* lacks/);
  });

  it('does not adopt over a FAULT peer of a newer epoch whose history ours does not hold (finding 10)', () => {
    const bFault = advert({ nodeName: 'b', priority: 90, state: 'FAULT', epoch: 1,
      flags: { fault: true, resigning: false, maintenance: false, switchingOver: false, holdsVip: false },
      redis: { role: 'unknown', replId: R2, replId2: R1, offset: 4700, secondOffset: 4601 } });
    const r = init(0, masterSnap({ replId: R1, offset: 4600 }), bFault);
    expect(r.state.role).toBe('BACKUP');
    expect(r.reason).toMatch(/not adopting: peer b \(FAULT fault, Redis unknown\) was master in a newer epoch \(1 > 0\)/);
    // As BACKUP it still takes over from a peer that stays FAULT: a new epoch, no catch-up.
    const taken = step(r.state, heard(bFault, B_ADDR), 1000, a);
    expect(taken.state).toMatchObject({ role: 'MASTER', epoch: 2 });
  });

  it('adopts over a FAULT peer of a newer epoch whose history ours holds', () => {
    const bFault = advert({ nodeName: 'b', priority: 90, state: 'FAULT', epoch: 1,
      flags: { fault: true, resigning: false, maintenance: false, switchingOver: false, holdsVip: false },
      redis: { role: 'unknown', replId: R1, replId2: NONE, offset: 4000, secondOffset: -1 } });
    const r = init(0, masterSnap({ replId: R1, offset: 4600 }), bFault);
    expect(r.state.role).toBe('MASTER');
    expect(r.reason).toMatch(/adopted: local Redis is master, peer b is FAULT/);
  });
});
