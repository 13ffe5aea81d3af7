/**
 * The quorum bridge (src/daemon/quorum-bridge.ts) over the real etcd adapter and a real
 * etcd member (test/helpers/etcd-cluster.ts): the answers and notices the core gets.
 * Run under the shared lock: flock /tmp/redis-ha-e2e.lock npx vitest run test/daemon/quorum-bridge.test.ts
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdQuorum } from '../../src/adapters/quorum/index.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { QuorumBridge } from '../../src/daemon/quorum-bridge.js';
import type { QuorumNotice } from '../../src/daemon/runtime.js';
import { startEtcdCluster, stopAllEtcdClusters, type EtcdCluster } from '../helpers/etcd-cluster.js';

const TTL_S = 1;
/** etcd checks expiry every 500 ms; the rest is for a busy machine. */
const BOUND_MS = 6_000;

let cluster: EtcdCluster;
const opened: EtcdQuorum[] = [];
let group = 0;

beforeAll(async () => {
  cluster = await startEtcdCluster(1);
});
afterEach(() => {
  for (const q of opened.splice(0)) q.close();
});
afterAll(async () => {
  await stopAllEtcdClusters();
});

async function bridge(node: string, clusterName: string): Promise<{ bridge: QuorumBridge; notices: QuorumNotice[] }> {
  const quorum = await EtcdQuorum.open({
    endpoints: cluster.endpoints, keyPrefix: '/redis-ha-test', clusterName, nodeName: node, leaseTtlS: TTL_S, callTimeoutMs: 500,
  });
  opened.push(quorum);
  const b = new QuorumBridge(quorum, silentLogger());
  const notices: QuorumNotice[] = [];
  b.onEvent((n) => notices.push(n));
  return { bridge: b, notices };
}

async function until(what: string, check: () => boolean): Promise<void> {
  const end = performance.now() + BOUND_MS;
  while (performance.now() < end) {
    if (check()) return;
    await sleep(25);
  }
  throw new Error(`not within ${BOUND_MS} ms: ${what}`);
}

describe('quorum bridge over etcd', () => {
  it('held, then held by the other node until the holder releases, then held by the other', async () => {
    group += 1;
    const name = `bridge-${group}-${process.pid}`;
    const a = await bridge('a', name);
    const b = await bridge('b', name);
    const first = await a.bridge.acquire(1);
    expect(first).toMatchObject({ outcome: 'held', epoch: 1 });
    if (first.outcome === 'held') expect(first.validUntilAtMs).toBeGreaterThan(performance.now());
    expect(await b.bridge.acquire(2)).toMatchObject({ outcome: 'held-by-other', holder: { node: 'a', epoch: 1 } });
    // A raise of its own key keeps it, in the new epoch.
    expect(await a.bridge.acquire(3)).toMatchObject({ outcome: 'held', epoch: 3 });
    await until('a renewal notice', () => a.notices.some((n) => n.type === 'quorum-renewed'));
    await a.bridge.release();
    expect(await b.bridge.acquire(4)).toMatchObject({ outcome: 'held', epoch: 4 });
  });

  it('etcd frozen: acquire answers unreachable, and the holder is told its lease is lost', async () => {
    group += 1;
    const a = await bridge('a', `bridge-${group}-${process.pid}`);
    expect(await a.bridge.acquire(1)).toMatchObject({ outcome: 'held' });
    expect(await cluster.freeze(0), 'etcd did not stop').toBe(true);
    try {
      await until('a lost notice', () => a.notices.some((n) => n.type === 'quorum-lost'));
      expect(a.notices.find((n) => n.type === 'quorum-lost')).toMatchObject({ reason: 'deadline-passed' });
      expect(await a.bridge.acquire(1)).toMatchObject({ outcome: 'unreachable' });
    } finally {
      cluster.signal(0, 'SIGCONT');
      expect(await cluster.settle()).toBe(true);
    }
  });
});
