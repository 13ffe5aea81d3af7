/**
 * The schema's own consistency: every key is documented, overridable by an
 * environment variable named by the REDIS_HA_<SECTION>_<KEY> rule, and explained in
 * the shipped example file; format registration is idempotent.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ADVERT_KEY_ENV, PEER_REDIS_PASSWORD_ENV, REDIS_PASSWORD_ENV, buildConfig } from '../../src/config/load.js';
import { registerFormats, schemaItems } from '../../src/config/schema.js';

const EXAMPLE = fileURLToPath(new URL('../../etc/redis-ha.example.yaml', import.meta.url));

/** Every key, `section` being its dotted path (`quorum.etcd`) for a subsection's keys. */
const allKeys = [...schemaItems()].flatMap(([section, items]) =>
  [...items].map(([key, item]) => ({ name: `${section}.${key}`, section, key, item })),
);

describe('schema', () => {
  it.each(allKeys)('$name has a doc and the env override REDIS_HA_<SECTION>_<KEY>', ({ section, key, item }) => {
    expect(item.doc.length).toBeGreaterThan(5);
    expect(item.env).toBe(`REDIS_HA_${section.replaceAll('.', '_')}_${key}`.toUpperCase());
  });

  it('lists a subsection under its dotted path, after its section', () => {
    const paths = [...schemaItems().keys()];
    expect(paths.filter((path) => path.includes('.'))).toEqual(['quorum.etcd']);
    expect(paths.indexOf('quorum.etcd')).toBe(paths.indexOf('quorum') + 1);
    expect([...(schemaItems().get('quorum')?.keys() ?? [])]).toEqual(['backend', 'prefer']);
  });

  it('has no two keys on one environment variable, and none on a secret variable', () => {
    const names = allKeys.map(({ item }) => item.env);
    expect(new Set(names).size).toBe(names.length);
    for (const secret of [REDIS_PASSWORD_ENV, PEER_REDIS_PASSWORD_ENV, ADVERT_KEY_ENV, 'REDIS_HA_ALLOW_INSECURE_KEY_FILE']) {
      expect(names).not.toContain(secret);
    }
  });

  it('registers its formats idempotently', () => {
    registerFormats();
    registerFormats();
    const config = buildConfig(
      { node: { name: 'a', address: '192.0.2.11' }, peer: { address: '192.0.2.12' }, vip: { address: '192.0.2.100/24', interface: 'eth0' } },
      { REDIS_HA_ADVERT_KEY: 'e3b0c44298fc1c149afbf4c8996fb924' },
    );
    expect(config.node.name).toBe('a');
  });
});

describe('the example file', () => {
  const text = readFileSync(EXAMPLE, 'utf8');
  const example = parse(text) as Record<string, Record<string, unknown>>;

  /** The dotted names of the values in a mapping, subsections walked into. */
  const keysOf = (body: Record<string, unknown>, prefix: string): string[] =>
    Object.entries(body).flatMap(([key, value]) =>
      typeof value === 'object' && value !== null ? keysOf(value as Record<string, unknown>, `${prefix}${key}.`) : [`${prefix}${key}`],
    );

  it('sets every key the schema has, and no other', () => {
    expect(keysOf(example, '').sort()).toEqual(allKeys.map(({ name }) => name).sort());
  });

  it('explains every key in a comment just above it', () => {
    const lines = text.split('\n');
    for (const { name, section, key } of allKeys) {
      // Indented two spaces per level: `  key:` in a section, `    key:` in a subsection, after the subsection's line.
      const depth = section.split('.').length;
      const from = depth === 1 ? 0 : lines.findIndex((line) => line.startsWith(`  ${section.split('.').at(-1)}:`));
      const at = lines.findIndex((line, i) => i > from && line.startsWith(`${'  '.repeat(depth)}${key}:`));
      expect(at, name).toBeGreaterThan(0);
      expect(lines[at - 1]?.trimStart().startsWith('#'), `${name} has no comment above it`).toBe(true);
    }
  });

  it('uses documentation addresses and mentions the fast profile and the secret variables', () => {
    expect(example.node?.address).toBe('192.0.2.11');
    expect(example.peer?.address).toBe('192.0.2.12');
    expect(example.vip?.address).toBe('192.0.2.100/24');
    expect(text).toMatch(/fast: advert\.interval_ms 100, health\.interval_ms 100 and health\.timeout_ms 100/);
    for (const name of [REDIS_PASSWORD_ENV, PEER_REDIS_PASSWORD_ENV, ADVERT_KEY_ENV, 'REDIS_HA_ALLOW_INSECURE_KEY_FILE']) {
      expect(text).toContain(name);
    }
  });
});
