/**
 * Forced failover (`src/core/forced-failover.ts`): `redis-ha failover` on a backup whose
 * automatic takeover is held back. Each refusal changes nothing; the dry run changes
 * nothing and says what holds the takeover; `--accept-data-loss` passes each gate (lag,
 * recovery block, prefer safety) and the data guard, audited; the leader key is never
 * passed. Table tests on the real core; time is the `now` argument.
 */
import { describe, expect, it } from 'vitest';
import { EPOCH_CEILING } from '../../src/core/epoch.js';
import type { CoreConfig, CoreState } from '../../src/core/state.js';
import { step, type StepResult } from '../../src/core/step.js';
import type { Action, Event, RedisSnapshot } from '../../src/core/types.js';
import { whyNotMaster } from '../../src/daemon/status.js';
import {
  A_ADDR, B_ADDR, REPL_A, aCfg, advert, bAdvert, coreConfig, fail, find, fired, heard, last, masterSnap, masterWithBackup, ok, replicaSnap, run,
} from './fixtures.js';
import { QUORUM, answered, held } from './quorum-fixtures.js';

const MAX_LAG = 1000;
const cfg = coreConfig({ promotionMaxLagBytes: MAX_LAG });

const failover = (acceptDataLoss: boolean, requestId = 'f1'): Event =>
  ({ type: 'failover-requested', requestId, user: 'root(uid 0)', pid: 4242, acceptDataLoss });

/** b, BACKUP behind master a (heard at 20 ms, its offset `masterOffset`); b's Redis at offset 1000. */
function backupBehind(config: CoreConfig, masterOffset: number, local: Partial<RedisSnapshot> = {}): CoreState {
  return last(run(config, [
    [0, { type: 'started' }],
    [10, ok(replicaSnap({ offset: 1000, ...local }))],
    [20, heard(advert({ state: 'MASTER', epoch: 1, redis: { role: 'master', replId: REPL_A, replId2: '', offset: masterOffset, secondOffset: -1 } }))],
  ])).state;
}

/** b's takeover held back: a fell silent while b was 5000 bytes behind (bound 1000). */
function heldByLag(config: CoreConfig = cfg): CoreState {
  const r = step(backupBehind(config, 6000), fired('master-down'), 5000, config);
  expect(r.state.takeoverHeld?.blocker).toMatch(/5000 bytes behind a/);
  return r.state;
}

function replies(r: StepResult): Extract<Action, { type: 'reply' }>[] {
  return r.actions.filter((a): a is Extract<Action, { type: 'reply' }> => a.type === 'reply');
}

function audits(r: StepResult, event: string): Record<string, unknown>[] {
  return r.actions.filter((a): a is Extract<Action, { type: 'audit' }> => a.type === 'audit' && a.event === event).map((a) => ({ ...a.data }));
}

const promoted: Event = { type: 'promotion-finished', ok: true, detail: 'promoted', redis: masterSnap() };

