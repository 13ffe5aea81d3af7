/**
 * README.md against the code, for what can be checked mechanically (issue 13):
 *  - the `ACL SETUSER` line names every command the Redis adapter sends, and nothing else;
 *  - the figures of "How takeover times follow from the settings" (the formulas' defaults,
 *    the profile table, the etcd rule) are what `src/core/timing.ts` computes from the
 *    shipped configuration, and the health-timeout rule is the one the loader enforces;
 *  - the ports of the firewall table and the defaults of "Configuration reference" are the
 *    schema's.
 * Each reader (`readme-facts.ts`) is tried on a small made-up text first, so a reader that
 * found nothing could not make the real checks pass. The command scan knows the names the
 * adapter gives its ioredis clients (`c`, `client`, `m`, `pipeline`, `entry.client`); a
 * method it cannot place fails the test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { faultTimesOf, quorumTimingOf, timingOf } from '../../src/config/derived.js';
import { buildConfig } from '../../src/config/load.js';
import { PROFILE_KEYS, profileValues, type ProfileKey } from '../../src/config/profiles.js';
import { schemaItems, TIMING_PROFILES, type TimingProfile } from '../../src/config/schema.js';
import type { Config } from '../../src/config/types.js';
import { masterDownMs, quorumFenceLeadMs, takeoverEstimate, worstCaseOutages, type TakeoverEstimate } from '../../src/core/timing.js';
import { ConfigError } from '../../src/errors.js';
import {
  aclLineOf,
  bulletsOf,
  defaultsClaims,
  figureMatches,
  parseFigure,
  redisCommandsSent,
  sectionOf,
  tableWithHeader,
  tablesOf,
  type SourceFile,
} from './readme-facts.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** Every `.ts` file under `dir`, with its text. */
function sourcesUnder(dir: string): SourceFile[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => ({ path: relative(ROOT, join(dir, name)), text: readFileSync(join(dir, name), 'utf8') }));
}

const BASE = {
  node: { name: 'b', address: '192.0.2.12' },
  peer: { address: '192.0.2.11' },
  vip: { address: '192.0.2.100/24', interface: 'eth0' },
} as const;
const ENV: NodeJS.ProcessEnv = { REDIS_HA_ADVERT_KEY: 'e3b0c44298fc1c149afbf4c8996fb924' };

/** The shipped configuration, but for the priority, the profile and the quorum backend. */
function configAt(priority: number | null, profile: TimingProfile = 'default', etcd = false): Config {
  return buildConfig(
    {
      ...BASE,
      node: { ...BASE.node, ...(priority === null ? {} : { priority }) },
      timing: { profile },
      ...(etcd ? { quorum: { backend: 'etcd', etcd: { endpoints: 'http://192.0.2.20:2379' } } } : {}),
    },
    ENV,
  );
}

/** The schema's default of `section.key` (`quorum.etcd.lease_ttl_s` too). */
function schemaDefault(key: string): unknown {
  const dot = key.lastIndexOf('.');
  const item = schemaItems().get(key.slice(0, dot))?.get(key.slice(dot + 1));
  if (item === undefined) throw new Error(`${key} is not a key of the schema`);
  return item.default;
}

