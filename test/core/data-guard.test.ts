/**
 * The data guard (issue 11 item 5, `src/core/data-guard.ts`): a Redis that came back
 * without its data never becomes the source its peer resyncs from.
 */
import { describe, expect, it } from 'vitest';
import { historyLost, peerHoldsMore } from '../../src/core/data-guard.js';
import type { CoreState } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import type { Event, RedisSnapshot } from '../../src/core/types.js';
import { A_ADDR, B_ADDR, REPL_A, aCfg, advert, bAdvert, coreConfig, fired, heard, last, masterSnap, ok, replicaSnap, run, types } from './fixtures.js';

const before = masterSnap({ replId: REPL_A, offset: 5000, connectedReplicas: 1, runId: 'run-1' });
const emptied = masterSnap({ replId: 'e'.repeat(40), offset: 0, runId: 'run-2' });
const restarted: Event = { type: 'health-checked', ok: true, detail: 'PONG', redis: emptied };
const refused: Event = { type: 'health-checked', ok: false, detail: 'connection refused', redis: null, down: true };

/** a MASTER (its Redis at offset 5000, run-1), b a live BACKUP whose Redis holds a's history up to `bOffset`. */
function master(bOffset = 4900): CoreState {
  return last(run(aCfg, [
    [0, { type: 'started' }],
    [10, ok(before)],
    [20, heard(bAdvert({ state: 'BACKUP', redis: { role: 'replica', replId: REPL_A, replId2: '', offset: bOffset, secondOffset: -1 } }), B_ADDR)],
    [30, { type: 'vip-claimed' }],
    [40, ok(before)],
  ])).state;
}

describe('historyLost', () => {
  it('a new run that is a master behind the last offset lost history; a kept or restored offset did not', () => {
    expect(historyLost(before, emptied)).toBe(true);
    expect(historyLost(before, { ...emptied, offset: 4000 })).toBe(true);
    expect(historyLost(before, { ...emptied, offset: 5000 })).toBe(false);
    expect(historyLost(before, { ...before, offset: 0 })).toBe(false); // same run: not a restart
    expect(historyLost({ ...before, runId: undefined }, emptied)).toBe(false); // unknown run: nothing to compare
    expect(historyLost(before, { ...emptied, role: 'replica', masterHost: B_ADDR, masterPort: 6379 })).toBe(false);
    expect(historyLost(null, emptied)).toBe(false);
  });

  it('the peer holds more only while it has not resynced from the new run and is further on', () => {
    const loss = { atMs: 0, before: { runId: 'run-1', replId: REPL_A, offset: 5000 }, after: { runId: 'run-2', replId: 'e'.repeat(40), offset: 0 } };
    const peer = master().peer;
    expect(peerHoldsMore(peer, loss)).toBe(true);
    expect(peerHoldsMore(peer && { ...peer, redis: { ...peer.redis, replId: 'e'.repeat(40) } }, loss)).toBe(false);
    expect(peerHoldsMore(peer && { ...peer, redis: { ...peer.redis, role: 'unknown' } }, loss)).toBe(false);
    expect(peerHoldsMore(null, loss)).toBe(false);
  });
});

