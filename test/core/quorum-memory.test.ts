/**
 * What etcd remembers beyond any lease (src/core/quorum-memory.ts): the relaxed mark of a
 * master whose Redis may hold writes no replica has (finding Q12), and the last master
 * whose Redis served (finding Q9). Table tests of the decisions they change.
 */
import { describe, expect, it } from 'vitest';
import type { CoreState } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import type { Action, Event, KeyHolder, QuorumMemory } from '../../src/core/types.js';
import { A_ADDR, REPL_A, REPL_B, advert, fired, find, heard, last, masterSnap, ok, replicaSnap, run, types } from './fixtures.js';
import { aCfg, askingB, backupB, bCfg, heldByOther, heldWith, masterB, relaxMarked } from './quorum-fixtures.js';

const NONE: QuorumMemory = { last: null, relaxed: null };
const REPL_C = 'c'.repeat(40);
const PEER_REDIS = { host: A_ADDR, port: 6379 };
const audits = (actions: readonly Action[]): string[] => actions.flatMap((a) => (a.type === 'audit' ? [a.event] : []));
const cleared = (holder: KeyHolder, ok = true): Event => ({ type: 'quorum-marked', mark: { kind: 'clear', holder }, ok, detail: ok ? 'deleted' : 'deadline exceeded' });

/** b asked for the key after a fell silent (etcd named a the holder first), and etcd answers with `memory`. */
function takeoverWith(memory: QuorumMemory, from: CoreState = askingB().state) {
  return step(step(from, heldByOther, 5005, bCfg).state, heldWith(2, 8000, memory), 5010, bCfg);
}

