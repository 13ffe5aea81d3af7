/**
 * Smoke test of the benchmark runner (the API, not the CLI): one redis-kill run of the
 * redis-ha setup on a fresh lab, end to end (daemons, samplers, writer, fault, repair,
 * settle, final set, teardown). Asserts outcomes with generous bounds; the timings are
 * printed, not asserted tightly. Root only (skipped loudly otherwise); runs compiled JS
 * from dist/ for the daemons and the writer, so `npm run build` first.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadSetups } from '../../tools/bench/registry.js';
import { describeRun, runOne } from '../../tools/bench/run.js';
import { isRoot, runOk } from '../../tools/lab/netns.js';
import { daemonEntry, writerEntry } from '../../tools/lab/pair.js';

const TAG = 'rhbsmk';
const SUBNET = '10.77.61';
/** Generous: the default profile fails over in ~1–2 s. */
const MAX_UNAVAILABLE_MS = 30_000;
const TEST_TIMEOUT_MS = 180_000;

const root = isRoot();
if (!root) console.warn('SKIPPING test/bench/bench-smoke.test.ts: the benchmark lab needs root (network namespaces)');
const describeRoot = root ? describe : describe.skip;

describeRoot('bench runner smoke: redis-ha × redis-kill', () => {
  it('recovers, ends healthy with the VIP on the new master, and loses nothing acknowledged after recovery', { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const entry of [daemonEntry(), writerEntry()]) {
      if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build && npm run build:tools`);
    }
    const [setup] = await loadSetups(['redis-ha']);
    if (!setup?.driver) throw new Error(`redis-ha setup unavailable: ${setup?.unavailable ?? 'not registered'}`);
    const lines: string[] = [];
    const result = await runOne({ setup, fault: 'redis-kill', run: 1, tag: TAG, subnet: SUBNET, log: (line) => lines.push(line) });
    console.log(`bench smoke: ${describeRun(result)}\n${lines.join('\n')}`);
    expect(result.status, result.reason).toBe('ok');
    const f = result.figures;
    if (!f) throw new Error('no figures');
    expect(f.recovered).toBe(true);
    expect(f.healthyAtEnd).toBe(true);
    expect(result.finalMaster).toBe('b');
    expect(result.endState).toEqual({ vip: 'b', a: 'replica', b: 'master' });
    expect(f.detectionMs).not.toBeNull();
    expect(f.unavailableMs).not.toBeNull();
    expect(f.unavailableMs ?? Infinity).toBeLessThan(MAX_UNAVAILABLE_MS);
    expect(f.acknowledged).toBeGreaterThan(1_000);
    expect(f.lostAfterRecovery).toBe(0);
    expect(f.unexpected).toBe(0);
    expect(f.failedApplied).toBe(0);
    expect(f.dualVipMs).toBeLessThan(1_000);
    // Torn down: no namespace or link of the run's tag is left.
    const namespaces = JSON.parse((await runOk(['ip', '-j', 'netns', 'list'])) || '[]') as Array<{ name: string }>;
    expect(namespaces.map((ns) => ns.name).filter((name) => name.startsWith(`${TAG}-`))).toEqual([]);
    const links = JSON.parse(await runOk(['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>;
    expect(links.map((link) => link.ifname).filter((name) => name.startsWith(TAG))).toEqual([]);
  });
});
