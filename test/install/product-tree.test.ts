/**
 * The product ships and installs without its lab and benchmark (`tools/`): what
 * `npm pack` would publish (package.json `files`), and what `scripts/install.sh --root`
 * puts in a root file system. Cheap counterpart of install.test.ts (no debootstrap, no
 * network): the install goes into an empty temp root over an earlier install's Node.js
 * and node_modules (this machine's, linked in), so install.sh neither downloads Node.js
 * nor runs npm ci, and the installed program itself generates the advert key, which
 * shows that it runs without the tools. install.test.ts runs the same check after a
 * real install into a fresh Debian root.
 *
 * The root's path holds a quote and a command substitution: install.sh once built its
 * clean-up commands for eval from it, so the install ran `touch` from the path. And the
 * launcher it writes runs the Node.js chosen at install time by its absolute path, never
 * a `node` found first in PATH.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { PROJECT_ROOT, announceSkip, describeRun, run, toolCodeIn, toolPathProblems, type RunResult } from './helpers.js';

const PREFIX = '/opt/redis-ha';
const STEP_TIMEOUT_MS = 120_000;

describe('toolCodeIn', () => {
  it('finds lab and benchmark code by path, entry name or content, and skips third-party directories', () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-ha-toolcode-'));
    try {
      const put = (rel: string, text = ''): void => {
        mkdirSync(join(dir, rel, '..'), { recursive: true });
        writeFileSync(join(dir, rel), text);
      };
      put('dist/cli/main.js', 'export {};');
      put('dist/lab/pair.js');
      put('dist/bench/setups/sentinel.js');
      put('dist/daemon/writer.js');
      put('dist/daemon/run.js', 'import { PairLab } from "x";');
      put('node_modules/some-dep/bench/index.js', 'PairLab');
      expect(toolCodeIn(dir).sort()).toEqual([
        'dist/bench: a bench/ directory',
        "dist/daemon/run.js: mentions PairLab",
        "dist/daemon/writer.js: the lab's writer.js",
        'dist/lab: a lab/ directory',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npm pack', () => {
  it('ships no lab or benchmark code', async () => {
    const pack = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: PROJECT_ROOT, timeoutMs: STEP_TIMEOUT_MS });
    expect(pack.status, describeRun('npm pack --dry-run', pack)).toBe(0);
    const [listing] = JSON.parse(pack.stdout) as Array<{ files: Array<{ path: string }> }>;
    const paths = listing?.files.map((f) => f.path) ?? [];
    expect(paths).toContain('scripts/install.sh');
    expect(paths.flatMap(toolPathProblems)).toEqual([]);
    // The lab's launcher and the test scripts stay in the checkout.
    expect(paths.filter((p) => /^scripts\/(lab|setup|test)\.sh$/.test(p))).toEqual([]);
  });
});

const isRoot = process.getuid?.() === 0;
if (!isRoot) announceSkip('test/install/product-tree.test.ts (install.sh --root into a temp root)', 'not root (install.sh creates an account in the root with useradd --root)');

/** The Node.js version install.sh pins (the one it keeps in the prefix without fetching it again). */
const PINNED_NODE = /^NODE_VERSION=(\S+)$/m.exec(readFileSync(join(PROJECT_ROOT, 'scripts/install.sh'), 'utf8'))?.[1] ?? 'unknown';
/** A path component that runs `touch pwned` if it is ever pasted into shell code. */
const HOSTILE_NAME = `root'$(touch pwned)'"\`touch pwned2\`"`;