describe('forced failover: refused, nothing changes', () => {
  const peerMaster = backupBehind(cfg, 1000);
  const cases: [string, () => CoreState, CoreConfig, RegExp][] = [
    ['this node is MASTER', () => masterWithBackup(), aCfg, /this node is MASTER already \(epoch 0\)/],
    ['this node is taking over already', () => step(backupBehind(cfg, 1000), fired('master-down'), 5000, cfg).state, cfg, /taking over already/],
    ['this node is starting', () => last(run(cfg, [[0, { type: 'started' }]])).state, cfg, /starting \(INIT\)/],
    ['the peer is a healthy MASTER', () => step(peerMaster, heard(advert({ state: 'MASTER', epoch: 1 })), 5900, cfg).state, cfg,
      /a is heard as a healthy MASTER \(epoch 1\): use `redis-ha switchover`/],
    ['the local Redis failed', () => last(run(cfg, [[100, fail], [200, fail]], heldByLag())).state, cfg, /this node's Redis is not healthy \(connection refused\)/],
    ['maintenance is on', () => ({ ...heldByLag(), maintenance: { on: true, gen: 3 } }), cfg, /maintenance is on: .*`redis-ha maintenance off`/],
    ['a switchover is running', () => step(peerMaster, { type: 'switchover-requested', requestId: 's1', timeoutMs: 60_000, force: false, user: 'root', origin: 'local' }, 100, cfg).state,
      cfg, /switchover s1 is running \(forwarded\)/],
    ['the state file cannot be written', () => ({ ...heldByLag(), persistFailure: { detail: 'EROFS', sinceMs: 0, attempts: 2, heldTakeover: null } }), cfg,
      /state file cannot be written \(EROFS\)/],
    ['the epoch space is exhausted', () => ({ ...heldByLag(), knownEpoch: EPOCH_CEILING }), cfg, /no newer epoch can be made/],
  ];

  it.each(cases)('%s', (_label, build, config, why) => {
    const s = build();
    for (const acceptDataLoss of [false, true]) {
      const r = step(s, failover(acceptDataLoss), 6000, config);
      expect(r.state).toBe(s);
      expect(r.actions.filter((a) => a.type !== 'audit' && a.type !== 'reply')).toEqual([]);
      expect(replies(r)).toEqual([expect.objectContaining({ requestId: 'f1', ok: false, data: { outcome: 'refused' } })]);
      expect(replies(r)[0]?.detail).toMatch(why);
      // Only a refused --accept-data-loss is worth its own record (the control socket records every request).
      expect(audits(r, 'takeover-forced-refused')).toHaveLength(acceptDataLoss ? 1 : 0);
      expect(audits(r, 'takeover-forced')).toEqual([]);
    }
  });

  it('a second forced failover while one runs is refused; the first goes on', () => {
    const quorumCfg = coreConfig({ promotionMaxLagBytes: MAX_LAG, quorum: QUORUM });
    const waiting = step(heldByLag(quorumCfg), failover(true), 6000, quorumCfg).state;
    const r = step(waiting, failover(true, 'f2'), 6100, quorumCfg);
    expect(replies(r)).toEqual([expect.objectContaining({ requestId: 'f2', ok: false })]);
    expect(replies(r)[0]?.detail).toMatch(/forced failover f1 by root\(uid 0\) is already running/);
    expect(r.state.forcedFailover?.requestId).toBe('f1');
  });
});

describe('forced failover: the dry run', () => {
  it('changes nothing and says what a forced takeover would do and what holds it back (the lag in bytes)', () => {
    const s = heldByLag();
    const r = step(s, failover(false), 6000, cfg);
    expect(r.state).toBe(s);
    expect(r.actions.filter((a) => a.type !== 'reply')).toEqual([]);
    const [answer] = replies(r);
    expect(answer).toMatchObject({ ok: false, data: { outcome: 'dry-run', lagBytes: 5000, epoch: 2 } });
    expect(answer?.detail).toMatch(/^nothing changed: a forced takeover would take over as MASTER in epoch 2: promote the local Redis after catching up from 10\.77\.0\.11:6379 if it answers, then claim the VIP \(the 5000 bytes this replica was behind a are lost unless the catch-up gets them\); held back now: this replica was 5000 bytes behind a/);
    expect(answer?.detail).toMatch(/Run it again with --accept-data-loss/);
  });

  it('with nothing held back, says so', () => {
    const silent = backupBehind(cfg, 1000);
    const [answer] = replies(step(silent, failover(false), 4000, cfg));
    expect(answer?.detail).toMatch(/nothing holds an automatic takeover back now/);
    expect(answer?.data).toMatchObject({ heldBy: null, lagBytes: 0 });
  });

  it('with etcd, says the key is still needed, and when an automatic takeover already waits for it', () => {
    const quorumCfg = coreConfig({ promotionMaxLagBytes: MAX_LAG, quorum: QUORUM });
    const [answer] = replies(step(heldByLag(quorumCfg), failover(false), 6000, quorumCfg));
    expect(answer?.detail).toMatch(/once etcd grants this node the leader key \(never taken from another holder\)/);
    const asking = step(backupBehind(quorumCfg, 1000), fired('master-down'), 5000, quorumCfg).state;
    expect(asking.quorum.wanted).not.toBeNull();
    const [waiting] = replies(step(asking, failover(false), 5100, quorumCfg));
    expect(waiting?.detail).toMatch(/an automatic takeover is waiting for the leader key \(no master advert from a for \d+ ms \(master-down interval\)\), as a forced one would/);
  });
});

describe('forced failover: each gate and the data guard bypassed, audited', () => {
  it('replication lag beyond promotion.max_lag_bytes: taken over, audited with the caller and the blocker, answered once promoted', () => {
    const s = heldByLag();
    const r = step(s, failover(true), 6000, cfg);
    expect(r.state.role).toBe('MASTER');
    expect(r.state.redisOp).toBe('promoting');
    expect(r.state.epoch).toBe(2);
    expect(r.reason).toMatch(/^forced failover f1 by root\(uid 0\), overriding: this replica was 5000 bytes behind a/);
    expect(r.actions[0]).toMatchObject({
      type: 'audit', event: 'takeover-forced',
      data: { requestId: 'f1', user: 'root(uid 0)', pid: 4242, overrode: expect.stringMatching(/5000 bytes behind/), lagBytes: 5000, epoch: 2, quorum: 'none' },
    });
    // Catches up from the peer's Redis when it answers, as any takeover.
    expect(find(r.actions, 'promote-redis')).toEqual({ type: 'promote-redis', catchUpFrom: { host: A_ADDR, port: 6379 } });
    expect(replies(r)).toEqual([]); // answered once the promotion is done
    expect(r.state.recoveryBlockUntilMs).toBeNull(); // not automatic: no recovery block
    const done = step(r.state, promoted, 6200, cfg);
    expect(find(done.actions, 'claim-vip')).toBeDefined();
    const answer = replies(done);
    expect(answer).toEqual([expect.objectContaining({ requestId: 'f1', ok: true, data: expect.objectContaining({ outcome: 'taken-over', epoch: 2, tookMs: 200 }) })]);
    // The answer goes after the VIP claim (the effects run in order).
    expect(done.actions.findIndex((a) => a.type === 'reply')).toBeGreaterThan(done.actions.findIndex((a) => a.type === 'claim-vip'));
    expect(audits(done, 'takeover-forced-finished')).toEqual([expect.objectContaining({ requestId: 'f1', ok: true, user: 'root(uid 0)' })]);
    expect(done.state.forcedFailover).toBeNull();
  });

  it('the recovery block: a peer that took over automatically and failed again is replaced at once', () => {
    const blocking = coreConfig({ recoveryBlockMs: 60_000 });
    const flagged = advert({ state: 'MASTER', epoch: 2 });
    const backup = last(run(blocking, [[0, { type: 'started' }], [10, ok(replicaSnap())],
      [7000, heard({ ...flagged, flags: { ...flagged.flags, recoveredRecently: true } })]])).state;
    const faulty = advert({ state: 'FAULT', epoch: 2 });
    const blocked = step(backup, heard({ ...faulty, flags: { ...faulty.flags, fault: true, recoveredRecently: true } }), 8000, blocking);
    expect(blocked.state.role).toBe('BACKUP');
    const r = step(blocked.state, failover(true), 8100, blocking);
    expect(r.state.role).toBe('MASTER');
    expect(audits(r, 'takeover-forced')[0]?.overrode).toMatch(/promotion.recovery_block_ms/);
    // The peer reported FAULT: its Redis is not asked for a catch-up.
    expect(find(r.actions, 'promote-redis')?.catchUpFrom).toBeNull();
  });

  it('prefer safety without a quorum: a silent master whose Redis is unreachable; promoted without requiring its fence', () => {
    const safety = coreConfig({ quorum: { backend: 'none', prefer: 'safety', retryMs: 500, fenceLeadMs: 0 } });
    const cut = backupBehind(safety, 1000, { linkUp: false });
    const blocked = step(cut, fired('master-down'), 5000, safety);
    expect(blocked.state.takeoverHeld?.blocker).toMatch(/prefer safety/);
    const r = step(blocked.state, failover(true), 6000, safety);
    expect(r.state.role).toBe('MASTER');
    expect(find(r.actions, 'promote-redis')).toEqual({ type: 'promote-redis', catchUpFrom: { host: A_ADDR, port: 6379 } });
  });

  it('the data guard: a node whose Redis lost its data takes over, accepting the loss', () => {
    const before = masterSnap({ replId: REPL_A, offset: 5000, connectedReplicas: 1, runId: 'run-1' });
    const emptied = masterSnap({ replId: 'e'.repeat(40), offset: 0, runId: 'run-2' });
    const master = last(run(aCfg, [
      [0, { type: 'started' }], [10, ok(before)],
      [20, heard(bAdvert({ state: 'BACKUP', redis: { role: 'replica', replId: REPL_A, replId2: '', offset: 4900, secondOffset: -1 } }), B_ADDR)],
      [30, { type: 'vip-claimed' }], [40, ok(before)], [100, ok(emptied)],
    ])).state;
    const replicaOfB = replicaSnap({ masterHost: B_ADDR, replId: 'e'.repeat(40), offset: 0, linkUp: false, runId: 'run-2' });
    const backup = last(run(aCfg, [[200, { type: 'demotion-finished', ok: true, detail: 'replica of b' }], [700, ok(replicaOfB)], [1200, ok(replicaOfB)]], master)).state;
    const blocked = step(backup, fired('master-down'), 6000, aCfg);
    expect(blocked.state.role).toBe('BACKUP');
    expect(blocked.state.historyLoss).not.toBeNull();
    const [dry] = replies(step(blocked.state, failover(false), 6100, aCfg));
    expect(dry?.detail).toMatch(/this node's Redis lost its data/);
    const r = step(blocked.state, failover(true), 6100, aCfg);
    expect(r.state.role).toBe('MASTER');
    expect(r.state.historyLoss).toBeNull();
    expect(audits(r, 'takeover-forced')[0]).toMatchObject({ overrode: expect.stringMatching(/restarted without its data/), historyLoss: { before: { offset: 5000 } } });
  });

  it('a failed promotion is answered as failed', () => {
    const r = step(step(heldByLag(), failover(true), 6000, cfg).state,
      { type: 'promotion-finished', ok: false, detail: 'REPLICAOF NO ONE: timeout', redis: null }, 6300, cfg);
    expect(r.state.role).toBe('BACKUP');
    expect(replies(r)).toEqual([expect.objectContaining({ ok: false, detail: 'forced failover failed: promotion failed: REPLICAOF NO ONE: timeout' })]);
    expect(r.state.forcedFailover).toBeNull();
  });

  it('a shutdown while it runs is answered', () => {
    const r = step(step(heldByLag(), failover(true), 6000, cfg).state, { type: 'shutdown-requested' }, 6100, cfg);
    expect(replies(r)).toEqual([expect.objectContaining({ ok: false, detail: 'forced failover failed: the daemon is shutting down' })]);
  });

  it('status names the blocker with the hint', () => {
    expect(whyNotMaster(heldByLag())).toMatch(/5000 bytes behind a .*; `redis-ha failover --accept-data-loss` overrides it$/);
  });
});

describe('forced failover with etcd: the leader key is never bypassed', () => {
  const quorumCfg = coreConfig({ promotionMaxLagBytes: MAX_LAG, quorum: QUORUM });

  it('asks etcd for the key and takes over only once it holds it, past the lag gate', () => {
    const r = step(heldByLag(quorumCfg), failover(true), 6000, quorumCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(find(r.actions, 'acquire-quorum')).toEqual({ type: 'acquire-quorum', epoch: 2 });
    expect(r.state.quorum.wanted).toMatchObject({ kind: 'takeover', forced: true, afterSilence: true });
    expect(audits(r, 'takeover-forced')).toHaveLength(1);
    expect(replies(r)).toEqual([]);
    // a was heard as MASTER: after a silence, the key's holder still waits out a failsafe master's fence.
    const granted = step(r.state, held(2, 60_000), 6050, quorumCfg);
    expect(granted.state.role).toBe('BACKUP');
    expect(granted.reason).toMatch(/holding the leader key; waiting \d+ ms more so a master serving without etcd has fenced/);
    const at = granted.state.timers['quorum-retry'] ?? Number.NaN;
    // Resumed from the wish (quorum.ts runWanted): still forced, so the lag gate does not hold it again.
    const promoting = step(granted.state, fired('quorum-retry'), at, quorumCfg);
    expect(promoting.state.role).toBe('MASTER');
    expect(promoting.state.quorum.wanted).toBeNull();
    const done = step(promoting.state, promoted, at + 100, quorumCfg);
    expect(replies(done)).toEqual([expect.objectContaining({ ok: true })]);
  });

  it('an automatic takeover already waiting for the key becomes the forced one (no second ask while one is in flight)', () => {
    const asking = step(backupBehind(quorumCfg, 1000), fired('master-down'), 5000, quorumCfg).state;
    expect(asking.quorum.asking).toBe(2);
    const r = step(asking, failover(true), 5100, quorumCfg);
    expect(find(r.actions, 'acquire-quorum')).toBeUndefined();
    expect(r.state.quorum.wanted).toMatchObject({ forced: true, sinceMs: 5000 });
    expect(step(r.state, held(2, 60_000), 5200, quorumCfg).state.forcedFailover?.requestId).toBe('f1');
  });

  it('the key held by another node: answered with its holder, the wish dropped (not retried)', () => {
    const asked = step(heldByLag(quorumCfg), failover(true), 6000, quorumCfg).state;
    const r = step(asked, answered(2, { outcome: 'held-by-other', holder: { node: 'a', epoch: 1 }, detail: 'held by a (epoch 1)' }), 6010, quorumCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.state.quorum.wanted).toBeNull();
    expect(r.state.timers['quorum-retry']).toBeUndefined();
    expect(r.state.timers['master-down']).toBeDefined(); // the automatic takeover is still looked at
    expect(r.state.forcedFailover).toBeNull();
    const [answer] = replies(r);
    expect(answer).toMatchObject({ ok: false, data: { outcome: 'no-leader-key', holder: { node: 'a', epoch: 1 } } });
    expect(answer?.detail).toMatch(/the leader key is held by a \(epoch 1\): a forced failover never takes it from its holder/);
    expect(audits(r, 'takeover-forced-finished')).toEqual([expect.objectContaining({ ok: false })]);
  });

  it('etcd unreachable: answered, the wish dropped', () => {
    const asked = step(heldByLag(quorumCfg), failover(true), 6000, quorumCfg).state;
    const r = step(asked, answered(2, { outcome: 'unreachable', detail: 'deadline exceeded' }), 8000, quorumCfg);
    expect(r.state.quorum.wanted).toBeNull();
    expect(replies(r)[0]?.detail).toMatch(/etcd is unreachable \(deadline exceeded\): no takeover without the leader key, forced or not/);
  });

  it('the master heard again while the key is asked for: answered as failed', () => {
    const asked = step(heldByLag(quorumCfg), failover(true), 6000, quorumCfg).state;
    const r = step(asked, heard(advert({ state: 'MASTER', epoch: 1 })), 6100, quorumCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(replies(r)).toEqual([expect.objectContaining({ ok: false })]);
  });
});
