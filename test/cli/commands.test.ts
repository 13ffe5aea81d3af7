/**
 * The command line against README "Command reference", through the built CLI: every
 * command and flag the table names has a `--help` (exit 0) that shows the flag, and every
 * command and flag the CLI has is in the table, so neither can drift from the other. Bad
 * arguments exit 64 everywhere (unknown command or option, a missing value, an extra
 * argument); `--version` prints the package and advert format versions, from a checkout
 * and from the layout scripts/install.sh installs, and loads neither the daemon nor its
 * packages, as `status` does not (README "Footprint"; recorded by test/helpers/record-esm.mjs).
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ADVERT_VERSION } from '../../src/proto/advert.js';
import { CLI, runCli } from '../helpers/cli.js';

const ROOT = join(import.meta.dirname, '../..');
const README = await readFile(join(ROOT, 'README.md'), 'utf8');
const PACKAGE = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const dir = await mkdtemp(join(tmpdir(), 'rh-commands-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** One row of the README's command table. */
interface Row {
  /** The command words after `redis-ha` (`['audit', 'verify']`; `[]` for the program itself). */
  readonly words: readonly string[];
  /** Every flag the row names, short and long (`-c`, `--config`). */
  readonly flags: readonly string[];
  /** Flags given with a value placeholder (`--id N`): their value can be missing. */
  readonly valued: readonly string[];
  readonly text: string;
}

/** The README section between `### Command reference` and the next heading. */
function referenceSection(): string {
  const start = README.indexOf('\n### Command reference\n');
  expect(start, 'README has a "### Command reference" section').toBeGreaterThan(0);
  const rest = README.slice(start + 1);
  const body = rest.indexOf('\n') + 1;
  const end = rest.slice(body).search(/^#{1,6} /m);
  return end < 0 ? rest : rest.slice(0, body + end);
}

/** The table's cells, split at `|` that are not escaped (`on\|off`). */
function cells(line: string): string[] {
  return line.replace(/^\|/, '').replace(/\|\s*$/, '').split(/(?<!\\)\|/).map((c) => c.trim().replaceAll('\\|', '|'));
}

const FLAG = /(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])(?![\w-])/g;

