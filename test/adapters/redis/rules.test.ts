/**
 * The pure rules of the Redis role changes (`src/adapters/redis/rules.ts`), as tables:
 * pause budgets, versions, refusals, the timing of FAILOVER against the replica's
 * acknowledgements, and the outcome tables of FAILOVER and of a failed promotion. No
 * Redis, no clock: each row is an input and the answer the switchover or the
 * takeover acts on.
 */
import { describe, expect, it } from 'vitest';
import type { RedisSnapshot } from '../../../src/core/types.js';
import type { ReplicaEntry } from '../../../src/adapters/redis/info.js';
import {
  abortedFailoverLocal,
  abortedFailoverOutcome,
  ACK_ALIGN_BOUND_MS,
  ACK_LEAD_MS,
  ACK_POLL_MS,
  ackTiming,
  catchUpVerdict,
  chooseMethod,
  drainPollBoundMs,
  failedPromotionOutcome,
  failoverProgress,
  failoverWatchMs,
  localRefusal,
  notConnectedRefusal,
  promotionPauseMs,
  REPLICA_ACK_PERIOD_MS,
  renewedPauseBoundMs,
  replicaRefusal,
  supportsWritePause,
  switchoverPauseMs,
  takeoverPauseMs,
  targetRefusal,
  type AckView,
} from '../../../src/adapters/redis/rules.js';

const REPL_ID = '28aba07e3ee6454d6c6888370d45ac3957ab1e5d';
const OTHER_ID = '1f03f7698bda7ce1594ea2775d39c36d8e7b3030';
const NO_ID = '0000000000000000000000000000000000000000';

function master(offset = 5_000, replId = REPL_ID): RedisSnapshot {
  return {
    role: 'master', replId, replId2: NO_ID, offset, secondOffset: -1,
    masterHost: null, masterPort: null, linkUp: false, syncInProgress: false, connectedReplicas: 1,
  };
}

function replica(of: { host: string; port: number }, overrides: Partial<RedisSnapshot> = {}): RedisSnapshot {
  return {
    role: 'replica', replId: REPL_ID, replId2: NO_ID, offset: 5_000, secondOffset: -1,
    masterHost: of.host, masterPort: of.port, linkUp: true, syncInProgress: false, connectedReplicas: 0,
    ...overrides,
  };
}

function entry(overrides: Partial<ReplicaEntry> = {}): ReplicaEntry {
  return { index: 0, ip: '10.0.0.2', port: 6379, state: 'online', offset: 5_000, lagS: 0, ...overrides };
}

const TARGET = { host: '10.0.0.2', port: 6379 };
const ELSEWHERE = { host: '10.0.0.9', port: 6379 };
const NAME = '10.0.0.2:6379';

