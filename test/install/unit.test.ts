/**
 * The systemd unit, the logrotate file and the install scripts, checked without
 * installing anything: `systemd-analyze verify` accepts the unit, `systemd-analyze
 * security` scores it no worse than the exposure documented at its top, the directives
 * the daemon relies on are there (and the ones that would break it are not), and the
 * scripts parse. The install itself is exercised by install.test.ts.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PROJECT_ROOT,
  announceSkip,
  available,
  describeRun,
  parseExposure,
  readUnit,
  run,
  unitValue,
  unitValues,
  type UnitAssignments,
} from './helpers.js';

const UNIT_PATH = join(PROJECT_ROOT, 'systemd/redis-ha.service');
const LOGROTATE_PATH = join(PROJECT_ROOT, 'etc/redis-ha.logrotate');
const LAUNCHER = '/usr/local/bin/redis-ha';
const CONFIG = '/etc/redis-ha/redis-ha.yaml';
const ALLOWED_CAPABILITIES = ['CAP_NET_ADMIN', 'CAP_NET_RAW'];

const unitText = readFileSync(UNIT_PATH, 'utf8');
const unit: UnitAssignments = readUnit(UNIT_PATH);
const service = (key: string): string | undefined => unitValue(unit, 'Service', key);

/** The exposure documented in the unit's header ("overall exposure 2.1"). */
function documentedExposure(): number {
  const match = /overall exposure (\d+(?:\.\d+)?)/i.exec(unitText);
  if (!match) throw new Error(`${UNIT_PATH}: no "overall exposure N.N" in the header comment`);
  return Number(match[1]);
}

const hasAnalyze = await available('systemd-analyze');
if (!hasAnalyze) {
  announceSkip(
    'test/install/unit.test.ts (systemd-analyze verify / security)',
    'systemd-analyze is not installed; `apt-get install systemd` (scripts/setup.sh does) to run these checks',
  );
}

describe.skipIf(!hasAnalyze)('systemd-analyze', () => {
  let dir = '';
  let unitCopy = '';

  beforeAll(() => {
    // verify insists that ExecStart= binaries exist; this machine has no installed
    // redis-ha, so check a copy whose commands point at a stand-in executable. Nothing
    // else changes, and the copy keeps the unit's name.
    dir = mkdtempSync(join(tmpdir(), 'redis-ha-unit-'));
    const stand = join(dir, 'redis-ha');
    writeFileSync(stand, '#!/bin/sh\nexit 0\n');
    chmodSync(stand, 0o755);
    unitCopy = join(dir, 'redis-ha.service');
    writeFileSync(unitCopy, unitText.replaceAll(LAUNCHER, stand));
  });

  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('verify accepts the unit: no unknown directive, bad value or missing program', async () => {
    const result = await run('systemd-analyze', ['verify', unitCopy]);
    // Other units on the host may draw warnings of their own; ours must draw none.
    const ours = result.stderr.split('\n').filter((line) => line.includes('redis-ha'));
    expect(ours, describeRun('systemd-analyze verify', result)).toEqual([]);
    expect(result.status, describeRun('systemd-analyze verify', result)).toBe(0);
  });

  it('security --offline scores the unit no worse than its documented exposure', async (ctx) => {
    const result = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', unitCopy]);
    if (result.status !== 0 && /unrecognized option|unknown option/i.test(result.stderr)) {
      announceSkip('systemd-analyze security --offline', `this systemd-analyze has no --offline (systemd < 252): ${result.stderr.trim()}`);
      ctx.skip();
    }
    const exposure = parseExposure(result.stdout + result.stderr);
    expect(exposure, describeRun('systemd-analyze security', result)).not.toBeNull();
    process.stderr.write(`redis-ha.service: systemd-analyze security exposure ${exposure} (documented ${documentedExposure()})\n`);
    expect(exposure!).toBeLessThanOrEqual(documentedExposure());
  });
});

