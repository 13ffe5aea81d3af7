/**
 * The advert key file: `<id> <secret>` lines, comments, duplicate ids, short secrets,
 * file permissions, and generated keys that parse back. Problems must never show a
 * secret, even one written where the id belongs.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyLine, parseKeyFile, readKeyFile } from '../../src/config/keys.js';

const SECRET = 'sixteen-chars-ok';
const SOURCE = '/etc/redis-ha/advert.key';
const dir = mkdtempSync(join(tmpdir(), 'redis-ha-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeKeyFile(name: string, text: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

describe('parseKeyFile', () => {
  it('reads ids and secrets in order, skipping comments and blank lines', () => {
    const result = parseKeyFile(`# rotated 2024-05\n\n  7   ${SECRET}-seven\r\n1 ${SECRET}\n   # old key below\n`, SOURCE);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.keys.map((key) => key.id)).toEqual([7, 1]);
    expect(result.keys[0]?.secret.equals(Buffer.from(`${SECRET}-seven`, 'utf8'))).toBe(true);
  });

  it('uses the secret as UTF-8 bytes and counts characters, not bytes', () => {
    const secret = 'ключ-ключ-ключ-1'; // 16 characters, 28 bytes
    const result = parseKeyFile(`3 ${secret}\n`, SOURCE);
    expect(result.ok && result.keys[0]?.secret.equals(Buffer.from(secret, 'utf8'))).toBe(true);
  });

  it.each([
    { name: 'no keys', text: '# empty\n\n', problem: `advert.key_file: ${SOURCE}: expected at least one "<key-id> <secret>" line, got none` },
    { name: 'id 0', text: `0 ${SECRET}\n`, problem: `advert.key_file: ${SOURCE} line 1: expected a key id from 1 to 255, got "0"` },
    { name: 'id 256', text: `256 ${SECRET}\n`, problem: `advert.key_file: ${SOURCE} line 1: expected a key id from 1 to 255, got "256"` },
    {
      name: 'short secret',
      text: `# c\n1 fifteen-chars-x\n`.replace('fifteen-chars-x', 'fifteen-chars-'),
      problem: `advert.key_file: ${SOURCE} line 2: expected a secret of at least 16 characters, got 14 (try "redis-ha keygen")`,
    },
    {
      name: 'duplicate id',
      text: `5 ${SECRET}\n5 ${SECRET}-b\n`,
      problem: `advert.key_file: ${SOURCE} line 2: expected each key id once, got id 5 again (first on line 1)`,
    },
    {
      name: 'secret without id',
      text: `${SECRET}\n`,
      problem: `advert.key_file: ${SOURCE} line 1: expected "<key-id> <secret>", got a single field (not shown: it may be a secret)`,
    },
    {
      name: 'secret and id swapped',
      text: `${SECRET} 1\n`,
      problem: `advert.key_file: ${SOURCE} line 1: expected a key id from 1 to 255, got a non-numeric field (not shown: it may be a secret)`,
    },
    {
      name: 'trailing comment',
      text: `1 ${SECRET} # primary\n`,
      problem: `advert.key_file: ${SOURCE} line 1: expected "<key-id> <secret>", got 4 fields (a secret cannot contain spaces; comments go on their own line)`,
    },
  ])('rejects $name', ({ text, problem }) => {
    const result = parseKeyFile(text, SOURCE);
    expect(result).toEqual({ ok: false, problems: [problem] });
    if (!result.ok) expect(result.problems.join('\n')).not.toContain(SECRET);
  });

  it('reports every bad line at once', () => {
    const result = parseKeyFile(`0 ${SECRET}\n2 short\n3 ${SECRET}\n3 ${SECRET}\n`, SOURCE);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.map((line) => /line (\d+)/.exec(line)?.[1])).toEqual(['1', '2', '4']);
  });
});

describe('readKeyFile', () => {
  it('reads a 0600 key file', () => {
    const path = writeKeyFile('ok.key', `1 ${SECRET}\n`, 0o600);
    const result = readKeyFile(path, {});
    expect(result.ok && result.keys.map((key) => key.id)).toEqual([1]);
  });

  it.each([0o640, 0o604, 0o660, 0o644, 0o610])('refuses mode %o, naming the file and the fix', (mode) => {
    const path = writeKeyFile(`loose-${mode.toString(8)}.key`, `1 ${SECRET}\n`, mode);
    const result = readKeyFile(path, {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toContain(`got "${path}" with mode 0${mode.toString(8)}`);
    expect(result.problems[0]).toContain(`chmod 600 ${path}`);
    expect(result.problems[0]).toContain('REDIS_HA_ALLOW_INSECURE_KEY_FILE=1');
  });

  it('accepts a loose mode with REDIS_HA_ALLOW_INSECURE_KEY_FILE=1, and only with 1', () => {
    const path = writeKeyFile('loose.key', `1 ${SECRET}\n`, 0o644);
    expect(readKeyFile(path, { REDIS_HA_ALLOW_INSECURE_KEY_FILE: '1' }).ok).toBe(true);
    expect(readKeyFile(path, { REDIS_HA_ALLOW_INSECURE_KEY_FILE: 'yes' }).ok).toBe(false);
  });

  it('reports permission and content problems together', () => {
    const path = writeKeyFile('both.key', '1 short\n', 0o644);
    const result = readKeyFile(path, {});
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems).toHaveLength(2);
  });

  it('reports a missing file and a directory', () => {
    expect(readKeyFile(join(dir, 'absent.key'), {})).toEqual({
      ok: false,
      problems: [`advert.key_file: expected a readable key file, got "${join(dir, 'absent.key')}" (no such file)`],
    });
    expect(readKeyFile(dir, {})).toEqual({
      ok: false,
      problems: [`advert.key_file: expected a readable key file, got "${dir}" (not a regular file)`],
    });
  });
});

describe('generateKeyLine', () => {
  it('makes a line that parses back, with 64 hex characters of secret', () => {
    const line = generateKeyLine(9);
    expect(line).toMatch(/^9 [0-9a-f]{64}$/);
    const result = parseKeyFile(`${line}\n`, 'generated');
    expect(result.ok && result.keys[0]?.id).toBe(9);
  });

  it('defaults to id 1 and never repeats a secret', () => {
    const lines = new Set(Array.from({ length: 50 }, () => generateKeyLine()));
    expect(lines.size).toBe(50);
    for (const line of lines) expect(line.startsWith('1 ')).toBe(true);
  });

  it('rejects ids outside 1..255', () => {
    expect(() => generateKeyLine(0)).toThrow(RangeError);
    expect(() => generateKeyLine(256)).toThrow(RangeError);
  });
});