describe('a takeover fences the old master\'s Redis through Redis when etcd remembers it may hold writes', () => {
  /** b's Redis as a health check last saw it before the answer (default: a replica of a, on a's replication id). */
  const followedC = (): CoreState => step(askingB().state, ok(replicaSnap({ replId2: REPL_C })), 5001, bCfg).state;
  it.each<[string, QuorumMemory, boolean, () => CoreState]>([
    ['nothing remembered', NONE, false, () => askingB().state],
    ['the last master is the one this Redis follows', { last: { node: 'a', epoch: 1, replId: REPL_A }, relaxed: null }, false, () => askingB().state],
    ['this node\'s own relaxed mark', { last: null, relaxed: { node: 'b', epoch: 0 } }, false, () => askingB().state],
    ['a relaxed mark of a (Q12)', { last: null, relaxed: { node: 'a', epoch: 1 } }, true, () => askingB().state],
    ['a master this Redis never followed (Q9)', { last: { node: 'a', epoch: 1, replId: REPL_C }, relaxed: null }, true, () => askingB().state],
    ['the last master followed before a failover (replid2)', { last: { node: 'a', epoch: 1, replId: REPL_C }, relaxed: null }, false, followedC],
  ])('%s: fence required %s', (_name, memory, required, from) => {
    const r = takeoverWith(memory, from());
    expect(r.state.role).toBe('MASTER');
    const promote = find(r.actions, 'promote-redis');
    expect(promote?.requireFence).toBe(required ? true : undefined);
    expect(audits(r.actions).includes('takeover-fence-required')).toBe(required);
    if (required) expect(promote?.catchUpFrom).toEqual(PEER_REDIS);
  });

  it('the peer\'s FAULT report does not skip the catch-up a relaxed mark asks for', () => {
    const FAULT = { fault: true, resigning: false, maintenance: false, switchingOver: false, holdsVip: false };
    const faulted = step(backupB(), heard(advert({ state: 'FAULT', epoch: 1, flags: FAULT })), 3000, bCfg);
    expect(find(faulted.actions, 'acquire-quorum')).toBeDefined();
    const r = step(faulted.state, heldWith(2, 8000, { last: null, relaxed: { node: 'a', epoch: 1 } }), 3010, bCfg);
    expect(find(r.actions, 'promote-redis')).toEqual({ type: 'promote-redis', catchUpFrom: PEER_REDIS, requireFence: true });
  });

  it('promoted through a\'s Redis: a\'s mark is cleared (retried until etcd confirms); a failed promotion steps down and clears nothing', () => {
    const taking = takeoverWith({ last: null, relaxed: { node: 'a', epoch: 1 } }).state;
    const failed = step(taking, { type: 'promotion-finished', ok: false, detail: 'not promoting: could not be caught up with and fenced', redis: replicaSnap() }, 5200, bCfg);
    expect(failed.state.role).toBe('BACKUP');
    expect(failed.state.quorum.fenceMark).toBeNull();
    expect(failed.actions.some((a) => a.type === 'mark-quorum' && a.mark.kind === 'clear')).toBe(false);

    const marked = step(taking, relaxMarked(2), 5020, bCfg).state;
    const promoted = step(marked, { type: 'promotion-finished', ok: true, detail: 'caught up, fenced', redis: masterSnap() }, 5200, bCfg);
    const clear = promoted.actions.filter((a) => a.type === 'mark-quorum' && a.mark.kind === 'clear');
    expect(clear).toEqual([{ type: 'mark-quorum', mark: { kind: 'clear', holder: { node: 'a', epoch: 1 } } }]);
    // Not confirmed: asked again at the next check, once.
    const failedClear = step(promoted.state, cleared({ node: 'a', epoch: 1 }, false), 5300, bCfg).state;
    const retried = step(failedClear, ok(masterSnap()), 5600, bCfg);
    expect(retried.actions).toContainEqual({ type: 'mark-quorum', mark: { kind: 'clear', holder: { node: 'a', epoch: 1 } } });
    expect(step(retried.state, ok(masterSnap()), 6100, bCfg).actions.filter((a) => a.type === 'mark-quorum' && a.mark.kind === 'clear')).toEqual([]);
    const done = step(retried.state, cleared({ node: 'a', epoch: 1 }), 5610, bCfg);
    expect(done.state.quorum.fenceMark).toBeNull();
    expect(audits(done.actions)).toContain('quorum-relax-cleared');
  });

  it('after a promotion that fenced a\'s Redis, b\'s own relaxed mark waits for a\'s to be cleared (etcd writes none over another\'s); writes only with a replica meanwhile', () => {
    const taking = takeoverWith({ last: null, relaxed: { node: 'a', epoch: 1 } }).state;
    const promoted = step(taking, { type: 'promotion-finished', ok: true, detail: 'caught up, fenced', redis: masterSnap() }, 5200, bCfg);
    const marks = promoted.actions.flatMap((a) => (a.type === 'mark-quorum' ? [a.mark.kind] : []));
    expect(marks).toEqual(['served', 'clear']);
    expect(find(promoted.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'with-replica' });
    const done = step(promoted.state, cleared({ node: 'a', epoch: 1 }), 5210, bCfg);
    expect(done.actions).toContainEqual({ type: 'mark-quorum', mark: { kind: 'relax', epoch: 2 } });
    expect(done.state.quorum.memory?.relaxed).toBeNull();
  });

  it('an adoption that waives a\'s mark (a\'s Redis follows this one) clears it once serving', () => {
    const init = last(run(bCfg, [[0, { type: 'started' }], [10, ok(masterSnap())],
      [20, heard(advert({ state: 'BACKUP', epoch: 1, redis: { role: 'replica', replId: REPL_B, replId2: '', offset: 1000, secondOffset: -1 } }))],
      [4000, fired('init-listen')]])).state;
    const r = step(init, heldWith(0, 7000, { last: null, relaxed: { node: 'a', epoch: 1 } }), 4010, bCfg);
    expect(r.state.role).toBe('MASTER');
    expect(r.state.quorum.fenceMark).toEqual({ holder: { node: 'a', epoch: 1 }, clearing: false });
    expect(step(r.state, ok(masterSnap({ connectedReplicas: 1 })), 4500, bCfg).actions)
      .toContainEqual({ type: 'mark-quorum', mark: { kind: 'clear', holder: { node: 'a', epoch: 1 } } });
  });

  it('a switchover\'s handover needs no fence (the old master\'s Redis follows ours), but clears a stale mark', () => {
    const HANDING_OVER = { fault: false, resigning: false, maintenance: false, switchingOver: true, holdsVip: true };
    const handing = step(backupB(), heard(advert({ state: 'MASTER', epoch: 1, flags: HANDING_OVER })), 100, bCfg).state;
    const promoted = step(handing, ok(masterSnap({ replId: REPL_A })), 150, bCfg).state;
    const stepped = step(promoted, heard(advert({ state: 'BACKUP', epoch: 1, flags: HANDING_OVER })), 160, bCfg).state;
    const taking = step(stepped, { type: 'handover-received', requestId: 'sw1', epoch: 2, force: false, from: 'a' }, 170, bCfg).state;
    const r = step(taking, heldWith(2, 8000, { last: { node: 'a', epoch: 1, replId: REPL_C }, relaxed: { node: 'a', epoch: 1 } }), 180, bCfg);
    expect(r.state.role).toBe('MASTER');
    expect(find(r.actions, 'promote-redis')?.requireFence).toBeUndefined();
    expect(r.state.quorum.fenceMark).toEqual({ holder: { node: 'a', epoch: 1 }, clearing: false });
  });
});