describe('the readers, on made-up text', () => {
  const doc = [
    '# T', '## A', 'a text', '```', '## not a heading in a fence', '```', '### A.1', 'a1 text',
    '| x | y |', '|---|---|', '| `k.a\\|b` | 1 s |', '', '## B', 'b text',
  ].join('\n');

  it('finds a section up to the next heading of its level, fences skipped', () => {
    expect(sectionOf(doc, '## A')).toContain('a1 text');
    expect(sectionOf(doc, '## A')).not.toContain('b text');
    expect(sectionOf(doc, '### A.1')).toContain('a1 text');
    expect(() => sectionOf(doc, '## C')).toThrow(/found 0/);
  });

  it('reads tables, a `\\|` kept inside its cell', () => {
    expect(tablesOf(doc)).toEqual([{ header: ['x', 'y'], rows: [['`k.a|b`', '1 s']] }]);
    expect(tableWithHeader(doc, ['x', 'y']).rows).toHaveLength(1);
  });

  it('joins a bullet with its indented lines', () => {
    expect(bulletsOf('- one\n  two\n- three\n\nafter')).toEqual(['one two', 'three']);
  });

  it('parses figures and compares them at the precision printed', () => {
    expect(parseFigure('3.75 s')).toMatchObject({ ms: 3750, decimals: 2 });
    expect(parseFigure('at once')).toMatchObject({ ms: 0 });
    expect(parseFigure('fast')).toBeNull();
    expect(figureMatches(parseFigure('3.75 s')!, 3748.4)).toBe(true);
    expect(figureMatches(parseFigure('3.8 s')!, 3748.4)).toBe(false);
    expect(figureMatches(parseFigure('73 ms')!, 72.97)).toBe(true);
  });

  it('reads the claims after Defaults:', () => {
    expect(defaultsClaims('worst case x. Defaults: 1.2 s.')).toEqual([
      { priority: null, saysDefaultPriority: false, figure: expect.objectContaining({ ms: 1200 }) },
    ]);
    const claims = defaultsClaims('Defaults: *P* = 90: 3.75 s; *P* = 100 (the `node.priority` default): 3.71 s.');
    expect(claims.map((c) => [c.priority, c.saysDefaultPriority, c.figure.ms])).toEqual([[90, false, 3750], [100, true, 3710]]);
    expect(defaultsClaims('no figures here')).toEqual([]);
  });

  it('reads an ACL SETUSER line', () => {
    expect(aclLineOf('x\nACL SETUSER u on >pw -@all +PING +client|kill\n')).toEqual({
      user: 'u', allowed: ['ping', 'client|kill'], other: ['on', '>pw', '-@all'],
    });
  });

  it('lists the commands a made-up adapter sends, and what it cannot place', () => {
    const files = [{
      path: 'x.ts',
      text: [
        "await c.call('CLIENT', 'PAUSE', '10', 'WRITE'); await client.ping(); m.info('replication');",
        "c.config('SET', 'masteruser', u); c.client('LIST'); const r = { connectionName: n };",
        "entry.client.quit(); c.multi(); client.on('error', f); c.flushall(); c.call('CONFIG', sub);",
      ].join('\n'),
    }];
    const { rules, unknown } = redisCommandsSent(files);
    expect([...rules].sort()).toEqual(
      ['client|list', 'client|pause', 'client|setname', 'config|set', 'exec', 'info', 'multi', 'ping', 'psync', 'replconf'].sort(),
    );
    expect(unknown).toEqual(['x.ts: CONFIG without a literal subcommand', 'x.ts: .flushall(']);
  });
});

describe('README: the ACL user of "Redis"', () => {
  const adapter = sourcesUnder(join(ROOT, 'src/adapters/redis'));
  const sent = redisCommandsSent(adapter);
  const acl = aclLineOf(sectionOf(README, '### Redis'));

  it('the scan places every Redis call of the adapter, and finds the ones known to be there', () => {
    expect(sent.unknown).toEqual([]);
    for (const rule of ['ping', 'info', 'cluster|info', 'replicaof', 'failover', 'client|pause', 'client|kill', 'config|set']) {
      expect(sent.rules, rule).toContain(rule);
    }
  });

  it('only the Redis adapter talks to Redis (nothing else imports ioredis)', () => {
    const importers = sourcesUnder(join(ROOT, 'src'))
      .filter((f) => /from 'ioredis'/.test(f.text))
      .map((f) => f.path)
      .filter((path) => !path.startsWith('src/adapters/redis/'));
    expect(importers).toEqual([]);
  });

  it('allows exactly the commands the adapter sends, on top of -@all', () => {
    expect(acl.other).toContain('-@all');
    expect([...acl.allowed].sort()).toEqual([...sent.rules].sort());
    // The cluster check (issue 14) needs these two; the Configuration reference names them.
    expect(acl.allowed).toEqual(expect.arrayContaining(['info', 'cluster|info']));
  });
});