describe('pause budgets', () => {
  it('covers every promotion step at its own bound', () => {
    const bounds = { localTimeoutMs: 2_000, peerTimeoutMs: 1_000 };
    const pauseMs = promotionPauseMs(bounds);
    // The renewal's reply, setMasterAuth and REPLICAOF locally; REPLICAOF NO ONE and the
    // last role poll on the target; the role wait (1 s) itself.
    expect(pauseMs).toBeGreaterThanOrEqual(3 * 2_000 + 2 * 1_000 + 1_000);
    expect(promotionPauseMs({ ...bounds, localTimeoutMs: 2_500 }) - pauseMs).toBe(3 * 500);
    expect(promotionPauseMs({ ...bounds, peerTimeoutMs: 1_500 }) - pauseMs).toBe(2 * 500);
  });

  it.each([
    // localTimeoutMs, peerTimeoutMs, expected: 3 × local + 2 × peer + role wait (1000) + poll (10) + margin (1000)
    [2_000, 1_000, 3 * 2_000 + 2 * 1_000 + 1_010 + 1_000],
    [2_000, 500, 3 * 2_000 + 2 * 500 + 1_010 + 1_000],
    [5_000, 2_000, 3 * 5_000 + 2 * 2_000 + 1_010 + 1_000],
  ])('renews the pause for local %i ms and peer %i ms commands to %i ms', (localTimeoutMs, peerTimeoutMs, expected) => {
    expect(promotionPauseMs({ localTimeoutMs, peerTimeoutMs })).toBe(expected);
  });

  it.each([
    // what, bound, expected
    ['switchover first pause, 300 ms timeout', switchoverPauseMs(300), 3_300],
    ['switchover first pause, 5 s timeout', switchoverPauseMs(5_000), 8_000],
    ['takeover pause, 120 s catch-up bound', takeoverPauseMs(120_000), 123_000],
    ['takeover pause, no catch-up bound', takeoverPauseMs(0), 3_000],
    ['FAILOVER watched, 500 ms TIMEOUT', failoverWatchMs(500), 2_500],
  ])('%s: %i ms', (_what, bound, expected) => {
    expect(bound).toBe(expected);
  });

  it.each([
    // previous bound (null: none), renewal, the bound a pause may still run to
    [3_300, 8_010, 8_010],
    [10_000, 8_010, 10_000],
    [null, 8_010, 8_010],
  ])('a renewal after a pause of %s ms by %i ms may run to %i ms', (previous, renewal, expected) => {
    expect(renewedPauseBoundMs(previous, renewal)).toBe(expected);
  });

  it.each([
    // peerTimeoutMs, remaining until the catch-up deadline, the poll's bound
    [1_000, 5_000, 1_000],
    [1_000, 300, 300],
    [1_000, 299.2, 300],
    [1_000, 20, 50],
    [1_000, -40, 50],
    [30, 300, 30],
  ])('a catch-up poll with peer timeout %i ms and %i ms left is bounded by %i ms', (peerTimeoutMs, remaining, expected) => {
    expect(drainPollBoundMs(peerTimeoutMs, remaining)).toBe(expected);
  });
});

describe('versions', () => {
  it('knows which versions can pause only writes', () => {
    const table: [string, boolean][] = [
      ['7.0.15', true],
      ['6.2.0', true],
      ['6.0.16', false],
      ['5.0.7', false],
      ['', true],
      ['7.2.4-rc1', true],
      ['10.0.0', true],
    ];
    for (const [version, expected] of table) expect(supportsWritePause(version), version).toBe(expected);
  });

  it.each([
    // requested, version, method or refusal
    ['auto', '7.0.15', { method: 'failover', modern: true }],
    ['auto', '6.0.16', { method: 'pause', modern: false }],
    ['pause', '7.0.15', { method: 'pause', modern: true }],
    ['pause', '5.0.7', { method: 'pause', modern: false }],
    ['failover', '7.0.15', { method: 'failover', modern: true }],
    ['failover', '6.0.16', { refusal: 'FAILOVER needs Redis 6.2 or newer (local Redis is 6.0.16)' }],
  ] as const)('switchover method %s on Redis %s', (requested, version, expected) => {
    expect(chooseMethod(requested, version)).toEqual(expected);
  });
});

