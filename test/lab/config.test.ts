/**
 * The lab's daemon configuration (`tools/lab/pair.ts`): typed by the product's own file
 * type (`RawConfig`), so a renamed key fails the typecheck (the `@ts-expect-error` lines
 * below stop compiling if the lab's type ever loosens), and accepted by the product's
 * own loader for both profiles, both nodes and the overrides the tests and the
 * benchmark use. No root, no network: the files are written to a temp dir.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { labNodeConfig, mergeConfig, nodePaths, PROFILES, type LabConfig, type LabProfile, type PairNode } from '../../tools/lab/pair.js';

const ADDRESSES = { a: '10.77.1.1', b: '10.77.1.2' } as const;
const VIP = '10.77.1.100';

/** Overrides the tests and the benchmark pass (test/e2e, tools/bench/setups/redis-ha.ts). */
const OVERRIDES: Readonly<Record<string, LabConfig>> = {
  none: {},
  'operations.test switchover': { switchover: { max_ack_age_s: 3 } },
  'service.test metrics': { metrics: { enabled: true } },
  'bench redis-ha-pause': { switchover: { method: 'pause' }, log: { level: 'info' } },
};

describe('mergeConfig', () => {
  it('merges sections and replaces values, leaving both inputs alone', () => {
    const base: LabConfig = { node: { name: 'a', priority: 100 }, log: { level: 'debug' } };
    const override: LabConfig = { node: { priority: 90 }, switchover: { method: 'pause' } };
    expect(mergeConfig(base, override)).toEqual({
      node: { name: 'a', priority: 90 },
      log: { level: 'debug' },
      switchover: { method: 'pause' },
    });
    expect(base).toEqual({ node: { name: 'a', priority: 100 }, log: { level: 'debug' } });
    expect(mergeConfig(base, undefined)).toBe(base);
  });

  it('ignores an optional key present as undefined', () => {
    expect(mergeConfig({ node: { priority: 100 } }, { node: { priority: undefined } })).toEqual({ node: { priority: 100 } });
  });
});

describe('LabConfig is the configuration file type', () => {
  it('rejects keys the configuration does not have (checked by tsc --noEmit)', () => {
    // @ts-expect-error: `adress` is not a key of vip
    const misspelt: LabConfig = { vip: { adress: VIP } };
    // @ts-expect-error: not a section of the configuration
    const unknownSection: LabConfig = { vips: {} };
    // @ts-expect-error: switchover.method is one of auto, failover, pause
    const badValue: LabConfig = { switchover: { method: 'sentinel' } };
    expect([misspelt, unknownSection, badValue]).toHaveLength(3);
  });
});

describe('labNodeConfig', () => {
  let dir = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'redis-ha-labconfig-'));
    writeFileSync(join(dir, 'advert.key'), `1 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'redis.password'), 'secret', { mode: 0o600 });
  });

  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  const cases = (Object.keys(PROFILES) as LabProfile[]).flatMap((profile) =>
    (['a', 'b'] as PairNode[]).flatMap((node) => Object.keys(OVERRIDES).map((override) => ({ profile, node, override }))),
  );

  it.each(cases)('the daemon loads it: profile $profile, node $node, override $override', ({ profile, node, override }) => {
    const config = mergeConfig(labNodeConfig({ node, addresses: ADDRESSES, vip: VIP, dir, timing: PROFILES[profile] }), OVERRIDES[override]);
    const path = nodePaths(dir, node).config;
    writeFileSync(path, stringify(config), { mode: 0o600 });
    const loaded = loadConfig(path, {});
    expect(loaded.node.name).toBe(node);
    expect(loaded.node.address).toBe(ADDRESSES[node]);
    expect(loaded.peer.address).toBe(ADDRESSES[node === 'a' ? 'b' : 'a']);
    expect(loaded.advert.intervalMs).toBe(PROFILES[profile].advertIntervalMs);
  });
});
