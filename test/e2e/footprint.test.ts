/**
 * What the daemon loads, on a real pair (README "Footprint"): with `quorum.backend: none`
 * (the default) it never loads the etcd client (etcd3, grpc-js), and with metrics
 * disabled (the default) never prom-client; node b, with metrics enabled, does load
 * prom-client. Both run with the product's Node flags (`NODE_FLAGS`), as the lab and the
 * launcher start them. Recorded by a preload (`test/helpers/record-modules.cjs`) when
 * each daemon exits after a planned stop.
 *
 * Root only.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { isRoot } from '../../tools/lab/netns.js';
import { PairLab, startPair, type PairNode } from '../../tools/lab/pair.js';

const STEP_TIMEOUT_MS = 120_000;
const SETTLE_TIMEOUT_MS = 30_000;
const PRELOAD = join(import.meta.dirname, '../helpers/record-modules.cjs');

const root = isRoot();
if (!root) console.warn('SKIPPING test/e2e/footprint.test.ts: the lab needs root (network namespaces)');
const describeRoot = root ? describe : describe.skip;

/** The node_modules packages among the recorded module paths (`@scope/name` or `name`). */
function packagesOf(modules: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const path of modules) {
    const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
    if (match?.[1]) names.add(match[1]);
  }
  return names;
}

describeRoot('what the daemon loads', () => {
  let lab: PairLab | null = null;
  let dir = '';
  const recorded = new Map<PairNode, { execArgv: string[]; packages: Set<string> }>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-ha-footprint-'));
    lab = await startPair({
      tag: 'rhfp1', subnet: '10.77.217', startDaemons: false,
      nodeFlags: ['--require', PRELOAD, ...NODE_FLAGS],
      daemon: { nodeB: { metrics: { enabled: true } } },
    });
    for (const node of ['a', 'b'] as const) lab.startDaemon(node, { env: { RECORD_MODULES_FILE: join(dir, `${node}.json`) } });
    const theLab = lab;
    await theLab.waitFor('a settled master', () => theLab.isSettledMaster('a'), SETTLE_TIMEOUT_MS);
    for (const node of ['b', 'a'] as const) {
      const stopped = await theLab.stopDaemon(node, 'SIGTERM');
      expect(stopped.forced, `daemon ${node} did not stop on SIGTERM`).toBe(false);
      const { execArgv, modules } = JSON.parse(readFileSync(join(dir, `${node}.json`), 'utf8')) as { execArgv: string[]; modules: string[] };
      recorded.set(node, { execArgv, packages: packagesOf(modules) });
    }
  }, STEP_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, STEP_TIMEOUT_MS);

  it('runs with the Node flags of the product', () => {
    for (const node of ['a', 'b'] as const) expect(recorded.get(node)?.execArgv).toEqual(expect.arrayContaining([...NODE_FLAGS]));
  });

  it('never loads the etcd client without quorum.backend etcd, nor prom-client without metrics', () => {
    const a = recorded.get('a')?.packages ?? new Set();
    // Recorded at all: the Redis client and the logger are there.
    expect([...a]).toEqual(expect.arrayContaining(['ioredis', 'pino']));
    for (const absent of ['etcd3', '@grpc/grpc-js', 'prom-client']) expect(a.has(absent), `a loaded ${absent}`).toBe(false);
  });

  it('loads prom-client when metrics are enabled, still not the etcd client', () => {
    const b = recorded.get('b')?.packages ?? new Set();
    expect(b.has('prom-client')).toBe(true);
    for (const absent of ['etcd3', '@grpc/grpc-js']) expect(b.has(absent), `b loaded ${absent}`).toBe(false);
  });
});
