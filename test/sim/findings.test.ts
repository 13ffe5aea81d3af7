/**
 * What the simulation found in the product, each as a minimal reproduction: a core or
 * runtime test where one exists, and the fixed simulated history that showed it. An
 * open finding runs through `openFinding`: its own assertion must fail (the suite stays
 * green), and the test turns red the day a fix lands (then make it a plain `it` and drop
 * the matching workaround in the simulation, named in each test) or the day it fails for
 * another reason (a crash is not the finding).
 */
import { describe, expect, it } from 'vitest';
import { resyncWouldDiscard } from '../../src/core/history.js';
import type { CoreConfig, CoreState, PeerView } from '../../src/core/state.js';
import { initialState, NO_QUORUM } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import type { Advert, RedisSnapshot } from '../../src/core/types.js';
import { lostWrites } from './invariants.js';
import { openFinding } from './open-finding.js';
import { DEFAULT_TIMING, FAST_TIMING, simulate, type SimOptions } from './pair.js';

const config: CoreConfig = {
  nodeName: 'b', nodeAddress: '10.77.0.12', priority: 90, preempt: false, preemptDelayMs: 0, advertIntervalMs: 1000,
  fall: 2, rise: 2, garpRefreshMs: 0, faultVipHoldMs: 0, peerRedis: { host: '10.77.0.11', port: 6379 }, switchoverMaxLagBytes: 1_000_000,
  promotionMaxLagBytes: 1024 * 1024,
  recoveryBlockMs: 0,
  quorum: NO_QUORUM,
};
const replica: RedisSnapshot = {
  role: 'replica', replId: '1'.repeat(40), replId2: '', offset: 100, secondOffset: -1, masterHost: '10.77.0.11', masterPort: 6379,
  linkUp: true, syncInProgress: false, connectedReplicas: 0,
};
const flags = { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: true };
const masterA: PeerView = {
  nodeName: 'a', address: '10.77.0.11', state: 'MASTER', priority: 100, epoch: 2, advertIntervalMs: 1000, flags, maintenanceGen: 0,
  redis: { role: 'master', replId: '2'.repeat(40), replId2: '1'.repeat(40), offset: 200, secondOffset: 101 }, receivedAtMs: 0,
};

/** The violations of the history's invariants, then the writes `lost` finds. */
async function violationsAndLost(opts: SimOptions): Promise<string[]> {
  const r = await simulate(opts);
  const master = (['a', 'b'] as const).find((n) => r.pair.runtime(n)?.current.role === 'MASTER');
  expect(master, r.trace.join('\n')).toBeDefined();
  return [...r.violations, ...lostWrites(r.pair, master!).map((w) => `#${w.id} on ${w.node} at ${w.at}`)];
}

/** Acknowledged writes the final master does not hold (crashed Redis's unreplicated writes aside), with no exemption. */
async function lost(opts: SimOptions): Promise<string[]> {
  const r = await simulate(opts);
  const master = (['a', 'b'] as const).find((n) => r.pair.runtime(n)?.current.role === 'MASTER');
  expect(master, r.trace.join('\n')).toBeDefined();
  return lostWrites(r.pair, master!).map((w) => `#${w.id} on ${w.node} at ${w.at}`);
}