describe('INIT does not adopt its Redis as is when etcd remembers a master it never followed (finding Q9)', () => {
  /** a starting with its Redis a master (replid REPL_B in the fixture), asking for the key in epoch 0. */
  const starting = () => last(run(aCfg, [[0, { type: 'started' }], [10, ok(masterSnap())], [4000, fired('init-listen')]])).state;

  it('b served in epoch 1 on another history: a fences its Redis and goes BACKUP; the takeover then catches up with b', () => {
    const r = step(starting(), heldWith(0, 7000, { last: { node: 'b', epoch: 1, replId: REPL_C }, relaxed: null }), 4010, aCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(find(r.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'refused' });
    expect(find(r.actions, 'claim-vip')).toBeUndefined();
    expect(audits(r.actions)).toContain('takeover-fence-required');
    // The key goes once the fence holds.
    const fenced = step(r.state, { type: 'fence-applied', writes: 'refused', ok: true, detail: 'min-replicas-to-write 2147483647' }, 4020, aCfg);
    expect(types(fenced.actions)).toContain('release-quorum');
    // b stays silent: the takeover asks etcd again, and promotes only through b's Redis.
    const asking = step(fenced.state, fired('master-down'), 9000, aCfg);
    const epoch = find(asking.actions, 'acquire-quorum')?.epoch ?? -1;
    expect(epoch).toBeGreaterThan(1);
    const taking = step(asking.state, heldWith(epoch, 12_000, { last: { node: 'b', epoch: 1, replId: REPL_C }, relaxed: null }), 9010, aCfg);
    expect(find(taking.actions, 'promote-redis')).toEqual({ type: 'promote-redis', catchUpFrom: { host: '10.77.0.12', port: 6379 }, requireFence: true });
  });

  it.each<[string, QuorumMemory]>([
    ['nothing remembered', NONE],
    ['a itself served last', { last: { node: 'a', epoch: 0, replId: REPL_C }, relaxed: null }],
    ['b served last on the history a\'s Redis holds', { last: { node: 'b', epoch: 1, replId: REPL_B }, relaxed: null }],
  ])('%s: adopted', (_name, memory) => {
    const r = step(starting(), heldWith(0, 7000, memory), 4010, aCfg);
    expect(r.state.role).toBe('MASTER');
    expect(find(r.actions, 'claim-vip')).toBeDefined();
  });
});

describe('the served record and the master\'s own relaxed mark', () => {
  it('the master records its Redis once, again when its replication id changes, and retries a failed write', () => {
    const s = masterB();
    expect(s.quorum.served).toEqual({ epoch: 2, replId: REPL_B, ok: null });
    const recorded = step(s, { type: 'quorum-marked', mark: { kind: 'served', epoch: 2, replId: REPL_B }, ok: true, detail: 'written' }, 5300, bCfg);
    expect(audits(recorded.actions)).toContain('quorum-served');
    expect(step(recorded.state, ok(masterSnap({ connectedReplicas: 1 })), 5600, bCfg).actions.filter((a) => a.type === 'mark-quorum')).toEqual([]);
    const changed = step(recorded.state, ok(masterSnap({ replId: REPL_C })), 5600, bCfg);
    expect(changed.actions).toContainEqual({ type: 'mark-quorum', mark: { kind: 'served', epoch: 2, replId: REPL_C } });
    const failed = step(s, { type: 'quorum-marked', mark: { kind: 'served', epoch: 2, replId: REPL_B }, ok: false, detail: 'not the holder' }, 5300, bCfg).state;
    expect(step(failed, ok(masterSnap()), 5600, bCfg).actions).toContainEqual({ type: 'mark-quorum', mark: { kind: 'served', epoch: 2, replId: REPL_B } });
  });

  it('a mark of this node\'s own that etcd still holds (an earlier run) is cleared once a replica acknowledges', () => {
    const init = last(run(aCfg, [[0, { type: 'started' }], [10, ok(masterSnap())], [4000, fired('init-listen')]])).state;
    const adopted = step(init, heldWith(0, 7000, { last: null, relaxed: { node: 'a', epoch: 0 } }), 4010, aCfg);
    expect(adopted.state.quorum.relaxMark).toEqual({ epoch: 0, state: 'marked' });
    // Marked already: the fence is eased at once.
    expect(find(adopted.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'accepted' });
    const withReplica = step(adopted.state, ok(masterSnap({ connectedReplicas: 1 })), 4500, aCfg);
    expect(find(withReplica.actions, 'fence-redis')).toEqual({ type: 'fence-redis', writes: 'with-replica' });
    const applied = step(withReplica.state, { type: 'fence-applied', writes: 'with-replica', ok: true, detail: 'min-replicas-to-write 1' }, 4510, aCfg).state;
    const clearing = step(applied, ok(masterSnap({ connectedReplicas: 1 })), 5000, aCfg);
    expect(clearing.actions).toContainEqual({ type: 'mark-quorum', mark: { kind: 'clear', holder: { node: 'a', epoch: 0 } } });
    // Not confirmed: etcd may have deleted it. Cleared again at the next check, and not
    // trusted to ease the fence: the replica gone, the mark is written afresh first.
    const notYet = step(clearing.state, cleared({ node: 'a', epoch: 0 }, false), 5010, aCfg).state;
    expect(notYet.quorum.relaxMark).toEqual({ epoch: 0, state: 'unknown' });
    expect(step(notYet, ok(masterSnap({ connectedReplicas: 1 })), 5500, aCfg).actions).toContainEqual({ type: 'mark-quorum', mark: { kind: 'clear', holder: { node: 'a', epoch: 0 } } });
    const alone = step(notYet, ok(masterSnap({ connectedReplicas: 0 })), 5500, aCfg);
    expect(alone.actions).toContainEqual({ type: 'mark-quorum', mark: { kind: 'relax', epoch: 0 } });
    expect(find(alone.actions, 'fence-redis')).toBeUndefined();
  });

  it('a master stepping down keeps its mark: a replica never had what it took while relaxed', () => {
    const s = masterB();
    expect(s.quorum.relaxMark).toEqual({ epoch: 2, state: 'marked' });
    const down = step(s, heard(advert({ state: 'MASTER', epoch: 5 })), 6000, bCfg);
    expect(down.state.role).toBe('BACKUP');
    expect(down.actions.filter((a) => a.type === 'mark-quorum')).toEqual([]);
    expect(down.state.quorum.relaxMark).toEqual({ epoch: 2, state: 'marked' });
  });
});