describe('README: "How takeover times follow from the settings"', () => {
  const section = sectionOf(README, '## How takeover times follow from the settings');
  const nodePriorityDefault = schemaDefault('node.priority');

  /** The estimate each fault bullet quotes, by the start of its bold label. */
  const BULLETS: readonly [string, keyof TakeoverEstimate][] = [
    ['**Redis crash on the master**', 'redisCrashMs'],
    ['**Redis hang on the master**', 'redisFailureMs'],
    ['**Master host or link lost**', 'hostLossMs'],
    ['**Planned stop (SIGTERM)**', 'resignMs'],
  ];

  it.each(BULLETS)('%s quotes the shipped defaults through takeoverEstimate', (label, field) => {
    const bullets = bulletsOf(section).filter((b) => b.startsWith(label));
    expect(bullets, label).toHaveLength(1);
    const claims = defaultsClaims(bullets[0]!);
    expect(claims.length, `${label}: no "Defaults:" figure`).toBeGreaterThan(0);
    for (const claim of claims) {
      if (claim.saysDefaultPriority) expect(claim.priority).toBe(nodePriorityDefault);
      const computed = takeoverEstimate(timingOf(configAt(claim.priority)))[field];
      expect(figureMatches(claim.figure, computed), `${label} ${claim.figure.text} at P = ${claim.priority ?? 'default'}: computed ${computed} ms`).toBe(true);
    }
  });

  it('the profile table is profileValues and faultTimesOf at the priority it names', () => {
    const priority = Number(/worst cases are for a backup of priority (\d+)/.exec(section)?.[1]);
    expect(priority).toBeGreaterThan(0);
    const table = tableWithHeader(section, ['', '`default`', '`fast`', '`lan-fast`']);
    const column = (profile: TimingProfile): number => table.header.indexOf(`\`${profile}\``);
    const row = (start: string): readonly string[] => {
      const rows = table.rows.filter((r) => r[0]!.startsWith(start));
      expect(rows, start).toHaveLength(1);
      return rows[0]!;
    };
    const checkPair = (cell: string, detect: number, writes: number, what: string): void => {
      const [a, b] = cell.split(' / ').map((part) => parseFigure(part));
      expect(a && b, `${what}: ${cell}`).toBeTruthy();
      expect(figureMatches(a!, detect) && figureMatches(b!, writes), `${what}: ${cell}, computed ${detect} / ${writes} ms`).toBe(true);
    };
    for (const profile of TIMING_PROFILES) {
      const config = configAt(priority, profile);
      const values = profileValues(profile);
      const cell = (start: string): string => row(start)[column(profile)]!;
      for (const key of PROFILE_KEYS) expect(Number(cell(`\`${key}\``)), `${profile} ${key}`).toBe(values[key as ProfileKey]);
      const masterDown = masterDownMs(priority, config.advert.intervalMs);
      const masterDownCell = parseFigure(cell('master-down'));
      expect(masterDownCell && figureMatches(masterDownCell, masterDown), `${profile} master-down ${cell('master-down')}`).toBe(true);
      const faults = new Map(faultTimesOf(config).map((f) => [f.fault, f]));
      const times = (fault: 'master-redis-dies' | 'master-redis-hangs' | 'master-host-dies'): [number, number] => {
        const f = faults.get(fault);
        return [f?.detectMs ?? NaN, f?.writesUnavailableMs ?? NaN];
      };
      checkPair(cell('Redis crash'), ...times('master-redis-dies'), `${profile} Redis crash`);
      checkPair(cell('Redis hang'), ...times('master-redis-hangs'), `${profile} Redis hang`);
      checkPair(cell('host or link lost'), ...times('master-host-dies'), `${profile} host lost`);
      expect(Number(cell('adverts per second')), `${profile} adverts per second`).toBe(1000 / config.advert.intervalMs);
    }
  });

  it('states the health-timeout rule the loader enforces: at most health.interval_ms', () => {
    expect(section).toContain('`health.timeout_ms` above `health.interval_ms`');
    const interval = Number(schemaDefault('health.interval_ms'));
    const refused = (): Config => buildConfig({ ...BASE, health: { interval_ms: interval, timeout_ms: interval + 1 } }, ENV);
    expect(refused).toThrow(ConfigError);
    try {
      refused();
    } catch (error) {
      expect((error as ConfigError).problems.join('\n')).toMatch(/^health\.timeout_ms: expected at most health\.interval_ms/m);
    }
    expect(buildConfig({ ...BASE, health: { interval_ms: interval, timeout_ms: interval } }, ENV).health.timeoutMs).toBe(interval);
  });

  it('the etcd rule quotes the shipped etcd defaults, and its worst case is worstCaseOutages', () => {
    const paragraph = section.slice(section.indexOf('**With a quorum on etcd: the lease and fence rule**'));
    const rule = /Defaults: (\d+) \+ (\d+) \+\s+(\d+) = (\d+) ms < (\d+) − (\d+) = (\d+) ms/.exec(paragraph);
    expect(rule, 'the rule with the defaults').not.toBeNull();
    const q = quorumTimingOf(configAt(null, 'default', true));
    const lead = quorumFenceLeadMs(q);
    expect(rule!.slice(1).map(Number)).toEqual([
      q.renewIntervalMs, q.callTimeoutMs, q.electionTimeoutMs, q.renewIntervalMs + q.callTimeoutMs + q.electionTimeoutMs,
      q.leaseTtlMs, lead, q.leaseTtlMs - lead,
    ]);
    expect(q.renewIntervalMs).toBe(schemaDefault('quorum.etcd.renew_interval_ms'));
    expect(q.leaseTtlMs).toBe(Number(schemaDefault('quorum.etcd.lease_ttl_s')) * 1000);
    const worst = paragraph.slice(paragraph.indexOf('in the worst case'));
    const claims = defaultsClaims(worst);
    expect(claims.length).toBeGreaterThan(0);
    for (const claim of claims) {
      if (claim.saysDefaultPriority) expect(claim.priority).toBe(nodePriorityDefault);
      const config = configAt(claim.priority, 'default', true);
      const row = worstCaseOutages(timingOf(config), quorumTimingOf(config)).find((r) => r.fault === 'master-host-dies' && r.mode === 'etcd');
      expect(figureMatches(claim.figure, row?.writesUnavailableMs ?? NaN), `etcd ${claim.figure.text} at P = ${claim.priority}`).toBe(true);
    }
  });
});

