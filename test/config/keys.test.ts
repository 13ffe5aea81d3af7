/**
 * The advert key file: `<id> <secret>` lines, comments, duplicate ids, weak secrets
 * (fewer than 128 bits, or an obvious pattern), file permissions and kinds (a FIFO is
 * refused without being opened), and generated keys that always parse back. Problems must never show a
 * secret, even one written where the id belongs.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyLine, parseKeyFile, readKeyFile, secretWeakness } from '../../src/config/keys.js';

/** 24 base64url characters: 144 bits. */
const SECRET = 'k3y-for-the-Tests-0f1keY';
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
    const secret = 'ключ-замок-дверь-окно'; // 21 characters (counted as 6.5 bits each), 38 bytes
    const result = parseKeyFile(`3 ${secret}\n`, SOURCE);
    expect(result.ok && result.keys[0]?.secret.equals(Buffer.from(secret, 'utf8'))).toBe(true);
  });

  it.each([
    { name: 'no keys', text: '# empty\n\n', problem: `advert.key_file: ${SOURCE}: expected at least one "<key-id> <secret>" line, got none` },
    { name: 'id 0', text: `0 ${SECRET}\n`, problem: `advert.key_file: ${SOURCE} line 1: expected a key id from 1 to 255, got "0"` },
    { name: 'id 256', text: `256 ${SECRET}\n`, problem: `advert.key_file: ${SOURCE} line 1: expected a key id from 1 to 255, got "256"` },
    {
      name: 'short secret',
      text: `# c\n1 sixteen-chars-ok\n`,
      problem:
        `advert.key_file: ${SOURCE} line 2: expected a secret of at least 128 bits (32 hex digits or 22 base64 characters, as "redis-ha keygen" writes),` +
        ' got key id 1 with 16 base64 characters, about 96 bits (not shown; try "redis-ha keygen")',
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
      problems: [`advert.key_file: expected a readable key file, got "${dir}" (a directory, not a regular file)`],
    });
  });

  it('refuses a FIFO and a device without opening them (opening a FIFO blocks)', () => {
    const fifo = join(dir, 'fifo.key');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    expect(readKeyFile(fifo, {})).toEqual({
      ok: false,
      problems: [`advert.key_file: expected a readable key file, got "${fifo}" (a FIFO, not a regular file)`],
    });
    expect(readKeyFile('/dev/null', {})).toEqual({
      ok: false,
      problems: ['advert.key_file: expected a readable key file, got "/dev/null" (a character device, not a regular file)'],
    });
  });

  it('follows a symbolic link to a regular file (secret mounts use them)', () => {
    const target = writeKeyFile('target.key', `1 ${SECRET}\n`, 0o600);
    const link = join(dir, 'link.key');
    symlinkSync(target, link);
    expect(readKeyFile(link, {}).ok).toBe(true);
  });

  it('refuses a file larger than a key file can sensibly be', () => {
    const path = writeKeyFile('huge.key', `1 ${SECRET}\n${'#'.repeat(70_000)}\n`, 0o600);
    const result = readKeyFile(path, {});
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]).toMatch(/more than the 65536 a secret file may hold/);
  });
});

describe('secretWeakness', () => {
  it.each([
    ['64 hex digits (redis-ha keygen)', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['32 hex digits (openssl rand -hex 16)', '9f86d081884c7d659a2feaa0c55ad015'],
    ['22 base64 characters and padding (openssl rand -base64 16)', 'Lq3n8Vw0YkR2tB7xH5mC1g=='],
    ['a long passphrase of other characters', 'Tr0ub4dor&3-is-not-a-good-one!'],
  ])('accepts %s', (_name, secret) => {
    expect(secretWeakness(secret)).toBeNull();
  });

  it.each([
    ['16 equal characters', 'x'.repeat(16), 'one character repeated'],
    ['64 equal characters', 'a'.repeat(64), 'one character repeated'],
    ['a pair repeated', 'ab'.repeat(32), 'a sequence of 2 characters repeated'],
    ['hex digits repeated', '0123456789abcdef'.repeat(2), 'a sequence of 16 characters repeated'],
    ['a sequence repeated with its last copy cut', 'secret-'.repeat(5).slice(0, 32), 'a sequence of 7 characters repeated'],
    ['two characters', 'aabbaabbabababbbaaabbbaaababababbaaabbab', 'only 2 different characters'],
    ['the alphabet', 'abcdefghijklmnopqrstuvwxyz012345', 'a run of 12 or more consecutive characters'],
    ['a countdown', 'Zq9876543210/.-,+*)', 'a run of 12 or more consecutive characters'],
    ['31 hex digits', '9f86d081884c7d659a2feaa0c55ad01', '31 hex digits, about 124 bits'],
    ['38 decimal digits', '31415926535897932384626433832795028841', '38 decimal digits, about 126 bits'],
    ['21 base64 characters', 'Lq3n8Vw0YkR2tB7xH5mC1', '21 base64 characters, about 126 bits'],
  ])('refuses %s', (_name, secret, reason) => {
    expect(secretWeakness(secret)).toBe(reason);
  });

  it('names the key id and the file, never the secret', () => {
    const weak = 'x'.repeat(40);
    const result = parseKeyFile(`1 ${SECRET}\n7 ${weak}\n`, SOURCE);
    expect(result).toEqual({
      ok: false,
      problems: [
        `advert.key_file: ${SOURCE} line 2: expected a secret of at least 128 bits (32 hex digits or 22 base64 characters, as "redis-ha keygen" writes),` +
          ' got key id 7 with one character repeated (not shown; try "redis-ha keygen")',
      ],
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

  it('always writes a secret the loader accepts', () => {
    for (let i = 0; i < 200; i++) {
      const [, secret = ''] = generateKeyLine().split(' ');
      expect(secretWeakness(secret)).toBeNull();
    }
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