describe('findings', () => {
  /*
   * 1. A stale `handover` re-promotes a node without catch-up (acknowledged writes lost).
   * B took over in switchover s1 and finished it (lastSwitchoverId s1); its daemon
   * stalled, A took over (epoch 2, fencing B's Redis), B resumed and stepped down. Then a
   * `handover s1` that A had re-sent on its advert ticks while B was frozen arrives:
   * `onHandoverReceived` ignores a finished request only when the node is MASTER, so B
   * (now BACKUP) takes over again, with `catchUpFrom: null`, and its Redis (a replica of
   * A) is promoted without waiting for A's latest writes, which A's demotion then
   * discards. Expected: a handover whose request already finished (or whose epoch is
   * below the known epoch) is ignored in every role.
   * The same stale `handover` also comes without a stall: with `preempt`, the old master
   * takes its role back right after handing it over while its switchover is still
   * `awaiting-peer`, and as MASTER keeps re-sending `handover` on its advert ticks
   * (`resendHandover` does not look at the role); the new master, stepped down by the
   * preemption, takes over again without catch-up.
   * A restarted daemon that never saw the switchover takes such a handover too (the old
   * master took its role back when the new one resigned for a restart): so the check must
   * be on the epoch (a handover below the known epoch is stale), not only on the id.
   * Fixed (core/switchover.ts): a handover whose id already finished here, or whose epoch
   * is not above the known epoch, is ignored in every role; only the old master, as
   * BACKUP, re-sends handover. The simulation no longer excuses such a loss.
   */
  it('core: a handover for a switchover this node already finished is ignored as BACKUP too', () => {
    const s: CoreState = {
      ...initialState(0, { epoch: 1, knownEpoch: 2 }), role: 'BACKUP', switchoverIds: ['s1'], peer: masterA,
      health: { healthy: true, consecutiveOk: 3, consecutiveFail: 0, detail: 'PONG', redis: replica, checkedAtMs: 0 },
    };
    const r = step(s, { type: 'handover-received', requestId: 's1', epoch: 1, force: false, from: 'a' }, 10, config);
    expect(r.actions.filter((a) => a.type === 'promote-redis')).toEqual([]);
    expect(r.state.role).toBe('BACKUP');
  });

  it('sim: the new master stalling right after a switchover loses no acknowledged write', async () => {
    // Found by "no partitions" at fast timing; trace: b takes over in s1 (488 ms), stalls
    // 558-953 ms, a takes over (856 ms, epoch 2), b resumes and steps down (953 ms), then
    // b BACKUP->MASTER e3 "switchover s1: a handed over the master role" (958 ms).
    expect(await lost({
      seed: 625264946, timing: FAST_TIMING, lossFree: true,
      faults: [
        { kind: 'stall', node: 'b', at: 558, durationMs: 395 },
        { kind: 'flaky', node: 'a', at: 0, durationMs: 196, rate: 0.05 },
        { kind: 'switchover', node: 'b', at: 446, force: false, timeoutMs: 1000 },
      ],
    })).toEqual([]);
  });

  it('core: a node that took the master role back does not re-send handover on its advert ticks', () => {
    const s: CoreState = {
      ...initialState(0, { epoch: 4, knownEpoch: 4 }), role: 'MASTER', timers: { advert: 10 },
      switchover: {
        requestId: 's1', phase: 'awaiting-peer', replyTo: 'local', user: 'op', force: false, timeoutMs: 1000, startedAtMs: 0,
        epoch: 3, resends: 0, method: 'failover', pausedMs: 5,
      },
    };
    const r = step(s, { type: 'timer-fired', timer: 'advert' }, 10, { ...config, nodeName: 'a', priority: 100, preempt: true });
    expect(r.actions.filter((a) => a.type === 'send-message')).toEqual([]);
  });

  it('sim: preempting right after a switchover loses no acknowledged write', async () => {
    // Found by "no partitions" at fast timing; trace: a hands over s1 (1902 ms), b takes
    // over (1907 ms, e3), a preempts (2114 ms, e4), b steps down, then b BACKUP->MASTER e5
    // "switchover s1: a handed over the master role" (2215 ms); a's write #111 is lost.
    expect(await lost({
      seed: 156533570, timing: FAST_TIMING, lossFree: true, preempt: true,
      faults: [
        { kind: 'switchover', node: 'a', at: 1818, force: false, timeoutMs: 1000 },
        { kind: 'switchover', node: 'a', at: 398, force: false, timeoutMs: 1000 },
        { kind: 'flaky', node: 'b', at: 1382, durationMs: 540, rate: 0.08188471011817457 },
      ],
    })).toEqual([]);
  });

  /*
   * 2. The start-up probe is thrown away. `runDaemon` probes Redis (startedAtMs = T0), then
   * builds the state with `initialState(now)` (redisChangedAtMs = T1 > T0) and hands the
   * probe over as `firstCheck`: `nextHealth` finds it older than the last role change and
   * keeps no snapshot. Until the next health check the node cannot decide in INIT and its
   * adverts say "Redis unknown", which the peer reads as "not a master": with both Redis
   * masters at start-up (a Redis restarted without its REPLICAOF), the lower-priority node
   * adopts MASTER, takes writes, and loses them when the other adopts too and wins.
   * Expected: the start-up probe counts (build the state as of the probe, or do not
   * compare it with `redisChangedAtMs`).
   * Fixed (core/state.ts): until this daemon's first role change every check is trusted
   * (`redisChangedAtMs` starts at -Infinity); the simulation starts daemons as runDaemon does.
   */
  it('core: the start-up probe handed over as the first check keeps its Redis snapshot', () => {
    const started = step(initialState(100, { epoch: 0, knownEpoch: 0 }), { type: 'started' }, 100, config).state;
    const master: RedisSnapshot = { ...replica, role: 'master', masterHost: null, masterPort: null, linkUp: false };
    const r = step(started, { type: 'health-checked', ok: true, detail: 'PONG', redis: master, startedAtMs: 95 }, 100, config);
    expect(r.state.health.redis).toEqual(master);
  });

  it('sim: both Redis masters at start-up, daemons started as runDaemon does: no acknowledged write lost', async () => {
    // Trace: b adopts MASTER at 641 ms ("peer a is INIT, Redis unknown"), takes write #7
    // at 700 ms; a adopts at 700 ms ("outranks peer master b"); b steps down, #7 is gone.
    expect(await lost({
      seed: -537733686, timing: DEFAULT_TIMING, lossFree: true,
      faults: [{ kind: 'redis-crash', node: 'b', at: 0, durationMs: 50, keepData: true }],
    })).toEqual([]);
  });

  /*
   * 3. `maintenance off` on a node that has not heard its peer since it started answers
   * "already off" (its state file predates the change), then adopts the peer's newer
   * "on" from the next advert: the operator was told maintenance is off, and automatic
   * failover stays frozen on both nodes. Expected: refuse or defer the answer until the
   * peer has been heard, or make the request win over the peer's flag.
   * Fixed: the answer is "not confirmed, retry"; the simulation's operator does so
   * (re-checks `status` and repeats `off`: `operatorEndsMaintenance` in pair.ts).
   */
  it('core: maintenance off answered before the peer was heard is not undone by the peer\'s flag', () => {
    // Fixed (core/maintenance.ts): "already off" is not confirmed while the peer has not
    // been heard; the operator is told to retry, and the peer's newer flag then shows.
    const s: CoreState = { ...initialState(0, { epoch: 0, knownEpoch: 0 }), role: 'BACKUP' };
    const off = step(s, { type: 'maintenance-requested', requestId: 'm2', on: false, user: 'op' }, 10, config);
    expect(off.actions).toContainEqual(expect.objectContaining({ type: 'reply', ok: false, detail: expect.stringMatching(/not confirmed.*retry/) }));
    const advert: Advert = {
      groupId: 51, nodeName: 'a', state: 'MASTER', priority: 100, advertIntervalMs: 1000, bootTimeMs: 1, seq: 1, echoBootTimeMs: 0, epoch: 1,
      flags: { ...flags, maintenance: true }, maintenanceGen: 1, redis: masterA.redis,
    };
    const heard = step(off.state, { type: 'advert-received', advert, fromAddress: '10.77.0.11' }, 20, config);
    expect(heard.state.maintenance.on).toBe(true);
    const again = step(heard.state, { type: 'maintenance-requested', requestId: 'm3', on: false, user: 'op' }, 30, config);
    expect(again.state.maintenance).toEqual({ on: false, gen: 2 });
    expect(again.actions).toContainEqual(expect.objectContaining({ type: 'reply', ok: true }));
  });

  /*
   * 4. Not a redis-ha decision, but a loss the daemon could prevent: a master's Redis that
   * restarts empty (no persistence) faster than `fall` health checks was still the
   * master: its daemon stayed MASTER, the replica resynchronised from the empty server
   * and every acknowledged write was gone (Redis documents the hazard; Sentinel has it
   * too).
   * Fixed (issue 11 item 5, src/core/data-guard.ts): a lost health connection is checked
   * at once, a refused one is FAULT at the first check and re-checked every
   * DOWN_RECHECK_MS, and a Redis back with a new run_id behind its offset is made a
   * replica of the peer at once (REPLICAOF first: the peer's replica gets -NOMASTERLINK)
   * while the peer takes over. What is left: a Redis back within milliseconds whose
   * peer's replica happens to reconnect (once a second) before the guard or the peer's
   * promotion, a window of ~15 ms per restart (the histories below lose in 6 of 1600).
   */
  it('sim: a master Redis restarting empty within the fall window loses no acknowledged write', async () => {
    expect(await lost({
      seed: 0, timing: FAST_TIMING, lossFree: true,
      faults: [{ kind: 'redis-crash', node: 'a', at: 1000, durationMs: 5, keepData: false }],
    })).toEqual([]);
  });

  it('sim: empty restarts of the master Redis (1 ms to 400 ms) keep the data in all but the reconnect window', async () => {
    let histories = 0;
    let losing = 0;
    for (const timing of [FAST_TIMING, DEFAULT_TIMING]) {
      for (let seed = 0; seed < 100; seed++) {
        for (const durationMs of [1, 5, 50, 400]) {
          const r = await simulate({ seed, timing, lossFree: true, faults: [{ kind: 'redis-crash', node: 'a', at: 5000 + seed * 7, durationMs, keepData: false }] });
          const master = (['a', 'b'] as const).find((n) => r.pair.runtime(n)?.current.role === 'MASTER');
          expect(master, r.trace.join('\n')).toBeDefined();
          histories += 1;
          if (lostWrites(r.pair, master!).some((w) => !r.pair.redis.excused.has(w.id))) losing += 1;
        }
      }
    }
    console.log(`empty restarts: ${losing} of ${histories} histories lost acknowledged writes (the reconnect window)`);
    expect(losing).toBeLessThanOrEqual(Math.ceil(histories * 0.01));
  }, 120_000);

  /*
   * 5. After the peer reported FAULT, a takeover never catches up from it
   * (`takeOver`: "a peer that reported FAULT has a dead Redis"). But a Redis that crashed
   * often restarts at once (systemd), with its data and as a master: between its restart
   * and its node's VIP release (or, with maintenance on, until maintenance ends and the
   * node goes FAULT on its not-yet-risen health) it acknowledges writes through the VIP,
   * and they are discarded when it is made to follow the new master, which never asked
   * for them. The window is short (the release's latency, or the few checks of `rise`);
   * catching up anyway costs one refused connection when the Redis is really down (the
   * connect timeout only when the host is). Expected: no loss, or the window documented.
   * Workaround in the simulation: the no-loss check leaves out what such a promotion
   * leaves behind on the peer (`RedisModel.excused`) and writes acknowledged while the
   * node was FAULT (`lostWrites` in invariants.ts).
   */
  openFinding('sim: a Redis restarting just after its node went FAULT loses no acknowledged write', async () => {
    // A write acknowledged by a's restarted Redis while a was FAULT (its VIP release in
    // flight), b took over without catch-up. (Re-found after the data guard: a lost health
    // connection is now checked at once and a refused one is FAULT at the first check, so
    // only a Redis back within a few milliseconds still meets the window; re-found again
    // once the FAULT advert of a refused Redis went out before the release: seed 2 at
    // 1049 ms no longer met it, seed 0 at 1050 ms does.)
    const r = await simulate({
      seed: 0, timing: FAST_TIMING, lossFree: true,
      faults: [{ kind: 'redis-crash', node: 'a', at: 1050, durationMs: 6, keepData: true }],
    });
    expect(r.pair.runtime('b')?.current.role).toBe('MASTER');
    expect(lostWrites(r.pair, 'b')).toEqual([]);
  });

  /*
   * 6. Maintenance ended right after a stall: takeover on a stale view of the peer.
   * B's daemon stalled during maintenance, and the operator's `maintenance off` waited in
   * its socket. On waking, B runs its late timers (`stalled`: deadlines restart, so a
   * takeover needs a whole fresh silent interval), then the queued request, before A's
   * queued adverts: `resume` checks the peer's liveness from `receivedAtMs`, finds it 3.6 s
   * old, and takes over at once although A is alive and master. Here it also lost 136
   * writes, through finding 7 (B's Redis had restarted as a master during maintenance, so
   * its data was far behind). Expected: after a stall, `resume` (like the timers) waits a
   * fresh interval for the peer.
   * Fixed (core/maintenance.ts): `resume` leaves a master-down deadline that is still
   * ahead (restarted by the stall) to decide.
   */
  it('core: maintenance off just after a stall does not take over on the peer\'s pre-stall silence', () => {
    const s: CoreState = {
      ...initialState(0, { epoch: 0, knownEpoch: 0, maintenance: { on: true, gen: 1 } }), role: 'BACKUP',
      timers: { 'master-down': 3648, advert: 1000 }, peer: { ...masterA, epoch: 0, maintenanceGen: 1 },
      health: { healthy: true, consecutiveOk: 3, consecutiveFail: 0, detail: 'PONG', redis: replica, checkedAtMs: 0 },
    };
    const stalled = step(s, { type: 'stalled', stalledMs: 3600 }, 4000, config).state;
    const r = step(stalled, { type: 'maintenance-requested', requestId: 'm', on: false, user: 'op' }, 4000, config);
    expect(r.state.role).toBe('BACKUP');
    expect(r.actions.filter((a) => a.type === 'promote-redis')).toEqual([]);
  });

  it('sim: maintenance off reaching a stalled backup neither fails over nor loses a write', async () => {
    // Trace: b BACKUP->MASTER e1 at 19708 ms "maintenance off (requested by sim): no advert
    // from a for 3649 ms"; a steps down at 19710 ms; 136 writes a took since 6200 ms lost.
    const r = await simulate({
      seed: 0, timing: DEFAULT_TIMING, lossFree: true,
      faults: [
        { kind: 'redis-crash', node: 'b', at: 6129, durationMs: 1876, keepData: true },
        { kind: 'maintenance', node: 'a', offOn: 'b', at: 8205, durationMs: 7855 },
        { kind: 'stall', node: 'b', at: 16060, durationMs: 3648 },
      ],
    });
    expect(r.trace.filter((l) => / b BACKUP->MASTER /.test(l))).toEqual([]);
    expect(lostWrites(r.pair, 'a')).toEqual([]);
  });

  /*
   * 7. The catch-up of a takeover loses the race with the old master's own demotion.
   * `takeOver` advertises MASTER (with the new epoch) before it promotes, so that the
   * peer learns early; a peer that is alive hears it and, its Redis being a master while
   * the peer is MASTER, re-points its Redis to follow us (`reconcileReplica`) or steps
   * down and does. Our catch-up, meanwhile, found that Redis a master, issued REPLICAOF
   * towards it, and now waits for a link to a server that has become our replica (or
   * finds it "not a master" at its probe): it is abandoned, we promote what we have, and
   * the peer's resync discards everything only it held. Expected: a catch-up whose source
   * was a master when the takeover began is not defeated by that source turning into our
   * replica.
   * Fixed (core/common.ts, core/transitions.ts): a node taking over says so in its adverts
   * (`takingOver`) until its promotion has finished, and the peer leaves its Redis alone
   * meanwhile: the catch-up makes it a replica itself once it has caught up. (The first
   * history of this finding, two short link failures in a row, had drifted into finding 5
   * as the product changed; the history below, found for finding 8, lost this way since.)
   */
  it('core: a backup leaves its master Redis to a peer still taking over', () => {
    const master: RedisSnapshot = { ...replica, role: 'master', masterHost: null, masterPort: null, linkUp: false, offset: 300 };
    const s: CoreState = {
      ...initialState(0, { epoch: 1, knownEpoch: 1 }), role: 'BACKUP',
      health: { healthy: true, consecutiveOk: 3, consecutiveFail: 0, detail: 'PONG', redis: master, checkedAtMs: 0 },
    };
    const advert: Advert = {
      groupId: 51, nodeName: 'a', state: 'MASTER', priority: 100, advertIntervalMs: 1000, bootTimeMs: 1, seq: 1, echoBootTimeMs: 0, epoch: 2,
      flags: { ...flags, holdsVip: false, takingOver: true }, maintenanceGen: 0, redis: { role: 'master', replId: '2'.repeat(40), replId2: '', offset: 100, secondOffset: -1 },
    };
    const r = step(s, { type: 'advert-received', advert, fromAddress: '10.77.0.11' }, 10, config);
    expect(r.actions.filter((a) => a.type === 'replicate-from')).toEqual([]);
  });

  it('sim: a takeover whose old master hears it first loses no acknowledged write', async () => {
    // Trace before the fix: b BACKUP->MASTER e1 19707 (catch-up from a); a hears b's
    // MASTER advert and re-points its Redis at b 19713; b's probe finds a "not a master"
    // 19720 and promotes its older data; #152-154 (a, 15200-15400) lost.
    expect(await violationsAndLost({
      seed: 22, timing: DEFAULT_TIMING, lossFree: true,
      faults: [
        { kind: 'link-down', node: 'a', at: 14229, durationMs: 900 },
        { kind: 'redis-crash', node: 'b', at: 14351, durationMs: 1200, keepData: true },
        { kind: 'maintenance', node: 'a', offOn: 'a', at: 7885, durationMs: 7607 },
        { kind: 'flaky', node: 'a', at: 6809, durationMs: 4242, rate: 0.05 },
      ],
    })).toEqual([]);
  });

  /*
   * 8. A takeover's catch-up follows the peer's Redis even when its history is older than
   * ours, and so throws our newer writes away. B's Redis, a replica, crashed while A kept
   * taking writes; A's link then went down (FAULT); B's Redis came back as a master with
   * its older data; both nodes BACKUP with both Redis masters; A took over with a
   * catch-up from B: REPLICAOF B (a full resync) replaced A's data with B's older one.
   * `PeerHandover` only checked that the peer is a master (and not a replica); it did not
   * compare histories (replid, replid2, offsets say which one is ahead). Expected: no
   * catch-up from a peer whose history does not contain ours.
   * Fixed (adapters/redis/takeover.ts, core/history.ts `resyncWouldDiscard`): the catch-up
   * is skipped when the peer's history lacks writes ours holds, or when the ids do not link
   * the two and ours counts more bytes (unless our Redis already follows it); the promotion
   * goes ahead with what we have and the peer re-points its Redis once its history allows.
   * The simulation's adapter does the same. (The first history of this finding became
   * finding 7's; this one was found by a search over Redis crashes and link failures.)
   */
  it('core: following a peer whose Redis restarted with older data would discard ours', () => {
    const ours = { replId: '1'.repeat(40), replId2: '', offset: 6300, secondOffset: -1 };
    const restarted = { replId: '2'.repeat(40), replId2: '', offset: 5500, secondOffset: -1 };
    expect(resyncWouldDiscard(restarted, ours, false)).toMatch(/is not linked to .*which counts more bytes/);
    expect(resyncWouldDiscard(ours, restarted, false)).toBeNull();
  });

  it('sim: a catch-up from a peer with older data loses no acknowledged write', async () => {
    // Trace before the fix: b's Redis crashed 6667, a FAULT 8126 (link down), b's Redis
    // back with its data 8567, both BACKUP, b and a take over at once (e1, 12729 and
    // 12733); a's catch-up makes its Redis a replica of b's older one: #67-74 lost.
    expect(await violationsAndLost({
      seed: 1813464, timing: DEFAULT_TIMING, lossFree: true,
      faults: [
        { kind: 'redis-crash', node: 'b', at: 6667, durationMs: 1900, keepData: true },
        { kind: 'link-down', node: 'a', at: 7467, durationMs: 1000 },
      ],
    })).toEqual([]);
  });

  /*
   * 9. Two masters of the same epoch are told apart by priority, not by whose Redis took
   * the writes. B's daemon started while A's was down, found its Redis a master (it had
   * restarted without its REPLICAOF) and, hearing no master, adopted it without a new
   * epoch (`adoptMaster`, epoch 0) and took writes; A's daemon came back, found its own
   * Redis a master, and adopted too, "outranking" B at the same epoch by priority; B
   * stepped down and its writes were discarded. Expected: INIT does not contest a live
   * MASTER peer unless it outranks it by epoch, or a node that adopts with no peer heard
   * takes a new epoch (as `takeOverAsIs` does).
   * Fixed (core/step.ts `decideFromInit`): INIT contests a live master only with a newer
   * epoch, and only when the master's Redis holds nothing ours lacks; otherwise it goes
   * BACKUP, and its Redis follows the master's if that history holds it.
   */
  it('core: INIT does not contest a live master of its own epoch by priority', () => {
    const a: CoreConfig = { ...config, nodeName: 'a', nodeAddress: '10.77.0.11', priority: 100, peerRedis: { host: '10.77.0.12', port: 6379 } };
    const master: RedisSnapshot = { ...replica, role: 'master', masterHost: null, masterPort: null, linkUp: false };
    const started = step(initialState(0, { epoch: 0, knownEpoch: 0 }), { type: 'started' }, 0, a).state;
    const checked = step(started, { type: 'health-checked', ok: true, detail: 'PONG', redis: master }, 10, a).state;
    const advert: Advert = {
      groupId: 51, nodeName: 'b', state: 'MASTER', priority: 90, advertIntervalMs: 1000, bootTimeMs: 1, seq: 1, echoBootTimeMs: 0, epoch: 0,
      flags, maintenanceGen: 0, redis: { role: 'master', replId: '3'.repeat(40), replId2: '', offset: 2200, secondOffset: -1 },
    };
    const r = step(checked, { type: 'advert-received', advert, fromAddress: '10.77.0.12' }, 20, a);
    expect(r.state.role).toBe('BACKUP');
  });

  it('sim: a daemon restarting next to a master that adopted alone loses no acknowledged write', async () => {
    // Trace before the fix: b INIT->MASTER e0 419 ("no peer master was heard"), write #22
    // on b at 440, a INIT->MASTER e0 455 ("outranks peer master b"), b MASTER->BACKUP 457;
    // #22 lost.
    expect(await violationsAndLost({
      seed: -1622674111, timing: FAST_TIMING, lossFree: true,
      faults: [
        { kind: 'restart', node: 'a', at: 86, durationMs: 332, how: 'crash', execStopPost: false },
        { kind: 'redis-crash', node: 'b', at: 0, durationMs: 5, keepData: true },
      ],
    })).toEqual([]);
  });

  /*
   * 10. The core demotes a master Redis on the peer's word alone (a MASTER advert, a
   * newer epoch), never checking that the peer's Redis holds its writes; whatever it holds
   * beyond them is discarded by the resync. Findings 7 and 9 are two ways into it; others
   * the simulation met: the peer advertises MASTER while its promotion has not caught up
   * (after our FAULT it does not even try: 5), or its promotion came from a stale handover
   * (1), or its epoch is newer but its data older. The plainest case: B was MASTER (epoch
   * 1, writes #67-69) after A's link went down; then B's link went down (FAULT) and A's
   * daemon restarted: A's Redis was still a master (A never demoted it: FAULT, then
   * killed), B advertised FAULT, so A adopted its Redis as master at epoch 0
   * (`decideFromInit`: the peer cannot serve). B came back BACKUP and `reconcileReplica`
   * re-pointed its Redis at A ("local Redis is a master while a is MASTER (epoch 0)"),
   * although B's epoch (1) is newer than A's (0): B's writes were discarded. Expected: a
   * node does not demote a Redis that holds writes its new master lacks (compare replid,
   * replid2 and offsets, or at least epochs) and contests the role instead; INIT does not
   * adopt over a peer known to hold a newer epoch.
   * Fixed (core/transitions.ts `reconcileReplica`, core/step.ts `decideFromInit`): INIT
   * does not adopt over a FAULT peer of a newer epoch whose history its Redis does not hold
   * (it goes BACKUP, and takes over with a new epoch if the peer stays FAULT); a node does
   * not re-point a Redis onto an older point of its own history (the master's Redis holds
   * nothing ours lacks, ours holds more): a backup whose Redis is a master takes the role
   * over as it is (the old master's Redis then follows it, losing nothing); with a quorum,
   * in FAULT, or for a replica, the Redis is kept as it is, `redis-diverged` audited, said
   * in `status`, looked at again at every health check. Histories that really diverged
   * (both wrote past the fork: a split brain, or the failover's asynchronous-replication
   * window) still resolve as before: the loser gives way, the discarded bytes audited.
   */
  it('core: a backup whose Redis holds a newer epoch does not re-point it at an older master', () => {
    // b's Redis was promoted out of the one a adopted (a's replid at a's offset 200) and took writes.
    const master: RedisSnapshot = {
      ...replica, role: 'master', replId: '3'.repeat(40), replId2: '2'.repeat(40), secondOffset: 201, offset: 6900,
      masterHost: null, masterPort: null, linkUp: false,
    };
    const s: CoreState = {
      ...initialState(0, { epoch: 1, knownEpoch: 1 }), role: 'BACKUP', peer: { ...masterA, epoch: 0 },
      health: { healthy: true, consecutiveOk: 3, consecutiveFail: 0, detail: 'PONG', redis: master, checkedAtMs: 0 },
    };
    const r = step(s, { type: 'health-checked', ok: true, detail: 'PONG', redis: master, startedAtMs: 10 }, 10, config);
    expect(r.actions.filter((a) => a.type === 'replicate-from')).toEqual([]);
    // It takes the role over as it is instead; a's Redis then follows it, losing nothing.
    expect(r.state).toMatchObject({ role: 'MASTER', epoch: 2 });
    expect(r.reason).toMatch(/contesting a: .*older point of the local/);
  });

  it('sim: link failures on both nodes and a daemon restart lose no acknowledged write', async () => {
    // Trace before the fix: a FAULT 6657, b MASTER e1 6661 (writes acknowledged), a
    // killed 6690, b FAULT 7615, b BACKUP 11616, a restarted: a INIT->MASTER e0 11616
    // "peer b is FAULT", b re-points its Redis at a; 3 writes lost.
    expect(await violationsAndLost({
      seed: 137167526, timing: DEFAULT_TIMING, lossFree: true,
      faults: [
        { kind: 'link-down', node: 'b', at: 6994, durationMs: 3620 },
        { kind: 'link-down', node: 'a', at: 5701, durationMs: 954 },
        { kind: 'restart', node: 'a', at: 6690, durationMs: 4464, how: 'crash', execStopPost: false },
      ],
    })).toEqual([]);
  });
});