describe('README: ports and defaults', () => {
  it('the firewall table names each port with its key, and the port is that key\'s default', () => {
    const network = sectionOf(README, '### Network');
    const table = tableWithHeader(network, ['what', 'port', 'between']);
    const witness = readFileSync(join(ROOT, 'scripts/install-witness.sh'), 'utf8');
    const named = new Set<string>();
    for (const [what, port] of table.rows) {
      const number = /^(?:UDP|TCP) (\d+) \(/.exec(port!)?.[1];
      expect(number, `${what}: ${port}`).toBeDefined();
      // The witness's client port is no key: install-witness.sh fixes it.
      if (port!.includes('(fixed by `install.sh --witness`)')) {
        named.add('install.sh --witness');
        expect(Number(number), `${what}: WITNESS_CLIENT_PORT of install-witness.sh`).toBe(Number(/^WITNESS_CLIENT_PORT=(\d+)$/m.exec(witness)?.[1]));
        continue;
      }
      const keys = [...port!.matchAll(/`([a-z_]+\.[a-z_.]+)`/g)].map((m) => m[1]!);
      expect(keys.length, `${what}: no key named`).toBeGreaterThan(0);
      for (const key of keys) {
        named.add(key);
        expect(Number(number), `${what}: ${key}`).toBe(schemaDefault(key));
      }
    }
    for (const key of ['advert.port', 'redis.port', 'peer_redis.port', 'metrics.port', 'install.sh --witness']) expect(named, key).toContain(key);
  });

  it('the defaults of "Configuration reference" are the schema\'s', () => {
    const table = tableWithHeader(sectionOf(README, '## Configuration reference'), ['key', 'default', 'meaning']);
    let checked = 0;
    for (const [keyCell, defaultCell] of table.rows) {
      const keys = [...keyCell!.matchAll(/`([^`]+)`/g)].flatMap((m) => {
        const [head, ...more] = m[1]!.split('/');
        const dot = head!.lastIndexOf('.');
        return [head!, ...more.map((name) => `${head!.slice(0, dot)}.${name}`)];
      });
      if (keys.some((key) => key.includes('*'))) continue;
      const values = defaultValues(defaultCell!);
      if (values === null) continue;
      const expected = values.length === 1 && values[0] === null ? keys.map(() => null) : values;
      if (expected.length !== keys.length) continue;
      keys.forEach((key, i) => expect(schemaDefault(key), `${key}: the README says ${defaultCell}`).toEqual(expected[i]));
      checked += keys.length;
    }
    // Most rows can be read; a reader that read none would prove nothing.
    expect(checked).toBeGreaterThan(40);
  });
});

/**
 * The values of a "default" cell, in key order: `required` (null), numbers, booleans,
 * `""`, `` `text` ``, bare words, and `the profile's (a, b)`; `null` when the cell says
 * something else (a host:port, "host = ...").
 */
function defaultValues(cell: string): unknown[] | null {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of cell) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current.trim());
  const values: unknown[] = [];
  for (const raw of parts) {
    const profile = /^the profile's \((.*)\)$/.exec(raw);
    if (profile) {
      values.push(...profile[1]!.split(',').map((n) => Number(n.trim())));
      continue;
    }
    const part = raw.replace(/\s*\([^)]*\)$/, '');
    if (part === 'required') values.push(null);
    else if (part === '""') values.push('');
    else if (part === 'true' || part === 'false') values.push(part === 'true');
    else if (/^\d+$/.test(part)) values.push(Number(part));
    else if (/^`[^`]+`$/.test(part)) values.push(part.slice(1, -1));
    else if (/^[a-z-]+$|^\d+\.\d+\.\d+\.\d+$/.test(part)) values.push(part);
    else return null;
  }
  return values;
}
