/**
 * scripts/setup.sh never leaves the /usr/sbin/policy-rc.d it makes (exit 101: "start no
 * service") behind. scripts/lab.sh sources setup.sh and then execs node, and bash runs
 * no EXIT trap on exec: a removal left to a trap of the sourcing shell never ran, and
 * every later `apt-get install` on that machine silently started no service.
 *
 * Runs the real setup.sh the way lab.sh and test.sh do (sourced, then exec or more
 * commands), in a mount namespace of its own where /usr/sbin is an empty temp directory,
 * with a fake dpkg-query (one package missing), a fake apt-get (records whether the
 * policy file exists while it "installs", then succeeds or fails) and a fake npm (no
 * build). Nothing is installed and this machine's /usr/sbin is never touched. Root only
 * (unshare --mount); not timing-sensitive.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, announceSkip, available, describeRun, run, type RunResult } from './helpers.js';

const SETUP_SH = join(PROJECT_ROOT, 'scripts/setup.sh');

async function skipReason(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root (the test needs unshare --mount)';
  if (!(await available('unshare', ['--version']))) return 'unshare is not installed (package util-linux)';
  return undefined;
}
const SKIP = await skipReason();
if (SKIP !== undefined) announceSkip('setup.sh policy-rc.d', SKIP);

describe.skipIf(SKIP !== undefined)('scripts/setup.sh and /usr/sbin/policy-rc.d', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'redis-ha-setup-policy-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Runs `bash -c CALLER scripts/lab.sh` (so setup.sh's `cd "$(dirname "$0")/.."` finds
   * the checkout) with /usr/sbin replaced by SBIN and the fakes first in PATH.
   */
  async function runSetup(name: string, caller: string, aptStatus: number, policyBefore?: string): Promise<{ result: RunResult; sbin: string; log: string }> {
    const sbin = join(dir, name, 'sbin');
    const fakes = join(dir, name, 'bin');
    const log = join(dir, name, 'apt.log');
    mkdirSync(sbin, { recursive: true });
    mkdirSync(fakes, { recursive: true });
    if (policyBefore !== undefined) writeFileSync(join(sbin, 'policy-rc.d'), policyBefore, { mode: 0o755 });
    const fake = (file: string, body: string): void => {
      writeFileSync(join(fakes, file), `#!/bin/sh\n${body}\n`);
      chmodSync(join(fakes, file), 0o755);
    };
    // Only redis-server is "missing"; everything else reads as installed.
    fake('dpkg-query', 'for a; do last="$a"; done\n[ "$last" = redis-server ] && exit 1\nprintf "install ok installed"');
    fake(
      'apt-get',
      `case "$1" in install) if [ -e /usr/sbin/policy-rc.d ]; then echo "install: policy-rc.d present" >> '${log}'; else echo "install: policy-rc.d absent" >> '${log}'; fi; exit ${aptStatus} ;; esac\nexit 0`,
    );
    fake('npm', 'exit 0');
    fake('systemctl', 'exit 0');
    const inner = `mount --bind '${sbin}' /usr/sbin && exec bash -c "$0" "$1"`;
    const result = await run(
      'unshare',
      ['--mount', '--propagation', 'private', 'bash', '-c', inner, caller, join(PROJECT_ROOT, 'scripts/lab.sh')],
      { cwd: PROJECT_ROOT, env: { ...process.env, PATH: `${fakes}:${process.env.PATH ?? '/usr/bin:/bin'}` }, timeoutMs: 60_000 },
    );
    return { result, sbin, log: existsSync(log) ? readFileSync(log, 'utf8') : '' };
  }

  it('lab.sh and test.sh source setup.sh (the case this guards)', () => {
    for (const script of ['lab.sh', 'test.sh']) {
      expect(readFileSync(join(PROJECT_ROOT, 'scripts', script), 'utf8')).toMatch(/^source scripts\/setup\.sh$/m);
    }
    expect(readFileSync(SETUP_SH, 'utf8')).toContain('policy-rc.d');
  });

  it('sourced and then exec (scripts/lab.sh): the file existed during apt-get install and is gone after', async () => {
    const { result, sbin, log } = await runSetup('exec', `source scripts/setup.sh; exec /bin/true`, 0);
    expect(result.status, describeRun('setup.sh sourced, then exec', result)).toBe(0);
    expect(log).toBe('install: policy-rc.d present\n');
    expect(existsSync(join(sbin, 'policy-rc.d'))).toBe(false);
  });

  it('sourced and then more commands (scripts/test.sh): gone before the next command runs', async () => {
    const { result, sbin } = await runSetup('more', `source scripts/setup.sh; [ ! -e /usr/sbin/policy-rc.d ] || { echo "still there" >&2; exit 7; }`, 0);
    expect(result.status, describeRun('setup.sh sourced, then a check', result)).toBe(0);
    expect(existsSync(join(sbin, 'policy-rc.d'))).toBe(false);
  });

  it('apt-get install fails: setup.sh stops with a message and the file is gone', async () => {
    const { result, sbin, log } = await runSetup('fail', `source scripts/setup.sh; exec /bin/true`, 100);
    expect(result.status, describeRun('setup.sh with a failing apt-get', result)).not.toBe(0);
    expect(result.stderr).toContain('apt-get install redis-server failed');
    expect(log).toBe('install: policy-rc.d present\n');
    expect(existsSync(join(sbin, 'policy-rc.d'))).toBe(false);
  });

  it("an operator's own policy-rc.d is left as it was", async () => {
    const mine = '#!/bin/sh\n# mine\nexit 0\n';
    const { result, sbin } = await runSetup('own', `source scripts/setup.sh; exec /bin/true`, 0, mine);
    expect(result.status, describeRun('setup.sh with a policy-rc.d present', result)).toBe(0);
    expect(readFileSync(join(sbin, 'policy-rc.d'), 'utf8')).toBe(mine);
  });
});
