/**
 * Builders for tests of the quorum in the decision core (backend etcd): both nodes'
 * configurations, the quorum's answers, and b on its way from backup to master. Time is a
 * plain number.
 */
import type { CoreConfig, CoreState } from '../../src/core/state.js';
import { step, type StepResult } from '../../src/core/step.js';
import type { Event, QuorumAnswer, QuorumMemory } from '../../src/core/types.js';
import { A_ADDR, B_ADDR, advert, coreConfig, fired, heard, last, masterSnap, ok, replicaSnap, run } from './fixtures.js';

export const QUORUM = { backend: 'etcd', prefer: 'safety', retryMs: 500, fenceLeadMs: 530 } as const;
/** b (priority 90) with etcd. */
export const bCfg: CoreConfig = coreConfig({ quorum: QUORUM });
/** a (priority 100) with etcd. */
export const aCfg: CoreConfig = coreConfig({ nodeName: 'a', nodeAddress: A_ADDR, priority: 100, peerRedis: { host: B_ADDR, port: 6379 }, quorum: QUORUM });

export const answered = (epoch: number, answer: QuorumAnswer): Event => ({ type: 'quorum-answered', epoch, answer });
export const held = (epoch: number, validUntilAtMs: number): Event =>
  answered(epoch, { outcome: 'held', epoch, validUntilAtMs, memory: { last: null, relaxed: null }, detail: 'key was free: taken' });
/** etcd wrote this node's relaxed mark in `epoch` (`ok`), or refused it. */
export const relaxMarked = (epoch: number, ok = true): Event =>
  ({ type: 'quorum-marked', mark: { kind: 'relax', epoch }, ok, detail: ok ? 'relaxed mark written' : 'not the holder' });
/** etcd named what it remembers with the key (quorum-memory.ts). */
export const heldWith = (epoch: number, validUntilAtMs: number, memory: QuorumMemory): Event =>
  answered(epoch, { outcome: 'held', epoch, validUntilAtMs, memory, detail: 'key was free: taken' });
/** etcd names a (epoch 1) as the holder of the key b asks for in epoch 2. */
export const heldByOther: Event = answered(2, { outcome: 'held-by-other', holder: { node: 'a', epoch: 1 }, detail: 'held by a (epoch 1)' });

/** b, BACKUP behind master a (heard at 20 ms). */
export function backupB(): CoreState {
  return last(run(bCfg, [
    [0, { type: 'started' }],
    [10, ok(replicaSnap())],
    [20, heard(advert({ state: 'MASTER', epoch: 1 }))],
  ])).state;
}

/** b after a fell silent: its master-down timer fired at 5000 ms, it asks for the key. */
export function askingB(): StepResult {
  return step(backupB(), fired('master-down'), 5000, bCfg);
}

/** b promoted with the key held until 8000 ms (etcd named a as the holder first), its Redis a master, its relaxed mark written, VIP claimed. */
export function masterB(): CoreState {
  const asked = step(askingB().state, heldByOther, 5005, bCfg).state;
  const promoting = step(asked, held(2, 8000), 5010, bCfg).state;
  const promoted = step(promoting, { type: 'promotion-finished', ok: true, detail: 'promoted', redis: masterSnap() }, 5100, bCfg).state;
  const marked = step(promoted, relaxMarked(2), 5110, bCfg).state;
  return step(marked, { type: 'vip-claimed' }, 5200, bCfg).state;
}
