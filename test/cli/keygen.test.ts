/**
 * `redis-ha keygen --out FILE` through the built CLI: the key file is written as the
 * loader's secret-file rule wants it (mode 0600, whatever the umask), never over an
 * existing file without `--force` (a symbolic link included: replaced, never followed),
 * with no temporary file left behind, optionally given to an owner; and `check-config`
 * accepts what it wrote as the advert key file.
 */
import { execFile } from 'node:child_process';
import { lstat, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adaptExample } from '../helpers/example-config.js';
import { CLI, runCli, tempDirs } from '../helpers/cli.js';

const freshDir = await tempDirs('rh-keygen-');

const KEY_LINE = /^(\d+) [0-9a-f]{64}\n$/;

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

/** Runs the CLI through `sh` with umask 000, as a careless shell would. */
function runWithOpenUmask(args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', 'umask 000 && exec "$@"', 'sh', process.execPath, CLI, ...args], { timeout: 8_000 }, (error) => {
      resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : -1);
    });
  });
}

describe('redis-ha keygen --out', () => {
  it('writes one key line with mode 0600 and leaves nothing else in the directory', async () => {
    const dir = await freshDir();
    const out = join(dir, 'advert.key');
    const r = await runCli(['keygen', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`redis-ha keygen: wrote key 1 to ${out} (mode 0600); the peer needs the same file\n`);
    expect(r.stdout).not.toMatch(/[0-9a-f]{64}/);
    expect(await readFile(out, 'utf8')).toMatch(KEY_LINE);
    expect(await modeOf(out)).toBe(0o600);
    expect(await readdir(dir)).toEqual(['advert.key']);
  });

  it('is 0600 under umask 000 too', async () => {
    const dir = await freshDir();
    const out = join(dir, 'advert.key');
    expect(await runWithOpenUmask(['keygen', '--out', out, '--id', '7'])).toBe(0);
    expect(await modeOf(out)).toBe(0o600);
    expect((await readFile(out, 'utf8')).startsWith('7 ')).toBe(true);
  });

  it('refuses an existing file without --force (exit 73, the file unchanged); --force replaces it', async () => {
    const dir = await freshDir();
    const out = join(dir, 'advert.key');
    expect((await runCli(['keygen', '--out', out])).code).toBe(0);
    const first = await readFile(out, 'utf8');
    const again = await runCli(['keygen', '--out', out, '--id', '2']);
    expect(again.code).toBe(73);
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain(`redis-ha keygen: ${out} exists: not overwritten (--force replaces it;`);
    expect(await readFile(out, 'utf8')).toBe(first);
    expect(await readdir(dir)).toEqual(['advert.key']);

    const forced = await runCli(['keygen', '--out', out, '--id', '2', '--force']);
    expect(forced.code).toBe(0);
    const second = await readFile(out, 'utf8');
    expect(second).toMatch(KEY_LINE);
    expect(second.startsWith('2 ')).toBe(true);
    expect(await modeOf(out)).toBe(0o600);
    expect(await readdir(dir)).toEqual(['advert.key']);
  });

  it('never writes through a symbolic link: refused without --force, the link itself replaced with it', async () => {
    const dir = await freshDir();
    const target = join(dir, 'elsewhere');
    await writeFile(target, 'not a key\n', { mode: 0o644 });
    const out = join(dir, 'advert.key');
    await symlink(target, out);
    expect((await runCli(['keygen', '--out', out])).code).toBe(73);
    expect((await runCli(['keygen', '--out', out, '--force'])).code).toBe(0);
    expect((await lstat(out)).isFile()).toBe(true);
    expect(await modeOf(out)).toBe(0o600);
    expect(await readFile(target, 'utf8')).toBe('not a key\n');
  });

  it('cannot write into a directory that does not exist: exit 73, naming it', async () => {
    const dir = await freshDir();
    const out = join(dir, 'missing', 'advert.key');
    const r = await runCli(['keygen', '--out', out]);
    expect(r.code).toBe(73);
    expect(r.stderr).toBe(`redis-ha keygen: cannot write ${out}: no such file\n`);
  });

  it('--owner gives the file to a user and group, by name or number', async () => {
    const me = userInfo();
    const group = (await new Promise<string>((resolve, reject) =>
      execFile('id', ['-gn'], (error, stdout) => (error ? reject(error) : resolve(stdout.trim())))));
    for (const owner of [`${me.username}:${group}`, `${me.uid}:${me.gid}`, me.username]) {
      const dir = await freshDir();
      const out = join(dir, 'advert.key');
      const r = await runCli(['keygen', '--out', out, '--owner', owner]);
      expect(r.stderr, owner).toBe('');
      expect(r.code, owner).toBe(0);
      expect(r.stdout).toContain(`(mode 0600, owner ${owner})`);
      const s = await stat(out);
      expect([s.uid, s.gid, s.mode & 0o777]).toEqual([me.uid, me.gid, 0o600]);
    }
  });

  it.each([
    [['--owner', 'no-such-user-rh'], /^redis-ha keygen: --owner: no user "no-such-user-rh" on this host\n$/],
    [['--owner', 'root:no-such-group-rh'], /^redis-ha keygen: --owner: no group "no-such-group-rh" on this host\n$/],
    [['--owner', '-x'], /^redis-ha keygen: --owner: expected USER or USER:GROUP \(names or numbers\), got "-x"\n$/],
    [['--owner', 'a:b:c'], /expected USER or USER:GROUP/],
    [['--id', '0'], /^redis-ha keygen: --id: expected an integer from 1 to 255, got "0"\n$/],
    [['--id', '0x10'], /--id: expected an integer from 1 to 255, got "0x10"/],
  ])('refuses %j with exit 64 and writes nothing', async (args, message) => {
    const dir = await freshDir();
    const r = await runCli(['keygen', '--out', join(dir, 'advert.key'), ...args]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(message);
    expect(await readdir(dir)).toEqual([]);
  });

  it('--force and --owner only with --out (exit 64); without --out the line goes to stdout', async () => {
    expect(await runCli(['keygen', '--force'])).toMatchObject({ code: 64, stdout: '', stderr: 'redis-ha keygen: --force: only with --out FILE\n' });
    expect(await runCli(['keygen', '--owner', 'root'])).toMatchObject({ code: 64, stdout: '', stderr: 'redis-ha keygen: --owner: only with --out FILE\n' });
    const plain = await runCli(['keygen', '--id', '9']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^9 [0-9a-f]{64}\n$/);
  });

  it('writes a key file check-config accepts as advert.key_file', async () => {
    const dir = await freshDir();
    const example = await adaptExample(dir);
    expect((await runCli(['keygen', '--out', example.keyFile])).code).toBe(0);
    const r = await runCli(['check-config', '--config', example.path]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^advert every \d+ ms on UDP port 5400, 1 key\(s\), key 1 signs$/m);
  });
});
