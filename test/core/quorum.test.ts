/**
 * The quorum in the decision core (backend etcd): a node becomes MASTER only while it
 * holds the leader key; a master fences its Redis and steps down before its lease can
 * lapse, unless it still hears its peer (failsafe); a key nobody wants goes back.
 * Table-style, time is the `now` argument, no mocks.
 */
import { describe, expect, it } from 'vitest';
import type { CoreConfig, CoreState } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import type { Action, Event } from '../../src/core/types.js';
import { A_ADDR, REPL_A, REPL_B, advert, bAdvert, coreConfig, fired, find, heard, last, masterSnap, ok, replicaSnap, run, types } from './fixtures.js';
import { QUORUM, aCfg, answered, askingB, backupB, bCfg, held, heldByOther, masterB, relaxMarked } from './quorum-fixtures.js';

const unreachable: Event = answered(2, { outcome: 'unreachable', detail: 'deadline exceeded' });
const audits = (actions: readonly Action[]): string[] =>
  actions.flatMap((a) => (a.type === 'audit' ? [a.event] : []));

describe('a backup promotes only while it holds the leader key', () => {
  it('master-down: asks etcd for the key in the new epoch and stays BACKUP, telling the peer it is taking over', () => {
    const r = askingB();
    expect(r.state.role).toBe('BACKUP');
    expect(find(r.actions, 'acquire-quorum')).toEqual({ type: 'acquire-quorum', epoch: 2 });
    expect(find(r.actions, 'promote-redis')).toBeUndefined();
    expect(audits(r.actions)).toContain('quorum-key-wanted');
    expect(find(r.actions, 'send-advert')?.advert.flags.takingOver).toBe(true);
    expect(r.state.quorum.wanted).toMatchObject({ kind: 'takeover', epoch: 2, afterSilence: true });
    expect(r.reason).toMatch(/not master until this node holds the leader key/);
  });

  it('the takingOver advert goes out ahead of the ask, which may wait for etcd (a master in failsafe fences on it)', () => {
    const t = types(askingB().actions);
    expect(t.indexOf('send-advert')).toBeGreaterThanOrEqual(0);
    expect(t.indexOf('send-advert')).toBeLessThan(t.indexOf('acquire-quorum'));
  });

  it('held by another node (the old master\'s lease has not ended): stays BACKUP and asks again after retryMs', () => {
    const r = step(askingB().state, heldByOther, 5010, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.state.timers['quorum-retry']).toBe(5010 + QUORUM.retryMs);
    expect(audits(r.actions)).toEqual(['quorum-held-by-other']);
    expect(r.reason).toMatch(/held by a \(epoch 1\)/);
    const again = step(r.state, fired('quorum-retry'), 5510, bCfg);
    expect(find(again.actions, 'acquire-quorum')).toEqual({ type: 'acquire-quorum', epoch: 2 });
    // The same answer again is not audited again.
    expect(audits(step(again.state, heldByOther, 5520, bCfg).actions)).toEqual([]);
  });

  it('etcd unreachable: no promotion without etcd', () => {
    const r = step(askingB().state, unreachable, 5010, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(types(r.actions)).toEqual([]);
    expect(r.reason).toMatch(/no promotion without etcd/);
    expect(audits(r.actions)).toEqual(['quorum-unreachable']);
  });

  it('key granted after etcd named the old master: the takeover goes ahead in that epoch; the new master lifts the fence before it claims the VIP', () => {
    const refused = step(askingB().state, heldByOther, 5005, bCfg).state;
    expect(refused.quorum.wanted?.sawPeerHold).toBe(true);
    const promoting = step(refused, held(2, 8000), 5010, bCfg);
    expect(promoting.state).toMatchObject({ role: 'MASTER', epoch: 2, redisOp: 'promoting' });
    expect(promoting.state.quorum.wanted).toBeNull();
    expect(types(promoting.actions)).toEqual(['persist-state', 'send-advert', 'promote-redis']);
    // Still taking over until the promotion has finished (the peer leaves its Redis to the catch-up).
    expect(find(promoting.actions, 'send-advert')?.advert.flags.takingOver).toBe(true);
    // The fence deadline: lease deadline less the fence lead.
    expect(promoting.state.timers['quorum-fence']).toBe(8000 - QUORUM.fenceLeadMs);
    const promoted = step(promoting.state, { type: 'promotion-finished', ok: true, detail: 'promoted', redis: masterSnap() }, 5100, bCfg);
    // etcd records the master that serves, with its Redis's replication id; with no replica
    // yet, the fence is with-replica until etcd holds this master's relaxed mark.
    expect(types(promoted.actions)).toEqual(['mark-quorum', 'mark-quorum', 'fence-redis', 'claim-vip', 'send-advert']);
    expect(promoted.actions.filter((a) => a.type === 'mark-quorum')).toEqual([
      { type: 'mark-quorum', mark: { kind: 'served', epoch: 2, replId: REPL_B } },
      { type: 'mark-quorum', mark: { kind: 'relax', epoch: 2 } },
    ]);
    expect(find(promoted.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'with-replica' });
    const marked = step(promoted.state, relaxMarked(2), 5110, bCfg);
    expect(find(marked.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'accepted' });
  });

  it('a key free at once (the master may have lost etcd and serve without it): the backup waits until such a master has fenced', () => {
    const slowFence: CoreConfig = { ...bCfg, quorum: { ...QUORUM, fenceLeadMs: 3000 } };
    const asked = step(backupB(), fired('master-down'), 3700, slowFence).state;
    // a last heard as MASTER at 20 ms: it fences after its silence (1000 + 2 × 1000 + 3000
    // → 6020 ms) or once it hears b taking over (3700 + 1000 + 3000 → 7700 ms): the later.
    const r = step(asked, held(2, 20_000), 3710, slowFence);
    expect(r.state.role).toBe('BACKUP');
    expect(r.state.timers['quorum-retry']).toBe(7700);
    expect(r.reason).toMatch(/waiting 3990 ms more/);
    const later = step(r.state, fired('quorum-retry'), 7700, slowFence);
    expect(later.state).toMatchObject({ role: 'MASTER', redisOp: 'promoting', epoch: 2 });
  });

  it('no failsafe grace when the peer was never heard as master (it cannot serve without a lease)', () => {
    const b = last(run(bCfg, [[0, { type: 'started' }], [10, ok(replicaSnap())], [20, heard(advert({ state: 'BACKUP', epoch: 1 }))]])).state;
    const asked = step(b, fired('master-down'), 5000, bCfg).state;
    expect(step(asked, held(2, 9000), 5010, bCfg).state.role).toBe('MASTER');
  });

  it('the master is heard again while the backup waits: the wish is dropped and a key it got goes back', () => {
    const granted = step(askingB().state, { ...held(2, 8000) }, 5010, { ...bCfg, quorum: { ...QUORUM, fenceLeadMs: 9000 } }).state;
    expect(granted.role).toBe('BACKUP');
    expect(granted.quorum.held).not.toBeNull();
    const r = step(granted, heard(advert({ state: 'MASTER', epoch: 1 })), 5020, bCfg);
    expect(r.state.quorum).toMatchObject({ wanted: null, held: null });
    expect(find(r.actions, 'release-quorum')).toBeDefined();
    expect(audits(r.actions)).toContain('quorum-key-not-wanted');
  });

  it('a key granted to a node that no longer wants it is released at once', () => {
    const asked = askingB().state;
    const heardAgain = step(asked, heard(advert({ state: 'MASTER', epoch: 1 })), 5005, bCfg).state;
    expect(heardAgain.quorum.wanted).toBeNull();
    const r = step(heardAgain, held(2, 8000), 5010, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(types(r.actions)).toEqual(['release-quorum']);
  });

  it('INIT adopts a master Redis only with the key, in its persisted epoch', () => {
    const init = last(run(aCfg, [
      [0, { type: 'started' }],
      [10, ok(masterSnap())],
      [4000, fired('init-listen')],
    ]), );
    expect(init.state.role).toBe('INIT');
    expect(find(init.actions, 'acquire-quorum')).toEqual({ type: 'acquire-quorum', epoch: 0 });
    const r = step(init.state, held(0, 7000), 4010, aCfg);
    expect(r.state.role).toBe('MASTER');
    // No replica: the fence is eased only once etcd holds the relaxed mark (with-replica until then).
    expect(types(r.actions)).toEqual(['send-advert', 'mark-quorum', 'fence-redis', 'claim-vip']);
    expect(find(r.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'with-replica' });
    expect(find(step(r.state, relaxMarked(0), 4020, aCfg).actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'accepted' });
  });

  it('without a quorum nothing changes: the takeover promotes at once', () => {
    const r = step(last(run(coreConfig(), [[0, { type: 'started' }], [10, ok(replicaSnap())], [20, heard(advert({ state: 'MASTER', epoch: 1 }))]])).state,
      fired('master-down'), 5000, coreConfig());
    expect(r.state.role).toBe('MASTER');
    expect(types(r.actions)).not.toContain('acquire-quorum');
  });
});

describe('the master fences itself before its lease can lapse', () => {
  it('repairs a missing VIP only while its lease is current: not when out of a freeze longer than the lease', () => {
    const m = masterB();
    // Held until 8000 ms, fence lead 530 ms: current at 6000, gone at 9000 (the kernel took the VIP with its lifetime).
    expect(types(step(m, { type: 'vip-observed', present: false }, 6000, bCfg).actions)).toEqual(['claim-vip']);
    const late = step(m, { type: 'vip-observed', present: false }, 9000, bCfg);
    expect(types(late.actions)).toEqual([]);
    expect(late.reason).toMatch(/whose lease is not current: not re-adding it/);
    // In the failsafe (etcd away, the peer heard) the master keeps serving, VIP included.
    const failsafe: CoreState = { ...m, quorum: { ...m.quorum, failsafeSinceMs: 8500 } };
    expect(types(step(failsafe, { type: 'vip-observed', present: false }, 9000, bCfg).actions)).toEqual(['claim-vip']);
  });

  it('renewals move the fence deadline', () => {
    const s = masterB();
    expect(s.timers['quorum-fence']).toBe(8000 - QUORUM.fenceLeadMs);
    const r = step(s, { type: 'quorum-renewed', validUntilAtMs: 9000 }, 6000, bCfg);
    expect(r.state.timers['quorum-fence']).toBe(9000 - QUORUM.fenceLeadMs);
    expect(r.actions).toEqual([]);
  });

  it('deadline reached, peer silent: Redis refuses writes, then the VIP goes, then (fence confirmed) the key', () => {
    const s = masterB();
    const r = step(s, fired('quorum-fence'), 7470, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(types(r.actions).slice(0, 2)).toEqual(['fence-redis', 'release-vip']);
    expect(find(r.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'refused' });
    expect(audits(r.actions)).toContain('quorum-fenced');
    expect(r.state.timers['quorum-fence']).toBeUndefined();
    const fenced = step(r.state, { type: 'fence-applied', writes: 'refused', ok: true, detail: 'min-replicas-to-write 1000000' }, 7480, bCfg);
    expect(types(fenced.actions)).toEqual(['release-quorum']);
    expect(fenced.state.quorum.held).toBeNull();
  });

  it('a fence that did not take keeps the key (it lapses with the lease instead of being handed over early)', () => {
    const down = step(masterB(), fired('quorum-fence'), 7470, bCfg).state;
    const r = step(down, { type: 'fence-applied', writes: 'refused', ok: false, detail: 'timeout' }, 7480, bCfg);
    expect(types(r.actions)).toEqual([]);
    expect(r.state.quorum.fence).toMatchObject({ writes: 'refused', ok: false });
  });

  it('deadline reached while the peer is heard and not taking over: failsafe, serving on and asking for the key', () => {
    const s = step(masterB(), heard(advert({ state: 'BACKUP', epoch: 1 })), 7000, bCfg).state;
    const r = step(s, fired('quorum-fence'), 7470, bCfg);
    expect(r.state.role).toBe('MASTER');
    expect(r.state.quorum.failsafeSinceMs).toBe(7470);
    expect(find(r.actions, 'acquire-quorum')).toEqual({ type: 'acquire-quorum', epoch: 2 });
    expect(audits(r.actions)).toEqual(['quorum-failsafe']);
    // Now the deadline is the peer's silence: 2 advert intervals after it was last heard.
    expect(r.state.timers['quorum-fence']).toBe(7000 + 2000);

    const restored = step(r.state, held(2, 12_000), 7500, bCfg);
    expect(restored.state.quorum.failsafeSinceMs).toBeNull();
    expect(audits(restored.actions)).toEqual(['quorum-restored']);
    expect(restored.state.timers['quorum-fence']).toBe(12_000 - QUORUM.fenceLeadMs);
  });

  it('failsafe ends in a fence when the peer falls silent, or says it is taking over, or etcd names another holder', () => {
    const s = step(masterB(), heard(advert({ state: 'BACKUP', epoch: 1 })), 7000, bCfg).state;
    const failsafe = step(s, fired('quorum-fence'), 7470, bCfg).state;

    const silent = step(failsafe, fired('quorum-fence'), 9000, bCfg);
    expect(silent.state.role).toBe('BACKUP');
    expect(silent.reason).toMatch(/peer is silent/);

    const taking = step(failsafe, heard(advert({ state: 'BACKUP', epoch: 1, flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false, takingOver: true } })), 7600, bCfg);
    expect(taking.state.role).toBe('BACKUP');
    expect(find(taking.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'refused' });

    const other = step(failsafe, answered(2, { outcome: 'held-by-other', holder: { node: 'a', epoch: 3 }, detail: 'held by a' }), 7600, bCfg);
    expect(other.state.role).toBe('BACKUP');
  });

  it('failsafe ends when the peer is heard as MASTER (with the quorum it holds the key)', () => {
    const s = step(masterB(), heard(advert({ state: 'BACKUP', epoch: 1 })), 7000, bCfg).state;
    const failsafe = step(s, fired('quorum-fence'), 7470, bCfg).state;
    expect(failsafe.quorum.failsafeSinceMs).toBe(7470);
    const r = step(failsafe, heard(advert({ state: 'MASTER', epoch: 3 })), 7600, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(find(r.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'refused' });
  });

  it('maintenance turned on while a takeover waits for the key: the key granted later does not promote, and goes back', () => {
    const refused = step(askingB().state, heldByOther, 5005, bCfg).state;
    const frozen = { ...refused, maintenance: { on: true, gen: 1 } };
    const r = step(frozen, held(2, 9000), 5010, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(types(r.actions)).toContain('release-quorum');
    expect(r.state.quorum.wanted).toBeNull();
  });

  it('key taken by another node: no failsafe, even with the peer heard', () => {
    const s = step(masterB(), heard(advert({ state: 'BACKUP', epoch: 1 })), 7000, bCfg).state;
    const r = step(s, { type: 'quorum-lost', reason: 'key-taken', detail: 'bound to another lease' }, 7010, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(audits(r.actions)).toEqual(expect.arrayContaining(['quorum-lost', 'quorum-fenced']));
  });

  it('a stopping master fences and releases the VIP; the key waits for the fence, and the daemon exits after it', () => {
    const r = step(masterB(), { type: 'shutdown-requested' }, 6000, bCfg);
    expect(types(r.actions)).toEqual(['fence-redis', 'release-vip', 'send-advert', 'send-advert']);
    expect(find(r.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'refused' });
    expect(r.state.quorum.held).not.toBeNull();
    expect(r.reason).toMatch(/exiting once the fence has ended/);
  });

  // The fence's outcome decides whether the key is released (review S3): only a Redis
  // that cannot take writes lets it go; otherwise it lapses with the lease.
  const stopping = (): CoreState => step(masterB(), { type: 'shutdown-requested' }, 6000, bCfg).state;
  it.each<[string, () => CoreState, Event, string[], string[], RegExp]>([
    ['the fence confirmed', stopping, { type: 'fence-applied', writes: 'refused', ok: true, detail: 'min-replicas-to-write 1000000' },
      ['release-quorum', 'exit'], ['redis-fence'], /Redis refuses writes: leader key released; stopping/],
    ['the fence failed, Redis up', stopping, { type: 'fence-applied', writes: 'refused', ok: false, detail: 'timeout' },
      ['exit'], ['redis-fence', 'quorum-key-kept'], /fence not applied \(timeout\): the leader key is not released but lapses with its lease/],
    ['the fence failed, Redis refusing connections', () => ({ ...stopping(), health: { ...stopping().health, down: true } }),
      { type: 'fence-applied', writes: 'refused', ok: false, detail: 'connection refused' },
      ['release-quorum', 'exit'], ['redis-fence'], /Redis is down \(connection refused\): leader key released/],
    ['the fence threw', stopping, { type: 'effect-failed', action: 'fence-redis', detail: 'EPIPE', skipped: [] },
      ['exit'], ['effect-failed', 'redis-fence', 'quorum-key-kept'], /fence not applied/],
  ])('a stopping master\'s fence ended (%s): the key and the exit follow it', (_name, state, event, actions, records, reason) => {
    const r = step(state(), event, 6100, bCfg);
    expect(types(r.actions)).toEqual(actions);
    expect(audits(r.actions)).toEqual(records);
    expect(r.state.quorum.held === null).toBe(actions.includes('release-quorum'));
    expect(r.reason).toMatch(reason);
  });

  it('a stopping node that is not master releases a key it holds at once only if its Redis cannot take writes', () => {
    // b got the key for a takeover, its Redis still a replica: nothing to fence.
    const granted = step(askingB().state, held(2, 9000), 5010, { ...bCfg, quorum: { ...QUORUM, fenceLeadMs: 3000 } }).state;
    expect(granted.role).toBe('BACKUP');
    expect(granted.quorum.held).not.toBeNull();
    const replica = step(granted, { type: 'shutdown-requested' }, 5100, bCfg);
    expect(types(replica.actions)).toEqual(['release-quorum', 'send-advert', 'send-advert', 'exit']);
    // Its Redis a master it did not fence: the key is kept to lapse.
    const master = step({ ...granted, health: { ...granted.health, redis: masterSnap() } }, { type: 'shutdown-requested' }, 5100, bCfg);
    expect(types(master.actions)).toEqual(['send-advert', 'send-advert', 'exit']);
    expect(audits(master.actions)).toContain('quorum-key-kept');
  });

  it('a master stepping down for another reason (outranked) fences first, and the key follows the fence', () => {
    const r = step(masterB(), heard(bAdvert({ nodeName: 'a', priority: 100, state: 'MASTER', epoch: 5, redis: { role: 'master', replId: 'c'.repeat(40), replId2: '', offset: 9, secondOffset: -1 } })), 6000, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(types(r.actions).indexOf('fence-redis')).toBeLessThan(types(r.actions).indexOf('release-vip'));
  });

  it('a serving master keeps Redis fenced on its replica while it has one, so losing it stops writes without the daemon', () => {
    const s = masterB();
    const withReplica = step(s, ok(masterSnap({ connectedReplicas: 1 })), 5600, bCfg);
    expect(find(withReplica.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'with-replica' });
    // Asked once: the next check does not ask again while it is applied.
    expect(find(step(withReplica.state, ok(masterSnap({ connectedReplicas: 1 })), 6100, bCfg).actions, 'fence-redis')).toBeUndefined();
    const applied = step(withReplica.state, { type: 'fence-applied', writes: 'with-replica', ok: true, detail: 'min-replicas-to-write 1' }, 5610, bCfg).state;
    // The replica acknowledges: the relaxed mark of the takeover goes.
    const again = step(applied, ok(masterSnap({ connectedReplicas: 1 })), 5700, bCfg);
    expect(find(again.actions, 'mark-quorum')).toEqual({ type: 'mark-quorum', mark: { kind: 'clear', holder: { node: 'b', epoch: 2 } } });
    const cleared = step(again.state, { type: 'quorum-marked', mark: { kind: 'clear', holder: { node: 'b', epoch: 2 } }, ok: true, detail: 'deleted' }, 5710, bCfg).state;
    expect(cleared.quorum.relaxMark).toBeNull();
    // The replica is gone and this node holds the lease: writes go on without it, once
    // etcd names this master in the relaxed mark.
    const marking = step(cleared, ok(masterSnap({ connectedReplicas: 0 })), 6100, bCfg);
    expect(find(marking.actions, 'fence-redis')).toBeUndefined();
    expect(find(marking.actions, 'mark-quorum')).toEqual({ type: 'mark-quorum', mark: { kind: 'relax', epoch: 2 } });
    const alone = step(marking.state, relaxMarked(2), 6105, bCfg);
    expect(find(alone.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'accepted' });
    // A replica still connected but no longer acknowledging (a cut stalls TCP) counts as gone.
    const stalled = step(applied, ok(masterSnap({ connectedReplicas: 1, goodReplicas: 0 })), 6100, bCfg);
    expect(find(stalled.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'accepted' });
    // A mark etcd refused keeps the fence as it is; the next check asks again.
    const refused = step(marking.state, relaxMarked(2, false), 6105, bCfg);
    expect(find(refused.actions, 'fence-redis')).toBeUndefined();
    expect(refused.state.quorum.relaxMark).toEqual({ epoch: 2, state: 'refused', refusals: 1 });
    expect(audits(refused.actions)).toEqual(['quorum-relax-refused']);
    const retried = step(refused.state, ok(masterSnap({ connectedReplicas: 0 })), 6600, bCfg);
    expect(find(retried.actions, 'mark-quorum')).toBeDefined();
    // Refused again (etcd still away): audited once per run of refusals.
    const twice = step(retried.state, relaxMarked(2, false), 6605, bCfg);
    expect(audits(twice.actions)).toEqual([]);
    expect(twice.state.quorum.relaxMark?.refusals).toBe(2);
    // A fence that failed is asked again at the next check.
    const failed = step(alone.state, { type: 'fence-applied', writes: 'accepted', ok: false, detail: 'timeout' }, 6110, bCfg).state;
    expect(find(step(failed, ok(masterSnap({ connectedReplicas: 0 })), 6600, bCfg).actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'accepted' });
  });
});

describe('a planned switchover with the quorum', () => {
  const request = (force: boolean): Event => ({ type: 'switchover-requested', requestId: 'sw1', timeoutMs: 5000, force, user: 'op', origin: 'local' });
  /** b master holding the key until 8000 ms, a heard as a live BACKUP replicating it at `at`. */
  const withBackup = (at: number): CoreState => step(masterB(), heard(advert({ state: 'BACKUP', epoch: 1 })), at, bCfg).state;
  /** The same, serving without its lease since 7470 ms (failsafe: etcd unreachable), a heard at 7500. */
  const failsafe = (): CoreState => step(step(withBackup(7000), fired('quorum-fence'), 7470, bCfg).state, heard(advert({ state: 'BACKUP', epoch: 1 })), 7500, bCfg).state;

  it.each<[string, () => CoreState, number, boolean, RegExp | null]>([
    ['holding the key', () => withBackup(6000), 6010, false, null],
    ['in failsafe (etcd unreachable)', failsafe, 7600, false, /^refused: etcd unreachable: this master serves without its lease \(failsafe\), and the new master could not take the leader key$/],
    ['in failsafe, even forced', failsafe, 7600, true, /^refused: etcd unreachable: this master serves without its lease/],
    ['with its lease inside the fence lead', () => withBackup(7400), 7480, false, /^refused: this master does not hold the leader key now/],
  ])('%s', (_name, state, at, force, refusal) => {
    const r = step(state(), request(force), at, bCfg);
    if (refusal === null) {
      expect(find(r.actions, 'switchover-redis')).toBeDefined();
      expect(r.state.switchover?.phase).toBe('switching-over');
      return;
    }
    // Refused up front: Redis is not handed to a node that could not take the key.
    expect(r.state.role).toBe('MASTER');
    expect(find(r.actions, 'switchover-redis')).toBeUndefined();
    expect(r.state.switchover).toBeNull();
    const reply = find(r.actions, 'reply');
    expect(reply?.ok).toBe(false);
    expect(reply?.detail).toMatch(refusal);
  });
});

describe('a switchover\'s target cannot take writes before it holds the key (finding Q8)', () => {
  it.each<[string, CoreConfig, boolean]>([
    ['with etcd', bCfg, true],
    ['without a quorum', coreConfig(), false],
  ])('%s: the master asks for the target to be fenced before the Redis handover: %s', (_name, cfg, fenced) => {
    const s = step(masterB(), heard(advert({ state: 'BACKUP', epoch: 1 })), 6000, bCfg).state;
    const r = step(s, { type: 'switchover-requested', requestId: 'sw1', timeoutMs: 5000, force: false, user: 'op', origin: 'local' }, 6010, cfg);
    expect(find(r.actions, 'switchover-redis')?.fenceTarget).toBe(fenced ? true : undefined);
  });

  it('a target that could not take the key ends its part once the old master serves again, and follows it', () => {
    const HANDING_OVER = { fault: false, resigning: false, maintenance: false, switchingOver: true, holdsVip: true };
    const handing = step(backupB(), heard(advert({ state: 'MASTER', epoch: 1, flags: HANDING_OVER })), 100, bCfg).state;
    // a's FAILOVER made b's Redis the master; a is BACKUP and hands over in epoch 2.
    const promoted = step(handing, ok(masterSnap({ replId: REPL_A })), 150, bCfg).state;
    const stepped = step(promoted, heard(advert({ state: 'BACKUP', epoch: 1, flags: HANDING_OVER })), 160, bCfg).state;
    const taking = step(stepped, { type: 'handover-received', requestId: 'sw1', epoch: 2, force: false, from: 'a' }, 170, bCfg);
    expect(taking.state.role).toBe('BACKUP');
    expect(taking.state.switchover?.phase).toBe('taking-over');
    expect(find(taking.actions, 'acquire-quorum')).toEqual({ type: 'acquire-quorum', epoch: 2 });
    const away = step(taking.state, answered(2, { outcome: 'unreachable', detail: 'deadline exceeded' }), 700, bCfg).state;
    // a took the role back in epoch 3 (its master-down interval ran out).
    const back = step(away, heard(advert({ state: 'MASTER', epoch: 3 })), 5000, bCfg);
    expect(back.state.switchover).toBeNull();
    expect(back.state.quorum.wanted).toBeNull();
    expect(audits(back.actions)).toEqual(expect.arrayContaining(['switchover-finished', 'quorum-key-not-wanted', 'redis-demote']));
    expect(find(back.actions, 'replicate-from')).toEqual({ type: 'replicate-from', master: { host: A_ADDR, port: 6379 } });
  });

  it('leaving the master role ends serving without a lease', () => {
    const s = step(masterB(), heard(advert({ state: 'BACKUP', epoch: 1 })), 7000, bCfg).state;
    const failsafe = step(s, fired('quorum-fence'), 7470, bCfg).state;
    expect(failsafe.quorum.failsafeSinceMs).toBe(7470);
    const failing = step(failsafe, { type: 'health-checked', ok: false, detail: 'timeout', redis: null }, 7500, bCfg);
    const down = step(failing.state, { type: 'health-checked', ok: false, detail: 'timeout', redis: null }, 7600, bCfg);
    expect(down.state.role).toBe('FAULT');
    expect(down.state.quorum.failsafeSinceMs).toBeNull();
  });
});

describe('without a quorum: prefer safety', () => {
  const safety: CoreConfig = coreConfig({ quorum: { backend: 'none', prefer: 'safety', retryMs: 500, fenceLeadMs: 0 } });
  const backup = (linkUp: boolean): CoreState => last(run(safety, [
    [0, { type: 'started' }],
    [10, ok(replicaSnap())],
    [20, heard(advert({ state: 'MASTER', epoch: 1 }))],
    [3000, ok(replicaSnap({ linkUp }))],
  ])).state;

  it('a silent master whose Redis this replica still reaches is replaced through its Redis (fenced takeover)', () => {
    const r = step(backup(true), fired('master-down'), 5000, safety);
    expect(r.state).toMatchObject({ role: 'MASTER', redisOp: 'promoting' });
    // Only if that Redis is really caught up with and fenced: a replica link can look up
    // for repl-timeout (60 s) across a cut that drops packets.
    expect(find(r.actions, 'promote-redis')).toEqual({ type: 'promote-redis', catchUpFrom: { host: A_ADDR, port: 6379 }, requireFence: true });
    expect(find(r.actions, 'acquire-quorum')).toBeUndefined();
  });

  it('a silent master whose Redis is unreachable too is not replaced: it may be serving the other side', () => {
    const r = step(backup(false), fired('master-down'), 5000, safety);
    expect(r.state.role).toBe('BACKUP');
    expect(r.reason).toMatch(/prefer safety: the master is silent and its Redis unreachable/);
    expect(audits(r.actions)).toEqual(['takeover-held']);
    expect(r.state.timers['master-down']).toBeGreaterThan(5000);
    // Looked at again; audited once per silence.
    expect(audits(step(r.state, fired('master-down'), 9000, safety).actions)).toEqual([]);
  });

  it('a FAULT report is not a silence: the takeover goes ahead', () => {
    const r = step(backup(false), heard(advert({ state: 'FAULT', epoch: 1 })), 3100, safety);
    expect(r.state.role).toBe('MASTER');
  });

  it('the master writes only while a replica acknowledges, also right after a promotion', () => {
    const promoting = step(backup(true), fired('master-down'), 5000, safety).state;
    const promoted = step(promoting, { type: 'promotion-finished', ok: true, detail: 'promoted', redis: masterSnap() }, 5100, safety);
    expect(find(promoted.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'with-replica' });
    const claimed = step(promoted.state, { type: 'fence-applied', writes: 'with-replica', ok: true, detail: 'ok' }, 5110, safety).state;
    expect(find(step(claimed, ok(masterSnap({ connectedReplicas: 0 })), 5600, safety).actions, 'fence-redis')).toBeUndefined();
  });

  it('prefer availability leaves Redis as the operator has it (no fence ever)', () => {
    const avail = coreConfig();
    const b = last(run(avail, [[0, { type: 'started' }], [10, ok(replicaSnap({ linkUp: false }))], [20, heard(advert({ state: 'MASTER', epoch: 1 }))]])).state;
    const r = step(b, fired('master-down'), 5000, avail);
    expect(r.state.role).toBe('MASTER');
    const promoted = step(r.state, { type: 'promotion-finished', ok: true, detail: 'promoted', redis: masterSnap() }, 5100, avail);
    expect(find(promoted.actions, 'fence-redis')).toBeUndefined();
  });
});