describe('refusals', () => {
  it.each([
    ['a master with no failover under way', master(), 'no-failover', null],
    ['a replica', replica(ELSEWHERE), 'no-failover', /^local Redis is not a master \(role replica of 10\.0\.0\.9:6379, link up/],
    ['a master already failing over', master(), 'waiting-for-sync', /^a FAILOVER is already under way locally \(waiting-for-sync\)$/],
  ])('local Redis: %s', (_what, local, failoverState, expected) => {
    const refusal = localRefusal(local, failoverState);
    if (expected === null) expect(refusal).toBeNull();
    else expect(refusal).toMatch(expected);
  });

  const bounds = { force: false, maxLagBytes: 1_000, maxAckAgeS: 5 };
  it.each([
    ['online, in step', entry(), bounds, null],
    ['online, at both bounds', entry({ offset: 4_000, lagS: 5 }), bounds, null],
    ['still in its full sync', entry({ state: 'wait_bgsave' }), bounds, `replica ${NAME} is not online (state wait_bgsave)`],
    ['in its full sync, forced', entry({ state: 'send_bulk' }), { ...bounds, force: true }, `replica ${NAME} is not online (state send_bulk)`],
    ['1001 bytes behind', entry({ offset: 3_999 }), bounds, `replica ${NAME} lags 1001 bytes behind (bound 1000 bytes)`],
    ['6 s since its last ack', entry({ lagS: 6 }), bounds, `replica ${NAME} lags 6 s since its last ack (bound 5 s)`],
    ['far behind in bytes and time, forced', entry({ offset: 0, lagS: 60 }), { ...bounds, force: true }, null],
    ['ahead of the master (acknowledged more than read)', entry({ offset: 6_000 }), bounds, null],
  ])('replica as the master lists it: %s', (_what, listed, request, expected) => {
    expect(replicaRefusal(NAME, listed, master(), request)).toBe(expected);
  });

  it.each([
    ['a replica of our history, link up', replica({ host: '10.0.0.1', port: 6379 }), null],
    ['a master', master(), `${NAME} is not a replica (role master, offset 5000, 1 replica(s))`],
    [
      'a replica with its link down',
      replica({ host: '10.0.0.1', port: 6379 }, { linkUp: false }),
      `replica ${NAME} has its link down (role replica of 10.0.0.1:6379, link down, offset 5000)`,
    ],
    [
      'a replica of another history',
      replica({ host: '10.0.0.1', port: 6379 }, { replId: OTHER_ID }),
      `replica ${NAME} follows another history (replid ${OTHER_ID}, ours ${REPL_ID})`,
    ],
  ])('target as it answers itself: %s', (_what, target, expected) => {
    expect(targetRefusal(NAME, target, master())).toBe(expected);
  });

  it.each([
    ['no replicas at all', [], `replica ${NAME} is not connected to this master (connected replicas: none)`],
    [
      'another replica on another port',
      [entry({ ip: '10.0.0.3', port: 6380 })],
      `replica ${NAME} is not connected to this master (connected replicas: 10.0.0.3:6380 online)`,
    ],
    [
      'a replica on the same port, listed by another address',
      [entry({ ip: '192.168.1.2' }), entry({ index: 1, ip: '::1', port: 6380, state: 'wait_bgsave' })],
      `replica ${NAME} is not connected to this master (connected replicas: 192.168.1.2:6379 online, [::1]:6380 wait_bgsave); ` +
        'a replica is listed by its source address (or replica-announce-ip), which must match peer_redis',
    ],
  ])('target not listed: %s', (_what, entries, expected) => {
    expect(notConnectedRefusal(NAME, TARGET, entries)).toBe(expected);
  });
});

describe('FAILOVER timing against the replica acknowledgements', () => {
  const behind: AckView = { acked: 4_000, master: 5_000 };
  it.each([
    // what, first reading, latest reading (undefined: none yet), elapsed ms, expected
    ['everything acknowledged', { acked: 5_000, master: 5_000 }, undefined, 0, { kind: 'at-once' }],
    ['the replica not listed', null, undefined, 0, { kind: 'at-once' }],
    ['behind, first reading', behind, undefined, 0, { kind: 'poll', afterMs: ACK_POLL_MS }],
    ['no acknowledgement yet', behind, { acked: 4_000, master: 5_400 }, 400, { kind: 'poll', afterMs: ACK_POLL_MS }],
    ['an acknowledgement just came', behind, { acked: 5_200, master: 5_400 }, 700, { kind: 'ack-seen', waitMs: REPLICA_ACK_PERIOD_MS - ACK_LEAD_MS }],
    ['none within the bound', behind, { acked: 4_000, master: 9_000 }, ACK_ALIGN_BOUND_MS, { kind: 'untimed' }],
    ['an acknowledgement seen at the bound', behind, { acked: 4_500, master: 9_000 }, ACK_ALIGN_BOUND_MS, { kind: 'ack-seen', waitMs: 940 }],
    ['the replica vanished', behind, null, 100, { kind: 'untimed' }],
  ])('%s', (_what, first, latest, elapsedMs, expected) => {
    expect(ackTiming(first, latest, elapsedMs)).toEqual(expected);
  });

  it('issues FAILOVER 60 ms before the next acknowledgement is due', () => {
    expect(REPLICA_ACK_PERIOD_MS - ACK_LEAD_MS).toBe(940);
    expect(ACK_ALIGN_BOUND_MS).toBeGreaterThan(REPLICA_ACK_PERIOD_MS);
  });
});

describe('the FAILOVER outcome table', () => {
  const NEW_MASTER = TARGET;
  const view = (failoverState: string, snapshot: RedisSnapshot): { failoverState: string; snapshot: RedisSnapshot } => ({ failoverState, snapshot });
  it.each([
    // what, failover state / role, ran (answered or seen running), expected
    ['waiting for the replica', view('waiting-for-sync', master()), true, 'running'],
    ['demoted, waiting for PSYNC FAILOVER', view('failover-in-progress', replica(NEW_MASTER)), false, 'running'],
    ['ended, ours a replica of the target', view('no-failover', replica(NEW_MASTER)), true, 'done'],
    ['ended, unanswered, ours a replica of the target', view('no-failover', replica(NEW_MASTER)), false, 'done'],
    ['ended, ours master again', view('no-failover', master()), true, 'aborted-by-redis'],
    ['unanswered and never seen running, ours master', view('no-failover', master()), false, 'undecided'],
    ['ended, ours a replica of another server', view('no-failover', replica(ELSEWHERE)), true, 'unexpected'],
  ])('%s', (_what, seen, ran, expected) => {
    expect(failoverProgress(seen, NEW_MASTER, ran).kind).toBe(expected);
  });

  it.each([
    ['done', view('no-failover', replica(NEW_MASTER)), 'done'],
    ['aborted by Redis', view('no-failover', master()), 'rolled-back'],
    ['unexpected', view('no-failover', replica(ELSEWHERE)), 'failed'],
  ])('a FAILOVER that ended (%s) is %s', (_what, seen, outcome) => {
    expect(failoverProgress(seen, NEW_MASTER, true)).toMatchObject({ outcome });
  });

  it.each([
    // after our FAILOVER ABORT: what the local Redis says
    ['no answer', null, 'state-unknown', 'failed'],
    ['still failing over', view('failover-in-progress', replica(NEW_MASTER)), 'state-unknown', 'failed'],
    ['completed before the abort', view('no-failover', replica(NEW_MASTER)), 'completed', 'done'],
    ['a replica of another server', view('no-failover', replica(ELSEWHERE)), 'not-master', 'failed'],
    ['master again', view('no-failover', master()), 'master', undefined],
  ])('after FAILOVER ABORT, local Redis %s', (_what, seen, kind, outcome) => {
    const verdict = abortedFailoverLocal(seen, NEW_MASTER);
    expect(verdict.kind).toBe(kind);
    expect('outcome' in verdict ? verdict.outcome : undefined).toBe(outcome);
  });

  it.each([
    // ours master again; target role (null: no answer), FAILOVER never answered nor seen running
    ['master', false, 'two-masters', 'failed'],
    ['master', true, 'two-masters', 'failed'],
    ['replica', true, 'fate-unknown', 'failed'],
    [null, true, 'fate-unknown', 'failed'],
    ['replica', false, 'rolled-back', 'rolled-back'],
    [null, false, 'rolled-back', 'rolled-back'],
  ] as const)('after FAILOVER ABORT with ours master, target %s, unanswered %s: %s', (targetRole, unanswered, kind, outcome) => {
    expect(abortedFailoverOutcome(targetRole, unanswered)).toEqual({ kind, outcome });
  });
});

describe('the pause method', () => {
  it.each([
    // REPLICAOF NO ONE on the target failed: refused (a reply) or unanswered; the target's role as re-read
    [true, 'master', 'done'],
    [true, 'replica', 'rolled-back'],
    [true, null, 'failed'],
    [false, 'master', 'done'],
    [false, 'replica', 'failed'],
    [false, null, 'failed'],
  ] as const)('REPLICAOF NO ONE refused %s, target then %s: %s', (refused, targetRole, expected) => {
    expect(failedPromotionOutcome(refused, targetRole)).toBe(expected);
  });

  it.each([
    // caught up, forced, target answering at the end: verdict
    [true, false, true, 'caught-up'],
    [true, true, false, 'caught-up'],
    [false, false, true, 'roll-back'],
    [false, false, false, 'roll-back'],
    [false, true, false, 'roll-back'],
    [false, true, true, 'promote-forced'],
  ] as const)('catch-up done %s, forced %s, answering %s: %s', (caughtUp, force, answering, expected) => {
    expect(catchUpVerdict({ caughtUp, force, answering })).toBe(expected);
  });
});
