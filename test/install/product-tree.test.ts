/**
 * The product ships and installs without its lab and benchmark (`tools/`): what
 * `npm pack` would publish (package.json `files`), and what `scripts/install.sh --root`
 * puts in a root file system. Cheap counterpart of install.test.ts (no debootstrap, no
 * network): the install goes into an empty temp root over an earlier install's Node.js
 * and node_modules (this machine's, linked in), so install.sh neither downloads Node.js
 * nor runs npm ci, and the installed program itself generates the advert key, which
 * shows that it runs without the tools. install.test.ts runs the same check after a
 * real install into a fresh Debian root.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe.skipIf(!isRoot)('install.sh --root into an empty root', () => {
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
    root = mkdtempSync(join(tmpdir(), 'redis-ha-tree-'));
    // The account files useradd --root edits.
    mkdirSync(join(root, 'etc'));
    for (const file of ['passwd', 'group', 'shadow', 'gshadow']) writeFileSync(join(root, 'etc', file), '');
    // An earlier install: its Node.js and its production node_modules, up to date with the lock.
    mkdirSync(join(prefix(), 'node/bin'), { recursive: true });
    links.push(join(prefix(), 'node/bin/node'), join(prefix(), 'node_modules'));
    symlinkSync(process.execPath, links[0]!);
    symlinkSync(join(PROJECT_ROOT, 'node_modules'), links[1]!);
    copyFileSync(join(PROJECT_ROOT, 'package.json'), join(prefix(), 'package.json'));
    copyFileSync(join(PROJECT_ROOT, 'package-lock.json'), join(prefix(), 'package-lock.json'));
    copyFileSync(join(PROJECT_ROOT, 'package-lock.json'), join(prefix(), '.installed-package-lock.json'));

    install = await run('bash', [join(PROJECT_ROOT, 'scripts/install.sh'), '--root', root, '--no-packages', '--no-start'], {
      timeoutMs: STEP_TIMEOUT_MS,
    });
  }, STEP_TIMEOUT_MS);

  afterAll(() => {
    if (root === '') return;
    for (const link of links) {
      try {
        unlinkSync(link);
      } catch {
        // Not created.
      }
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('installs, and the installed program runs (it generated the advert key)', () => {
    expect(install.status, describeRun('install.sh', install)).toBe(0);
    expect(install.stdout).toMatch(/production node_modules up to date/);
    expect(install.stdout).toMatch(/created the advert key/);
    expect(existsSync(join(prefix(), 'dist/cli/main.js'))).toBe(true);
  });

  it('installs no lab or benchmark code', () => {
    expect(existsSync(join(prefix(), 'dist/cli/main.js')), 'nothing installed to look through').toBe(true);
    expect(toolCodeIn(prefix())).toEqual([]);
  });
});
