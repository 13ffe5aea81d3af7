/**
 * `etc/redis-ha.example.yaml` as an operator meets it: adapted to this machine (paths in
 * a temporary directory, the VIP on `lo`: test/helpers/example-config.ts), it passes
 * `check-config` given as `-c FILE`, `--config FILE` or a bare `FILE`; and the commands
 * its own comments show (`check-config`, `keygen --out`, `keygen --id 2 >>`) work as
 * written once their paths are moved the same way.
 */
import { appendFile, readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { adaptExample, EXAMPLE_CONFIG, movePaths } from '../helpers/example-config.js';
import { runCli, tempDirs } from '../helpers/cli.js';

const freshDir = await tempDirs('rh-example-');

/** A report without its `note:` lines, which may tell what this machine's network answered (not the file). */
function settled(report: string): string {
  return report.split('\n').filter((line) => !line.startsWith('note: ')).join('\n');
}

/** The `redis-ha ...` command lines in the example's comments. */
async function exampleCommands(): Promise<string[]> {
  const text = await readFile(EXAMPLE_CONFIG, 'utf8');
  return [...text.matchAll(/^\s*#.*?\bredis-ha ((?:check-config|keygen)\b[^()\n]*?)\s*$/gm)].map((m) => m[1]!);
}

describe('the example configuration', () => {
  it('passes check-config as -c FILE, --config FILE and a bare FILE, with the same report', async () => {
    const dir = await freshDir();
    const example = await adaptExample(dir);
    expect((await runCli(['keygen', '--out', example.keyFile])).code).toBe(0);
    const runs = await Promise.all([
      runCli(['check-config', '-c', example.path]),
      runCli(['check-config', '--config', example.path]),
      runCli(['check-config', example.path]),
    ]);
    for (const r of runs) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(settled(r.stdout)).toBe(settled(runs[0]!.stdout));
    }
    // The same file named twice, relative and absolute, is one file.
    const twice = await runCli(['check-config', 'redis-ha.yaml', '-c', example.path], { cwd: dir });
    expect(twice.code).toBe(0);
    expect(settled(twice.stdout)).toBe(settled(runs[0]!.stdout).replace(`config ${example.path}: OK`, 'config redis-ha.yaml: OK'));
    expect(runs[0]!.stdout).toMatch(new RegExp(`^config ${example.path}: OK$`, 'm'));
    // The VIP moved to lo, which exists, lies in none of its subnets: a warning, not an error.
    expect(runs[0]!.stdout).toMatch(/^warning: vip\.address 192\.0\.2\.100\/24 lies in none of the IPv4 subnets of lo/m);
  });

  it('refuses two different files (exit 64) and names a missing one (exit 78)', async () => {
    const dir = await freshDir();
    const example = await adaptExample(dir);
    const two = await runCli(['check-config', example.path, '-c', join(dir, 'other.yaml')]);
    expect(two.code).toBe(64);
    expect(two.stderr).toBe(`redis-ha check-config: two configuration files given, ${JSON.stringify(example.path)} and --config ${JSON.stringify(join(dir, 'other.yaml'))}: give one\n`);
    const missing = await runCli(['check-config', join(dir, 'absent.yaml')]);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain(join(dir, 'absent.yaml'));
  });

  it('shows commands in its comments that work as written (paths moved, owner this user)', async () => {
    const commands = await exampleCommands();
    expect(commands).toEqual([
      'check-config /etc/redis-ha/redis-ha.yaml',
      'keygen --out /etc/redis-ha/advert.key --owner redis-ha',
      'keygen --id 2 >> /etc/redis-ha/advert.key',
    ]);
    const dir = await freshDir();
    const example = await adaptExample(dir);
    const me = userInfo().username;
    /** A comment's command line with the example's paths moved as the adapted copy has them. */
    const moved = (line: string): string[] =>
      movePaths(line.replaceAll('/etc/redis-ha/redis-ha.yaml', example.path), dir).replace('--owner redis-ha', `--owner ${me}`).split(' ');
    const [check, create, append] = commands.map(moved);

    const created = await runCli(create!);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect((await stat(example.keyFile)).mode & 0o777).toBe(0o600);

    // `keygen --id 2 >> FILE`: the shell appends stdout to the file.
    const rotate = append!.slice(0, append!.indexOf('>>'));
    const second = await runCli(rotate);
    expect(second.code).toBe(0);
    await appendFile(append![append!.length - 1]!, second.stdout);
    expect((await readFile(example.keyFile, 'utf8')).split('\n').filter(Boolean).map((l) => l.split(' ')[0])).toEqual(['1', '2']);

    const checked = await runCli(check!);
    expect(checked.stderr).toBe('');
    expect(checked.code).toBe(0);
    expect(checked.stdout).toMatch(/^advert every \d+ ms on UDP port 5400, 2 key\(s\), key 1 signs$/m);
  });
});
