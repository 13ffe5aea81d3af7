/**
 * The Node.js that scripts/install.sh puts in the prefix is one pinned version whose
 * tarball must match a SHA-512 written in the script. Never downloads anything: the
 * checks run on a fake tarball made here, and the install that would fetch Node.js gets
 * a fake `npm` that hands over that tarball, which must then be refused.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, announceSkip, describeRun, run, type RunResult } from './helpers.js';

const INSTALL_SH = join(PROJECT_ROOT, 'scripts/install.sh');
const SCRIPT = readFileSync(INSTALL_SH, 'utf8');
const NODE_VERSION = /^NODE_VERSION=(\S+)$/m.exec(SCRIPT)?.[1] ?? '';
const STEP_TIMEOUT_MS = 120_000;

let work = '';
/** A tarball laid out like the npm package node-linux-<arch> (package/bin/node), and its SHA-512. */
let fakeTarball = '';
let fakeSha512 = '';

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'redis-ha-node-pin-'));
  const pkg = join(work, 'pkg/package/bin');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'node'), `#!/bin/sh\necho v${NODE_VERSION}\n`, { mode: 0o755 });
  fakeTarball = join(work, 'fake-node.tgz');
  const tar = await run('tar', ['-czf', fakeTarball, '-C', join(work, 'pkg'), 'package']);
  expect(tar.status, describeRun('tar', tar)).toBe(0);
  fakeSha512 = (await run('sha512sum', [fakeTarball])).stdout.split(' ')[0] ?? '';
});

afterAll(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

/** Runs `function args...` of install.sh, sourced (which defines its functions and does nothing else). */
function sourced(fn: string, args: readonly string[]): Promise<RunResult> {
  return run('bash', ['-c', `source "$1" && shift && ${fn} "$@"`, 'node-pin.test', INSTALL_SH, ...args]);
}

describe('the pinned Node.js', () => {
  it('is one exact version, with a SHA-512 for each architecture the script installs', () => {
    expect(NODE_VERSION).toMatch(/^22\.\d+\.\d+$/);
    for (const arch of ['x64', 'arm64']) expect(SCRIPT).toMatch(new RegExp(`^  \\[${arch}\\]=[0-9a-f]{128}$`, 'm'));
    expect(SCRIPT).not.toMatch(/node-linux-\$arch@\$NODE_MAJOR/);
  });

  it('verify_sha512 accepts the matching checksum only', async () => {
    expect((await sourced('verify_sha512', [fakeTarball, fakeSha512])).status).toBe(0);
    expect((await sourced('verify_sha512', [fakeTarball, fakeSha512.replace(/^./, (c) => (c === '0' ? '1' : '0'))])).status).toBe(1);
    expect((await sourced('verify_sha512', [fakeTarball, ''])).status).toBe(1);
  });

  it('install_node_tarball unpacks a tarball with the right checksum as <dest>/bin/node', async () => {
    const dest = join(work, 'good');
    const result = await sourced('install_node_tarball', [fakeTarball, fakeSha512, dest, 'x64']);
    expect(result.status, describeRun('install_node_tarball', result)).toBe(0);
    expect((await run(join(dest, 'bin/node'), ['--version'])).stdout).toBe(`v${NODE_VERSION}\n`);
  });

  it('install_node_tarball refuses any other tarball and leaves <dest> alone', async () => {
    const dest = join(work, 'bad');
    const result = await sourced('install_node_tarball', [fakeTarball, '0'.repeat(128), dest, 'x64']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`the Node.js ${NODE_VERSION} package for x64 does not have the pinned SHA-512 (got ${fakeSha512}): not installing it`);
    expect(existsSync(dest)).toBe(false);
  });
});

const isRoot = process.getuid?.() === 0;
if (!isRoot) announceSkip('test/install/node-pin.test.ts (install.sh fetching Node.js)', 'not root (install.sh runs as root only)');

describe.skipIf(!isRoot)('install.sh --root into a root without Node.js', () => {
  let root = '';
  let install: RunResult;
  let npmLog = '';

  beforeAll(async () => {
    if (!existsSync(join(PROJECT_ROOT, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run `npm run build` first');
    root = join(work, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    // npm as far as install.sh can tell: `npm pack` hands over the fake tarball.
    const bin = join(work, 'bin');
    mkdirSync(bin);
    npmLog = join(work, 'npm.log');
    writeFileSync(
      join(bin, 'npm'),
      [
        '#!/bin/sh',
        `printf '%s\\n' "$*" >> '${npmLog}'`,
        'dest=.',
        'while [ $# -gt 0 ]; do case "$1" in --pack-destination) dest=$2; shift 2 ;; *) shift ;; esac; done',
        `cp '${fakeTarball}' "$dest/node-linux-fake.tgz"`,
        'echo node-linux-fake.tgz',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    install = await run('bash', [INSTALL_SH, '--root', root, '--no-packages', '--no-start'], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` },
      timeoutMs: STEP_TIMEOUT_MS,
    });
  }, STEP_TIMEOUT_MS);

  it('fetches the pinned version with npm pack (no install scripts) and refuses a tarball without its checksum', () => {
    expect(install.status, describeRun('install.sh', install)).toBe(1);
    expect(install.stderr).toMatch(
      new RegExp(`error: the Node\\.js ${NODE_VERSION.replace(/\./g, '\\.')} package for (x64|arm64) does not have the pinned SHA-512 \\(got ${fakeSha512}\\)`),
    );
    expect(readFileSync(npmLog, 'utf8')).toMatch(
      new RegExp(`^pack --silent --pack-destination \\S+ node-linux-(x64|arm64)@${NODE_VERSION.replace(/\./g, '\\.')}\\n$`),
    );
    expect(existsSync(join(root, 'opt/redis-ha/node/bin/node'))).toBe(false);
    expect(existsSync(join(root, 'usr/local/bin/redis-ha'))).toBe(false);
  });
});