function rows(): Row[] {
  const lines = referenceSection().split('\n').filter((l) => l.startsWith('| `redis-ha'));
  return lines.map((line) => {
    const [command = '', flagCell = ''] = cells(line);
    const words: string[] = [];
    for (const token of (/`redis-ha ([^`]*)`/.exec(command)?.[1] ?? '').split(' ')) {
      if (!/^[a-z][a-z-]*$/.test(token)) break;
      words.push(token);
    }
    const spans = [...flagCell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const flags = spans.flatMap((span) => [...span.matchAll(FLAG)].map((m) => m[1]!));
    // `--id N`, `-c, --config FILE`: a span ending in a placeholder takes a value.
    const valued = spans.filter((span) => / [A-Z][A-Z_:.[\]]*$/.test(span)).flatMap((span) => [...span.matchAll(FLAG)].map((m) => m[1]!));
    return { words, flags, valued, text: line };
  });
}

/** The flags of a `--help` text's Options list (`  -c, --config <file>  ...`, `  --json  ...`). */
function helpFlags(help: string): string[] {
  const at = help.indexOf('\nOptions:\n');
  if (at < 0) return [];
  const block = help.slice(at + '\nOptions:\n'.length).split(/\n\n/)[0]!;
  return [...block.matchAll(/^ {2}(-\S+(?: -\S+)?)/gm)].flatMap((m) => [...m[1]!.matchAll(FLAG)].map((f) => f[1]!));
}

/** The command names of a `--help` text's Commands list. */
function helpCommands(help: string): string[] {
  const at = help.indexOf('\nCommands:\n');
  if (at < 0) return [];
  const block = help.slice(at + '\nCommands:\n'.length).split(/\n\n/)[0]!;
  return [...block.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!);
}

const TABLE = rows();
const COMMANDS = TABLE.filter((r) => r.words.length > 0 && r.words[0] !== 'help');

describe('README "Command reference"', () => {
  it('names every command (checked below against the CLI) and the documented environment', () => {
    expect(COMMANDS.map((r) => r.words.join(' '))).toEqual([
      'run', 'check-config', 'keygen', 'status', 'switchover', 'failover', 'maintenance', 'release-vip', 'audit verify', 'audit tail',
    ]);
    const section = referenceSection();
    for (const text of ['REDIS_HA_CONTROL_SOCKET', '**64**', '**78**', '**3**', '`--json`']) expect(section).toContain(text);
  });

  it.each(TABLE.map((r) => [r.words.join(' ') || '(the program)', r] as const))('%s: --help exits 0 and shows every flag the table names', async (_name, row) => {
    const words = row.words[0] === 'help' ? [] : row.words;
    const r = await runCli([...words, '--help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(row.flags.length, row.text).toBeGreaterThan(0);
    for (const flag of row.flags) expect(helpFlags(r.stdout), `${flag} in redis-ha ${words.join(' ')} --help`).toContain(flag);
    if (row.flags.includes('--socket')) expect(r.stdout).toContain('$REDIS_HA_CONTROL_SOCKET');
  });

  it('has every flag each command has (the CLI adds none the table lacks)', async () => {
    for (const row of COMMANDS) {
      const r = await runCli([...row.words, '--help']);
      const undocumented = helpFlags(r.stdout).filter((f) => !['-h', '--help'].includes(f) && !row.flags.includes(f));
      expect(undocumented, `flags of redis-ha ${row.words.join(' ')} missing from README "Command reference"`).toEqual([]);
    }
  });

  it('has every command the CLI has', async () => {
    const top = helpCommands((await runCli(['--help'])).stdout).filter((c) => c !== 'help');
    const audit = helpCommands((await runCli(['audit', '--help'])).stdout).filter((c) => c !== 'help').map((c) => `audit ${c}`);
    const documented = new Set(COMMANDS.map((r) => r.words.join(' ')));
    expect([...top.filter((c) => c !== 'audit'), ...audit].filter((c) => !documented.has(c))).toEqual([]);
    expect(top).toContain('audit');
  });
});

describe('bad arguments exit 64', () => {
  it.each([
    [['no-such-command']],
    [['audit', 'no-such-command']],
    [['--no-such-flag']],
    [[]],
    [['maintenance']],
    [['maintenance', 'sometimes', '-s', join(dir, 'none.sock')]],
    [['status', 'extra', '-s', join(dir, 'none.sock')]],
    [['keygen', '--id', '256']],
    [['switchover', '--timeout', 'soon', '-s', join(dir, 'none.sock')]],
    [['audit', 'tail', '--lines', '-1', '--file', join(dir, 'none.jsonl')]],
    [['audit', 'verify', '--anchor', 'x', '--file', join(dir, 'none.jsonl')]],
  ])('redis-ha %j', async (args) => {
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toBe('');
  });

  it.each(COMMANDS.map((r) => [r.words.join(' '), r] as const))('%s: an unknown flag, and each flag that takes a value given none', async (_name, row) => {
    const unknown = await runCli([...row.words, '--no-such-flag']);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toMatch(/^error: unknown option '--no-such-flag'/);
    for (const flag of row.valued) {
      const missing = await runCli([...row.words, flag]);
      expect(missing.code, `redis-ha ${row.words.join(' ')} ${flag}`).toBe(64);
      expect(missing.stderr).toMatch(/argument missing/);
    }
  });
});

/** The `file://` URLs the ES module loader loaded while running the CLI with `args`. */
async function loadedModules(args: readonly string[]): Promise<string[]> {
  const file = join(dir, `modules-${Math.random().toString(36).slice(2)}.txt`);
  await new Promise<void>((resolve) => {
    execFile(process.execPath, ['--import', join(ROOT, 'test/helpers/record-esm.mjs'), CLI, ...args],
      { env: { PATH: process.env.PATH, RECORD_ESM_FILE: file }, timeout: 8_000 }, () => resolve());
  });
  return (await readFile(file, 'utf8')).split('\n').filter((l) => l.startsWith('file://'));
}

/** Packages a light command must not load: the daemon's (Redis client, logger, metrics, etcd, configuration schema). */
const HEAVY_PACKAGES = ['ioredis', 'pino', 'prom-client', 'etcd3', 'convict'];

describe('redis-ha --version', () => {
  const expected = `redis-ha ${PACKAGE.version} (advert format ${ADVERT_VERSION})\n`;

  it.each([['--version'], ['-V']])('%s prints the package and advert format versions', async (flag) => {
    expect(await runCli([flag])).toEqual({ code: 0, stdout: expected, stderr: '' });
  });

  it('works in the installed layout (dist/ and package.json side by side in the prefix)', async () => {
    const prefix = join(dir, 'opt-redis-ha');
    await cp(join(ROOT, 'dist'), join(prefix, 'dist'), { recursive: true });
    await cp(join(ROOT, 'package.json'), join(prefix, 'package.json'));
    await symlink(join(ROOT, 'node_modules'), join(prefix, 'node_modules'));
    const run = (): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolve) => {
      execFile(process.execPath, [join(prefix, 'dist/cli/main.js'), '--version'], { timeout: 8_000 }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }));
    });
    expect(await run()).toEqual({ code: 0, stdout: expected, stderr: '' });
    // Without its package.json the version is unknown, and it says why.
    await rm(join(prefix, 'package.json'));
    const lost = await run();
    expect(lost.code).toBe(1);
    expect(lost.stdout).toBe(`redis-ha version unknown (advert format ${ADVERT_VERSION})\n`);
    expect(lost.stderr).toBe(`redis-ha: cannot read ${join(prefix, 'package.json')}: no such file\n`);
  });

  it('loads neither the daemon nor its packages; nor does status', async () => {
    for (const args of [['--version'], ['status', '-s', join(dir, 'none.sock'), '-c', join(dir, 'none.yaml')]]) {
      const loaded = await loadedModules(args);
      const ours = loaded.filter((url) => url.includes('/dist/')).map((url) => url.slice(url.indexOf('/dist/') + '/dist/'.length));
      expect(ours, args.join(' ')).toContain('cli/main.js');
      expect(ours.filter((m) => m.startsWith('daemon/') && m !== 'daemon/status.js'), args.join(' ')).toEqual([]);
      expect(ours.filter((m) => m.startsWith('config/load') || m.startsWith('adapters/redis')), args.join(' ')).toEqual([]);
      expect(loaded.filter((url) => HEAVY_PACKAGES.some((p) => url.includes(`/node_modules/${p}/`))), args.join(' ')).toEqual([]);
      if (args[0] === '--version') expect(ours.filter((m) => m.startsWith('daemon/') || m === 'cli/control.js')).toEqual([]);
    }
  });
});