describe.skipIf(!isRoot)('install.sh --root into an empty root', () => {
  let work = '';
  let root = '';
  let install: RunResult;
  const prefix = (): string => join(root, PREFIX);
  /** Symbolic links into this machine, removed before the tree is. */
  const links: string[] = [];

  beforeAll(async () => {
    for (const built of ['dist/cli/main.js', 'native/peercred/build/Release/peercred.node']) {
      if (!existsSync(join(PROJECT_ROOT, built))) {
        throw new Error(`${built} is missing: run \`npm run build\` before this test (scripts/test.sh does)`);
      }
    }
    work = mkdtempSync(join(tmpdir(), 'redis-ha-tree-'));
    root = join(work, HOSTILE_NAME);
    // The account files useradd --root edits.
    mkdirSync(join(root, 'etc'), { recursive: true });
    for (const file of ['passwd', 'group', 'shadow', 'gshadow']) writeFileSync(join(root, 'etc', file), '');
    // An earlier install: its Node.js (the pinned version, as far as install.sh can tell)
    // and its production node_modules, up to date with the lock.
    mkdirSync(join(prefix(), 'node/bin'), { recursive: true });
    writeFileSync(
      join(prefix(), 'node/bin/node'),
      `#!/bin/sh\n[ "$1" = --version ] && { echo v${PINNED_NODE}; exit 0; }\nexec '${process.execPath}' "$@"\n`,
      { mode: 0o755 },
    );
    links.push(join(prefix(), 'node_modules'));
    symlinkSync(join(PROJECT_ROOT, 'node_modules'), links[0]!);
    copyFileSync(join(PROJECT_ROOT, 'package.json'), join(prefix(), 'package.json'));
    copyFileSync(join(PROJECT_ROOT, 'package-lock.json'), join(prefix(), 'package-lock.json'));
    copyFileSync(join(PROJECT_ROOT, 'package-lock.json'), join(prefix(), '.installed-package-lock.json'));

    install = await run('bash', [join(PROJECT_ROOT, 'scripts/install.sh'), '--root', root, '--no-packages', '--no-start'], {
      cwd: work,
      timeoutMs: STEP_TIMEOUT_MS,
    });
  }, STEP_TIMEOUT_MS);

  afterAll(() => {
    if (work === '') return;
    for (const link of links) {
      try {
        unlinkSync(link);
      } catch {
        // Not created.
      }
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('installs, and the installed program runs (it generated the advert key)', () => {
    expect(install.status, describeRun('install.sh', install)).toBe(0);
    expect(install.stdout).toMatch(/production node_modules up to date/);
    expect(install.stdout).toMatch(/created the advert key/);
    expect(existsSync(join(prefix(), 'dist/cli/main.js'))).toBe(true);
  });

  it('runs nothing its --root path spells (no eval of clean-up strings)', () => {
    expect(install.status, describeRun('install.sh', install)).toBe(0);
    expect(readdirSync(work).sort()).toEqual([HOSTILE_NAME]);
    expect(readdirSync(join(root, 'etc/redis-ha')).filter((name) => name.startsWith('.advert.key.'))).toEqual([]);
  });

  it('writes a launcher that runs the Node.js chosen at install time, not the first node in PATH', async () => {
    const launcher = join(root, 'usr/local/bin/redis-ha');
    const text = readFileSync(launcher, 'utf8');
    expect(text).toContain(`node='${PREFIX}/node/bin/node'`);
    // With the daemon's V8 flags (README "Footprint"), taken from the shebang of main.js.
    expect(text).toContain(`flags='${NODE_FLAGS.join(' ')}'`);
    expect(text).toContain(`exec "$node" $flags '${PREFIX}/dist/cli/main.js' "$@"`);
    expect(text).not.toMatch(/command -v|\bwhich\b/);
    expect(install.stdout).toContain(`launcher ${launcher} (Node.js ${PREFIX}/node/bin/node)`);
    // Run here, outside the root, that node does not exist: the launcher must say so and
    // stop, not fall back to a node from PATH (this one leaves a mark if it is run).
    const bin = join(work, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'node'), `#!/bin/sh\ntouch '${join(work, 'path-node-ran')}'\necho v22.0.0\n`, { mode: 0o755 });
    const result = await run('sh', [launcher, '--version'], { env: { PATH: `${bin}:/usr/bin:/bin` } });
    expect(result.status, describeRun('launcher', result)).toBe(69);
    expect(result.stderr).toContain(`redis-ha: ${PREFIX}/node/bin/node is not Node.js >= 20 (got nothing): run scripts/install.sh again`);
    expect(existsSync(join(work, 'path-node-ran'))).toBe(false);
  });

  /**
   * The installed launcher, run here: its node is a wrapper around this machine's that logs
   * each start (one line of arguments) and refuses `refusing` the way Node.js refuses a
   * flag it does not know; main.js is this checkout's build (the same code).
   */
  async function runLauncherWith(refusing: string | null, args: readonly string[], probeExit: number | null = null): Promise<{ result: RunResult; starts: string[]; fakeNode: string }> {
    const dir = mkdtempSync(join(work, 'launcher-'));
    const fakeNode = join(dir, 'node');
    const log = join(dir, 'starts.log');
    writeFileSync(
      fakeNode,
      [
        '#!/bin/sh',
        `printf '%s\\n' "$*" >> '${log}'`,
        ...(refusing === null ? [] : [`for arg; do [ "$arg" = '${refusing}' ] && { echo "$0: bad option: $arg" >&2; exit 9; }; done`]),
        ...(probeExit === null ? [] : [`for arg; do [ "$arg" = '-e' ] && exit ${probeExit}; done`]),
        `exec '${process.execPath}' "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const installed = readFileSync(join(root, 'usr/local/bin/redis-ha'), 'utf8');
    const launcher = join(dir, 'redis-ha');
    writeFileSync(
      launcher,
      installed
        .replace(`node='${PREFIX}/node/bin/node'`, `node='${fakeNode}'`)
        .replace(`'${PREFIX}/dist/cli/main.js'`, `'${join(PROJECT_ROOT, 'dist/cli/main.js')}'`),
      { mode: 0o755 },
    );
    const result = await run('sh', [launcher, ...args], { env: { PATH: '/usr/bin:/bin' } });
    return { result, starts: readFileSync(log, 'utf8').trimEnd().split('\n'), fakeNode };
  }

  it('the launcher runs the daemon with the V8 flags, checked at each start (one extra start of node), and other commands without them', async () => {
    const daemon = await runLauncherWith(null, ['run', '--help']);
    expect(daemon.result.status, describeRun('launcher', daemon.result)).toBe(0);
    expect(daemon.result.stdout).toMatch(/^Usage: redis-ha run/);
    expect(daemon.result.stderr).toBe('');
    expect(daemon.starts).toEqual(['--version', `${NODE_FLAGS.join(' ')} -e 0`, `${NODE_FLAGS.join(' ')} ${join(PROJECT_ROOT, 'dist/cli/main.js')} run --help`]);
    // check-config before a start and release-vip after a stop must not wait for a probe.
    const other = await runLauncherWith(null, ['keygen', '--id', '3']);
    expect(other.result.status, describeRun('launcher', other.result)).toBe(0);
    expect(other.result.stdout).toMatch(/^3 [0-9a-f]{64}\n$/);
    expect(other.starts).toEqual(['--version', `${join(PROJECT_ROOT, 'dist/cli/main.js')} keygen --id 3`]);
  });

  it('the launcher leaves out a V8 flag node refuses (a later Node.js), says so once, and still runs the daemon', async () => {
    const { result, starts, fakeNode } = await runLauncherWith('--lite-mode', ['run', '--help']);
    expect(result.status, describeRun('launcher', result)).toBe(0);
    expect(result.stdout).toMatch(/^Usage: redis-ha run/);
    expect(result.stderr).toBe(
      `redis-ha: warning: Node.js ${process.version} (${fakeNode}) refuses the V8 flags --lite-mode: running without them, with more memory (README "Footprint")\n`,
    );
    const others = NODE_FLAGS.filter((flag) => flag !== '--lite-mode').join(' ');
    expect(starts.at(-1)).toBe(`${others} ${join(PROJECT_ROOT, 'dist/cli/main.js')} run --help`);
  });

  it('the launcher keeps the flags when the probe fails otherwise than "bad option" (a timeout on a loaded host)', async () => {
    const { result, starts } = await runLauncherWith(null, ['run', '--help'], 124);
    expect(result.status, describeRun('launcher', result)).toBe(0);
    expect(result.stderr).toBe('');
    expect(starts.at(-1)).toBe(`${NODE_FLAGS.join(' ')} ${join(PROJECT_ROOT, 'dist/cli/main.js')} run --help`);
  });

  it('installs no lab or benchmark code', () => {
    expect(existsSync(join(prefix(), 'dist/cli/main.js')), 'nothing installed to look through').toBe(true);
    expect(toolCodeIn(prefix())).toEqual([]);
  });
});