describe('data guard in the decision core', () => {
  it('a MASTER whose Redis restarted empty makes it a replica of the peer first, then goes FAULT, releasing the VIP', () => {
    const r = step(master(), restarted, 100, aCfg);
    expect(r.state.role).toBe('FAULT');
    expect(types(r.actions)[0]).toBe('replicate-from'); // before the VIP release, the fence and the FAULT advert
    expect(r.actions[1]).toEqual({ type: 'replicate-from', master: { host: B_ADDR, port: 6379 }, guard: true });
    expect(r.actions[0]).toMatchObject({ type: 'audit', event: 'redis-history-lost', data: { before: { runId: 'run-1', offset: 5000 }, after: { runId: 'run-2', offset: 0 } } });
    expect(types(r.actions)).toContain('release-vip');
    expect(types(r.actions)).toContain('send-advert');
    expect(r.state.historyLoss).toMatchObject({ before: { offset: 5000 }, after: { offset: 0 } });
  });

  it('a Redis back from an older dump (offset restored but behind) is guarded the same way', () => {
    const r = step(master(), { ...restarted, redis: { ...emptied, offset: 3000 } } as Event, 100, aCfg);
    expect(r.state.role).toBe('FAULT');
    expect(r.actions.some((a) => a.type === 'replicate-from' && a.guard === true)).toBe(true);
  });

  it('a restart that kept its offset (persistence) is not a loss: the master stays', () => {
    const r = step(master(), { ...restarted, redis: { ...emptied, offset: 5000 } } as Event, 100, aCfg);
    expect(r.state.role).toBe('MASTER');
    expect(r.actions.filter((a) => a.type === 'replicate-from')).toEqual([]);
  });

  it('with no peer Redis holding more (it already resynced from the new run), the loss is audited and the master stays', () => {
    const s = step(master(), heard(bAdvert({ state: 'BACKUP', redis: { role: 'replica', replId: 'e'.repeat(40), replId2: '', offset: 0, secondOffset: -1 } }), B_ADDR), 50, aCfg).state;
    const r = step(s, restarted, 100, aCfg);
    expect(r.state.role).toBe('MASTER');
    expect(r.actions).toContainEqual(expect.objectContaining({ type: 'audit', event: 'redis-history-lost', data: expect.objectContaining({ action: 'none: no peer Redis holds more' }) }));
  });

  it('under maintenance the loss is audited and Redis left as it is', () => {
    const s: CoreState = { ...master(), maintenance: { on: true, gen: 1 } };
    const r = step(s, restarted, 100, aCfg);
    expect(r.actions.filter((a) => a.type === 'replicate-from')).toEqual([]);
    expect(r.actions).toContainEqual(expect.objectContaining({ event: 'redis-history-lost', data: expect.objectContaining({ action: 'none: maintenance' }) }));
  });

  it('a refused check is proof: a MASTER goes FAULT at the first refusal, not after `fall` checks', () => {
    const r = step(master(), refused, 100, coreConfig({ ...aCfg, fall: 3 }));
    expect(r.state.role).toBe('FAULT');
  });

  it('a FAULT node whose Redis came back empty guards it while the peer is still taking over', () => {
    const fault = step(master(), refused, 100, aCfg).state;
    const r = step(fault, restarted, 150, aCfg);
    expect(r.state.role).toBe('FAULT');
    expect(r.actions.some((a) => a.type === 'replicate-from' && a.guard === true)).toBe(true);
  });

  it('the node that lost its data takes no automatic takeover while the peer holds more; it may once it resynced', () => {
    // a (FAULT after the guard) comes back BACKUP; b, still BACKUP (its takeover held), falls silent.
    const guarded = step(master(), restarted, 100, aCfg).state;
    const replicaOfB: RedisSnapshot = replicaSnap({ masterHost: B_ADDR, replId: 'e'.repeat(40), offset: 0, linkUp: false, runId: 'run-2' });
    const backup = last(run(aCfg, [
      [200, { type: 'demotion-finished', ok: true, detail: 'replica of b' }],
      [700, ok(replicaOfB)],
      [1200, ok(replicaOfB)],
    ], guarded)).state;
    expect(backup.role).toBe('BACKUP');
    const silent = step(backup, fired('master-down'), 6000, aCfg);
    expect(silent.state.role).toBe('BACKUP');
    expect(silent.actions).toContainEqual(expect.objectContaining({ event: 'takeover-held', data: expect.objectContaining({ blocker: expect.stringContaining('restarted without its data') }) }));
    // Once its Redis follows b with the link up (b promoted, a resynced), the loss ends.
    const synced = step(backup, ok(replicaSnap({ masterHost: B_ADDR, replId: 'f'.repeat(40), offset: 5000, linkUp: true, runId: 'run-2' })), 7000, aCfg);
    expect(synced.state.historyLoss).toBeNull();
    expect(synced.actions).toContainEqual(expect.objectContaining({ event: 'redis-history-restored' }));
  });

  it('a BACKUP whose replica restarted empty as a master is re-pointed at once and holds no takeover past its resync', () => {
    const bCfg = coreConfig();
    const backup = last(run(bCfg, [
      [0, { type: 'started' }],
      [10, ok(replicaSnap({ offset: 5000, runId: 'rb-1' }))],
      [20, heard(advert({ state: 'MASTER', epoch: 1, redis: { role: 'master', replId: REPL_A, replId2: '', offset: 5100, secondOffset: -1 } }), A_ADDR)],
    ])).state;
    const r = step(backup, ok(masterSnap({ replId: 'c'.repeat(40), offset: 0, runId: 'rb-2' })), 100, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.actions.filter((a) => a.type === 'replicate-from')).toEqual([{ type: 'replicate-from', master: { host: A_ADDR, port: 6379 }, guard: true }]);
  });
});