describe('redis-ha.service', () => {
  it('is a notify service with a watchdog, started after check-config, cleaned up by release-vip', () => {
    expect(service('Type')).toBe('notify');
    expect(service('NotifyAccess')).toBe('main');
    expect(service('WatchdogSec')).toBe('10s');
    expect(service('TimeoutStartSec')).toBe('30s');
    expect(service('Restart')).toBe('always');
    expect(service('RestartSec')).toBe('1s');
    expect(unitValues(unit, 'Service', 'ExecStartPre')).toEqual([`${LAUNCHER} check-config --config ${CONFIG}`]);
    expect(unitValues(unit, 'Service', 'ExecStart')).toEqual([`${LAUNCHER} run --config ${CONFIG}`]);
    expect(unitValues(unit, 'Service', 'ExecStopPost')).toEqual([`${LAUNCHER} release-vip --config ${CONFIG}`]);
    expect(service('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(service('KillSignal')).toBe('SIGTERM');
  });

  it('runs as redis-ha with systemd-managed directories; the runtime directory survives restarts', () => {
    expect(service('User')).toBe('redis-ha');
    expect(service('Group')).toBe('redis-ha');
    for (const key of ['RuntimeDirectory', 'StateDirectory', 'LogsDirectory', 'ConfigurationDirectory']) {
      expect(service(key), key).toBe('redis-ha');
    }
    // The restart-in-place marker lives there and must outlast the restart.
    expect(service('RuntimeDirectoryPreserve')).toBe('restart');
    expect(service('RuntimeDirectoryMode')).toBe('0750');
    expect(service('UMask')).toBe('0027');
  });

  it('has only CAP_NET_ADMIN and CAP_NET_RAW, in the bounding and the ambient set', () => {
    const caps = (key: string): string[] =>
      unitValues(unit, 'Service', key)
        .flatMap((v) => v.split(/\s+/))
        .filter((v) => v !== '')
        .sort();
    expect(caps('CapabilityBoundingSet')).toEqual(ALLOWED_CAPABILITIES);
    expect(caps('AmbientCapabilities')).toEqual(ALLOWED_CAPABILITIES);
    expect(service('NoNewPrivileges')).toBe('yes');
  });

  it('is sandboxed, but not in the ways that break the daemon', () => {
    for (const [key, value] of [
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'yes'],
      ['ProtectKernelTunables', 'yes'],
      ['ProtectKernelModules', 'yes'],
      ['ProtectKernelLogs', 'yes'],
      ['ProtectControlGroups', 'yes'],
      ['ProtectClock', 'yes'],
      ['ProtectHostname', 'yes'],
      ['RestrictNamespaces', 'yes'],
      ['RestrictRealtime', 'yes'],
      ['RestrictSUIDSGID', 'yes'],
      ['LockPersonality', 'yes'],
      ['SystemCallArchitectures', 'native'],
    ] as const) {
      expect(service(key), key).toBe(value);
    }
    expect(service('RestrictAddressFamilies')?.split(/\s+/).sort()).toEqual(
      ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET', 'AF_UNIX'],
    );
    expect(unitValues(unit, 'Service', 'SystemCallFilter')[0]).toBe('@system-service');
    // V8's JIT needs writable+executable memory.
    expect(service('MemoryDenyWriteExecute') ?? 'no').toBe('no');
    // Control-socket clients' /proc/<pid>/status (their groups) must stay readable, and
    // /proc/sys (ip_nonlocal_bind, arp_announce) too.
    expect(service('ProtectProc') ?? 'default').toBe('default');
    expect(service('ProcSubset') ?? 'all').toBe('all');
    // The daemon needs the host's network and its own capabilities there.
    expect(service('PrivateNetwork') ?? 'no').toBe('no');
    expect(service('PrivateUsers') ?? 'no').toBe('no');
    // arping calls capset() and setuid() to drop privileges.
    expect(unitValues(unit, 'Service', 'SystemCallFilter')).not.toContain('~@privileged');
  });

  it('is wanted by multi-user.target and starts after the network and Redis', () => {
    expect(unitValue(unit, 'Install', 'WantedBy')).toBe('multi-user.target');
    expect(unitValue(unit, 'Unit', 'After')?.split(/\s+/)).toEqual(
      expect.arrayContaining(['network-online.target', 'redis-server.service']),
    );
  });
});

describe('etc/redis-ha.logrotate', () => {
  const text = readFileSync(LOGROTATE_PATH, 'utf8');
  const directives = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  it('rotates the audit log daily, 30 generations, compressed one rotation late', () => {
    expect(directives[0]).toBe('/var/log/redis-ha/audit.jsonl {');
    for (const d of ['daily', 'rotate 30', 'compress', 'delaycompress', 'missingok', 'notifempty', 'create 0640 redis-ha redis-ha']) {
      expect(directives, d).toContain(d);
    }
  });

  it('renames rather than copies (the hash chain spans rotations) and keeps numbered names', () => {
    expect(directives).not.toContain('copytruncate');
    expect(directives).not.toContain('dateext');
  });

  it('tells the daemon to reopen the log, ignoring failure', () => {
    const post = directives.slice(directives.indexOf('postrotate') + 1, directives.indexOf('endscript'));
    expect(post.join('\n')).toMatch(/^systemctl kill .*-s HUP redis-ha\.service .*\|\| true$/m);
  });
});

describe('install scripts', () => {
  for (const script of ['scripts/install.sh', 'scripts/uninstall.sh']) {
    it(`${script} parses (bash -n) and answers --help`, async () => {
      const path = join(PROJECT_ROOT, script);
      const syntax = await run('bash', ['-n', path]);
      expect(syntax.status, describeRun(`bash -n ${script}`, syntax)).toBe(0);
      const help = await run('bash', [path, '--help']);
      expect(help.status, describeRun(`${script} --help`, help)).toBe(0);
      expect(help.stdout).toMatch(/--root DIR/);
    });

    it(`${script} refuses an unknown option`, async () => {
      const result = await run('bash', [join(PROJECT_ROOT, script), '--bogus']);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(/unknown argument: --bogus/);
    });
  }
});
