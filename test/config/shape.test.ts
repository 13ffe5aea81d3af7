/**
 * The configuration's shape written once (`src/config/shape.ts`): the snake_case →
 * camelCase renaming at type level and at run time agree; the compile-time check that
 * holds `Config` to the schema names every kind of drift (checked here on small made-up
 * shapes, by `npm run typecheck`); and a loaded configuration has exactly the keys the
 * schema and the declared departures say, so a key the converter forgets or leaks fails
 * at run time too.
 */
import { describe, expect, it } from 'vitest';
import { buildConfig, CONFIG_DEPARTURES } from '../../src/config/load.js';
import { schemaItems, schemaSubsections, type RawConfig, type RawConfigFile } from '../../src/config/schema.js';
import { camelCase, camelize, type Agrees, type CamelCase, type ShapeProblems } from '../../src/config/shape.js';
import type { Config } from '../../src/config/types.js';

/** `true` only when A and B are the same type; `npm run typecheck` checks the uses below. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

describe('camelCase', () => {
  it.each([
    ['id', 'id'],
    ['interval_ms', 'intervalMs'],
    ['preempt_delay_ms', 'preemptDelayMs'],
    ['max_ack_age_s', 'maxAckAgeS'],
    ['tls_insecure', 'tlsInsecure'],
    ['peer_redis', 'peerRedis'],
  ] as const)('%s → %s', (snake, camel) => {
    expect(camelCase(snake)).toBe(camel);
  });

  it('is the run-time twin of CamelCase', () => {
    const typed: Equal<CamelCase<'max_ack_age_s'>, 'maxAckAgeS'> = true;
    const section: Equal<CamelCase<'peer_redis'>, 'peerRedis'> = true;
    expect([typed, section]).toEqual([true, true]);
    const renamed = camelize({ interval_ms: 5, max_ack_age_s: 2, id: 'x' });
    const renamedType: Equal<typeof renamed, { intervalMs: number; maxAckAgeS: number; id: string }> = true;
    expect(renamedType).toBe(true);
    expect(renamed).toEqual({ intervalMs: 5, maxAckAgeS: 2, id: 'x' });
  });
});

describe('ShapeProblems (compile time)', () => {
  type Raw = { a_section: { one_ms: number; two: string; secret_file: string } };
  type Departures = { a_section: { converted: 'secret_file'; added: 'secret' } };

  it('is never when the typed view matches but for the declared departures', () => {
    type Typed = { source: string | null; aSection: { readonly oneMs: number; readonly two: string; readonly secret: string } };
    const agrees: Equal<ShapeProblems<Raw, Typed, Departures, 'source'>, never> = true;
    expect(agrees).toBe(true);
  });

  it('names a key of the file the typed view lacks', () => {
    type Typed = { aSection: { oneMs: number; secret: string } };
    const named: Equal<
      ShapeProblems<Raw, Typed, Departures>,
      'a_section.two: in the schema but not in Config.aSection (as two; or declare it converted)'
    > = true;
    expect(named).toBe(true);
  });

  it('names a typed key no file key carries', () => {
    type Typed = { aSection: { oneMs: number; two: string; secret: string; three: number } };
    const named: Equal<
      ShapeProblems<Raw, Typed, Departures>,
      'aSection.three: in Config but no key of the schema\'s a_section section carries it (or declare it added)'
    > = true;
    expect(named).toBe(true);
  });

  it('names a key whose type differs', () => {
    type Typed = { aSection: { oneMs: string; two: string; secret: string } };
    const named: Equal<
      ShapeProblems<Raw, Typed, Departures>,
      'a_section.one_ms: the schema and Config.aSection.oneMs hold different types (declare it converted if that is meant)'
    > = true;
    expect(named).toBe(true);
  });

  it('names missing and extra sections, and stale departures', () => {
    type Typed = { other: { x: number } };
    type Stale = { a_section: { converted: 'gone'; added: 'nowhere' }; b_section: { converted: never; added: never } };
    type Problems = ShapeProblems<Raw, Typed, Stale>;
    const named: Equal<
      Problems,
      | 'a_section: a section of the schema that Config lacks (as aSection)'
      | 'other: a section of Config that the schema lacks'
      | 'b_section: departures declared for a section the schema lacks'
    > = true;
    expect(named).toBe(true);
    type InSection = ShapeProblems<Raw, { aSection: { oneMs: number; two: string; secret: string } }, Stale>;
    const stale: Equal<
      Extract<InSection, `a_section.gone${string}` | `aSection.nowhere${string}`>,
      'a_section.gone: declared converted, but the schema has no such key' | 'aSection.nowhere: declared added, but Config has no such key'
    > = true;
    expect(stale).toBe(true);
  });

  it('holds a subsection to its typed twin, its departures declared under its dotted path', () => {
    type Nested = { a_section: { one_ms: number; sub: { list_text: string; two: string } } };
    type Declared = { 'a_section.sub': { converted: 'list_text'; added: 'list' } };
    type Typed = { aSection: { oneMs: number; sub: { list: readonly string[]; two: string } } };
    const agrees: Equal<ShapeProblems<Nested, Typed, Declared>, never> = true;
    type Undeclared = ShapeProblems<Nested, Typed, { a_section: { converted: never; added: never } }>;
    const named: Equal<
      Undeclared,
      | 'a_section.sub.list_text: in the schema but not in Config.aSection.sub (as listText; or declare it converted)'
      | "aSection.sub.list: in Config but no key of the schema's a_section.sub section carries it (or declare it added)"
    > = true;
    type Typo = ShapeProblems<Nested, Typed, Declared & { 'a_section.subb': { converted: never; added: never } }>;
    const stale: Equal<Typo, 'a_section.subb: departures declared for a section the schema lacks'> = true;
    expect([agrees, named, stale]).toEqual([true, true, true]);
  });

  it('Agrees accepts only never', () => {
    const fine: Agrees<never> | true = true;
    // @ts-expect-error a problem string is not never: this is how the real check fails tsc.
    const failing: Agrees<'x.y: in the schema but not in Config.x (as y; or declare it converted)'> | true = true;
    expect([fine, failing]).toEqual([true, true]);
  });
});

describe('RawConfig, derived from the schema', () => {
  it('has the schema keys with the types of their values', () => {
    const priority: Equal<RawConfig['node']['priority'], number> = true;
    const method: Equal<RawConfig['switchover']['method'], 'auto' | 'failover' | 'pause'> = true;
    const level: Equal<RawConfig['log']['level'], 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'> = true;
    const file: Equal<RawConfig['advert']['key_file'], string> = true; // not the default's literal
    const same: Equal<RawConfig['redis'], RawConfig['peer_redis']> = true;
    expect([priority, method, level, file, same]).toEqual([true, true, true, true, true]);
  });

  it('has a partial twin for files: any section and key may be left out, none misspelt', () => {
    const file: RawConfigFile = { node: { name: 'a' }, health: { interval_ms: 100 } };
    // @ts-expect-error a misspelt key is refused, so a renamed key breaks the build of whoever writes files.
    const misspelt: RawConfigFile = { health: { interval: 100 } };
    expect([file, misspelt]).toHaveLength(2);
  });

  it('has at compile time the sections schemaItems() lists at run time', () => {
    const sections: Array<keyof RawConfig> = [
      'node', 'group', 'peer', 'timing', 'advert', 'redis', 'peer_redis', 'health', 'vip', 'promotion', 'demotion',
      'reconcile', 'control', 'switchover', 'metrics', 'stall', 'quorum', 'audit', 'state', 'log',
    ];
    const everySection: Equal<(typeof sections)[number], keyof RawConfig> = true;
    expect(everySection).toBe(true);
    expect([...schemaItems().keys()].filter((path) => !path.includes('.')).sort()).toEqual([...sections].sort());
  });

  it('holds a subsection as a nested mapping, and a file may set any part of it', () => {
    const ttl: Equal<RawConfig['quorum']['etcd']['lease_ttl_s'], number> = true;
    const backend: Equal<RawConfig['quorum']['backend'], 'none' | 'etcd'> = true;
    expect([ttl, backend]).toEqual([true, true]);
    const file: RawConfigFile = { quorum: { etcd: { endpoints: 'http://192.0.2.20:2379' } } };
    // @ts-expect-error a misspelt key of a subsection is refused too.
    const misspelt: RawConfigFile = { quorum: { etcd: { endpoint: 'http://192.0.2.20:2379' } } };
    expect([file, misspelt]).toHaveLength(2);
  });
});

describe('a loaded Config', () => {
  const config = buildConfig(
    { node: { name: 'a', address: '192.0.2.11' }, peer: { address: '192.0.2.12' }, vip: { address: '192.0.2.100/24', interface: 'eth0' } },
    { REDIS_HA_ADVERT_KEY: 'e3b0c44298fc1c149afbf4c8996fb924' },
  );
  const departures = CONFIG_DEPARTURES as Readonly<Record<string, { converted: readonly string[]; added: readonly string[] }>>;

  /** `quorum.etcd` → `quorum.etcd`, `peer_redis` → `peerRedis`. */
  const typedPath = (path: string): string => path.split('.').map(camelCase).join('.');

  it.each([...schemaItems()].map(([section, items]) => [section, [...items.keys()]] as const))(
    '%s: the schema keys in camelCase, but for the declared departures',
    (section, keys) => {
      let typed = config as unknown as Record<string, unknown> | undefined;
      for (const part of section.split('.')) typed = typed?.[camelCase(part)] as Record<string, unknown> | undefined;
      expect(typed, `Config.${typedPath(section)}`).toBeDefined();
      const { converted = [], added = [] } = departures[section] ?? {};
      const carried = keys.filter((key) => !converted.includes(key)).map(camelCase);
      const subsections = (schemaSubsections().get(section) ?? []).map(camelCase);
      const expected = new Set([...carried, ...added, ...subsections]);
      // A converted key may keep its name (username) or not (password_file → password).
      for (const key of Object.keys(typed ?? {})) {
        if (!expected.has(key)) expect(converted.map(camelCase), `Config.${typedPath(section)}.${key}`).toContain(key);
      }
      for (const key of expected) expect(Object.keys(typed ?? {}), `Config.${typedPath(section)}`).toContain(key);
    },
  );

  it('has no section the schema lacks, besides its source', () => {
    const sections = [...schemaItems().keys()].filter((path) => !path.includes('.')).map(camelCase);
    expect(Object.keys(config).sort()).toEqual(['source', ...sections].sort());
  });

  it('is the type the rest of the daemon reads', () => {
    const typed: Config = config;
    expect(Object.isFrozen(typed.health)).toBe(true);
  });
});
