/**
 * scripts/install.sh and scripts/uninstall.sh against a real Debian 12 root file system,
 * built fresh by debootstrap (minbase, plus systemd so `systemd-analyze verify --root`
 * has the targets the unit depends on, plus logrotate to rotate for real), never
 * touching this machine's own /etc, /usr or /opt. Root only.
 *
 * In order: install with --root; the files, modes, owners and the account are right (and
 * no lab or benchmark code is among them);
 * the launcher runs the CLI with the Node.js it installed; check-config passes, as the
 * service user, on a filled-in configuration; the installed unit verifies in that root;
 * logrotate rotates the audit log the way `audit verify` reads it; the root boots in a
 * systemd-nspawn container (own network namespace) and the daemon runs under the unit's
 * sandbox; a second install keeps the edited configuration and the key; uninstall keeps
 * the configuration and --purge removes the rest.
 *
 * The etcd witness goes into the same root (`install.sh --witness --tls`, with Debian's
 * etcd-server from the root's apt): Debian's etcd.service is left unedited but disabled,
 * and a second run changes nothing. In the booted container install.sh --witness then
 * runs as on a live host: it refuses while Debian's etcd runs (unless
 * --replace-debian-etcd), starts the witness's unit (etcd under its sandbox, on the
 * listen address only) and runs redis-ha-witness-auth; the client files it prints work,
 * and a second run restarts nothing. (test/install/witness.test.ts covers the rest
 * without a root.)
 *
 * debootstrap takes 20-40 s against deb.debian.org here, the whole file about 100 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { PROJECT_ROOT, announceSkip, available, describeRun, run, toolCodeIn, type RunResult } from './helpers.js';

const MIRROR = 'http://deb.debian.org/debian';
const SUITE = 'bookworm';
const PREFIX = '/opt/redis-ha';
const ADDON = 'native/peercred/build/Release/peercred.node';
const SETUP_TIMEOUT_MS = 15 * 60_000;
const STEP_TIMEOUT_MS = 5 * 60_000;
/** A clean environment for commands inside the root (none of this machine's NODE_* etc.). */
const CHROOT_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };

async function skipReason(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'not root (debootstrap, chroot and mount need root)';
  if (!(await available('debootstrap', ['--version']))) return 'debootstrap is not installed (scripts/setup.sh installs it)';
  if (!(await available('systemd-analyze'))) return 'systemd-analyze is not installed (package systemd)';
  return null;
}

const reason = await skipReason();
if (reason !== null) announceSkip('test/install/install.test.ts (install.sh into a debootstrap root)', reason);
const hasNspawn = reason === null && (await available('systemd-nspawn'));
if (reason === null && !hasNspawn) {
  announceSkip(
    'install.test.ts: booting the installed unit with systemd-nspawn',
    'systemd-nspawn is not installed (package systemd-container; scripts/setup.sh installs it)',
  );
}

/** Resolves after `ms`. */
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Mount points at or below `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

/** The numeric field `field` (3 = id) of `name` in the root's passwd or group file, or null. */
function accountField(root: string, file: 'passwd' | 'group', name: string, field = 3): string | null {
  const line = readFileSync(join(root, 'etc', file), 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  return line === undefined ? null : (line.split(':')[field - 1] ?? null);
}

function mode(path: string): string {
  return (statSync(path).mode & 0o7777).toString(8).padStart(4, '0');
}

/** Mode, owner, size, mtime and content hash of everything at and under each of `paths`. */
function snapshot(root: string, paths: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const full = join(root, rel);
    if (!existsSync(full)) return;
    const stats = lstatSync(full);
    const hash = stats.isFile() ? createHash('sha256').update(readFileSync(full)).digest('hex') : '-';
    out[rel] = `${(stats.mode & 0o7777).toString(8)} ${stats.uid}:${stats.gid} ${stats.size} ${stats.mtimeMs} ${hash}`;
    if (stats.isDirectory()) for (const name of readdirSync(full)) walk(`${rel}/${name}`);
  };
  for (const path of paths) walk(path);
  return out;
}

/** The witness's address inside the booted container (the veth the test's LAN unit sets up). */
const WITNESS_ADDRESS = '10.99.0.11';
const WITNESS_PATHS = [
  'etc/redis-ha-witness',
  'var/lib/redis-ha-witness',
  'usr/lib/systemd/system/redis-ha-witness.service',
  'usr/local/sbin/redis-ha-witness-auth',
  'etc/systemd/system',
];

describe.skipIf(reason !== null)('install.sh into a fresh Debian 12 root', () => {
  let work = '';
  let root = '';
  let firstInstall: RunResult;
  const at = (path: string): string => join(root, path);
  const installSh = join(PROJECT_ROOT, 'scripts/install.sh');
  const uninstallSh = join(PROJECT_ROOT, 'scripts/uninstall.sh');
  const chroot = (args: readonly string[], userspec?: string): Promise<RunResult> =>
    run('chroot', [...(userspec ? [`--userspec=${userspec}`, `--groups=${userspec.split(':')[1]}`] : []), root, ...args], {
      env: CHROOT_ENV,
      timeoutMs: STEP_TIMEOUT_MS,
    });
  const serviceIds = (): string => `${accountField(root, 'passwd', 'redis-ha')}:${accountField(root, 'group', 'redis-ha')}`;

  beforeAll(async () => {
    for (const built of ['dist/cli/main.js', ADDON]) {
      if (!existsSync(join(PROJECT_ROOT, built))) {
        throw new Error(`${built} is missing: run \`npm run build\` before this test (scripts/test.sh does)`);
      }
    }
    work = mkdtempSync(join(tmpdir(), 'redis-ha-install-'));
    root = join(work, 'root');
    const started = Date.now();
    const bootstrap = await run(
      'debootstrap',
      ['--variant=minbase', '--include=systemd,logrotate', SUITE, root, MIRROR],
      { timeoutMs: SETUP_TIMEOUT_MS - 60_000 },
    );
    if (bootstrap.status !== 0) throw new Error(describeRun('debootstrap', bootstrap).slice(-6000));
    process.stderr.write(`install.test: debootstrap --variant=minbase ${SUITE} took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    expect(existsSync(at('usr/bin/node')), 'the fresh root must have no Node.js of its own').toBe(false);

    // Node.js needs /proc inside the root.
    mkdirSync(at('proc'), { recursive: true });
    const mount = await run('mount', ['-t', 'proc', 'proc', at('proc')]);
    if (mount.status !== 0) throw new Error(describeRun('mount -t proc', mount));

    const started2 = Date.now();
    firstInstall = await run('bash', [installSh, '--root', root, '--no-start'], { timeoutMs: STEP_TIMEOUT_MS });
    process.stderr.write(`install.test: install.sh --root took ${((Date.now() - started2) / 1000).toFixed(1)} s\n`);
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    if (work === '') return;
    for (const point of mountsUnder(work)) {
      const result = await run('umount', [point]);
      if (result.status !== 0) await run('umount', ['-l', point]);
    }
    const left = mountsUnder(work);
    if (left.length > 0) {
      // Never rm -rf across a mount point.
      process.stderr.write(`install.test: NOT removing ${work}: still mounted: ${left.join(', ')}\n`);
      return;
    }
    rmSync(work, { recursive: true, force: true });
  }, STEP_TIMEOUT_MS);

  it('install.sh --root succeeds', () => {
    expect(firstInstall.status, describeRun('install.sh', firstInstall)).toBe(0);
    expect(firstInstall.stdout).toMatch(/created .*advert\.key/);
    expect(firstInstall.stdout).toMatch(/copy .*advert\.key to the peer/);
  });

  it('installs the program, the launcher, the unit, sysctl and logrotate files', () => {
    for (const path of [
      'usr/lib/systemd/system/redis-ha.service',
      'usr/local/bin/redis-ha',
      `${PREFIX}/dist/cli/main.js`,
      `${PREFIX}/${ADDON}`,
      `${PREFIX}/package.json`,
      `${PREFIX}/README.md`,
      `${PREFIX}/etc/redis-ha.example.yaml`,
      `${PREFIX}/node_modules/ioredis/package.json`,
      'etc/sysctl.d/60-redis-ha.conf',
      'etc/logrotate.d/redis-ha',
    ]) {
      expect(existsSync(at(path)), path).toBe(true);
    }
    expect(mode(at('usr/local/bin/redis-ha'))).toBe('0755');
    // Production dependencies only.
    expect(existsSync(at(`${PREFIX}/node_modules/vitest`))).toBe(false);
    expect(existsSync(at(`${PREFIX}/node_modules/typescript`))).toBe(false);
    expect(readFileSync(at('usr/lib/systemd/system/redis-ha.service'), 'utf8')).toBe(
      readFileSync(join(PROJECT_ROOT, 'systemd/redis-ha.service'), 'utf8'),
    );
    expect(readFileSync(at('etc/sysctl.d/60-redis-ha.conf'), 'utf8')).toMatch(/^net\.ipv4\.conf\.all\.arp_announce = 2$/m);
    expect(readFileSync(at('etc/logrotate.d/redis-ha'), 'utf8')).toBe(readFileSync(join(PROJECT_ROOT, 'etc/redis-ha.logrotate'), 'utf8'));
  });

  it('installs no lab or benchmark code (they stay in tools/)', () => {
    expect(existsSync(at(`${PREFIX}/dist/cli/main.js`)), 'nothing installed to look through').toBe(true);
    expect(toolCodeIn(at(PREFIX))).toEqual([]);
  });

  it('installs the Debian packages the daemon runs (ip, arping, ndptool; kill for ExecReload)', async () => {
    for (const program of ['ip', 'arping', 'ndptool']) {
      const found = await chroot(['sh', '-c', `command -v ${program}`]);
      expect(found.status, `${program} in the root's PATH`).toBe(0);
    }
    expect(existsSync(at('bin/kill')), '/bin/kill (ExecReload=)').toBe(true);
  });

  it('creates the redis-ha system user and group, without a shell', () => {
    const uid = Number(accountField(root, 'passwd', 'redis-ha'));
    expect(uid).toBeGreaterThan(0);
    expect(uid).toBeLessThan(1000);
    expect(accountField(root, 'group', 'redis-ha')).not.toBeNull();
    expect(accountField(root, 'passwd', 'redis-ha', 7)).toBe('/usr/sbin/nologin');
  });

  it('creates the configuration (0640 root:redis-ha) and the advert key (0600 redis-ha)', () => {
    const uid = Number(accountField(root, 'passwd', 'redis-ha'));
    const gid = Number(accountField(root, 'group', 'redis-ha'));
    const config = statSync(at('etc/redis-ha/redis-ha.yaml'));
    expect(mode(at('etc/redis-ha/redis-ha.yaml'))).toBe('0640');
    expect([config.uid, config.gid]).toEqual([0, gid]);
    const key = statSync(at('etc/redis-ha/advert.key'));
    expect(mode(at('etc/redis-ha/advert.key'))).toBe('0600');
    expect([key.uid, key.gid]).toEqual([uid, gid]);
    expect(readFileSync(at('etc/redis-ha/advert.key'), 'utf8')).toMatch(/^1 [0-9a-f]{64}\n$/);
    expect(mode(at('etc/redis-ha'))).toBe('0750');
  });

  it('the launcher runs the CLI with the Node.js 22 it installed in the prefix', async () => {
    const version = await chroot([`${PREFIX}/node/bin/node`, '--version']);
    expect(version.stdout, describeRun('node --version', version)).toMatch(/^v22\./);
    const help = await chroot(['/usr/local/bin/redis-ha', '--help']);
    expect(help.status, describeRun('redis-ha --help', help)).toBe(0);
    expect(help.stdout).toMatch(/check-config/);
    const key = await chroot(['/usr/local/bin/redis-ha', 'keygen', '--id', '2']);
    expect(key.stdout, describeRun('redis-ha keygen', key)).toMatch(/^2 [0-9a-f]{64}\n$/);
  });

  it('check-config passes on a filled-in configuration, as the service user', async () => {
    // The example with this node's values and a password file the daemon's user can read.
    const config = parse(readFileSync(at('etc/redis-ha/redis-ha.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
    config.node = { ...config.node, name: 'install-test', address: '192.0.2.21' };
    config.peer = { ...config.peer, address: '192.0.2.22' };
    config.vip = { ...config.vip, address: '192.0.2.120/24', interface: 'eth0' };
    const filled = at('etc/redis-ha/redis-ha.example-filled.yaml');
    writeFileSync(filled, stringify(config), { mode: 0o640 });
    const [uid, gid] = serviceIds().split(':').map(Number) as [number, number];
    chownSync(filled, 0, gid);
    const password = at('etc/redis-ha/redis.password');
    writeFileSync(password, 'install-test-password\n', { mode: 0o600 });
    chownSync(password, uid, gid);
    chmodSync(password, 0o600);

    const check = await chroot(
      ['/usr/local/bin/redis-ha', 'check-config', '--config', '/etc/redis-ha/redis-ha.example-filled.yaml'],
      serviceIds(),
    );
    expect(check.status, describeRun('check-config as redis-ha', check)).toBe(0);
    expect(check.stdout).toMatch(/config \/etc\/redis-ha\/redis-ha\.example-filled\.yaml: OK/);
    expect(check.stdout).toMatch(/node install-test at 192\.0\.2\.21/);
    rmSync(filled);
    rmSync(password);
  });

  it('systemd-analyze verify --root accepts the installed unit', async () => {
    const result = await run('systemd-analyze', ['verify', `--root=${root}`, 'redis-ha.service'], { timeoutMs: STEP_TIMEOUT_MS });
    expect(result.stderr.split('\n').filter((l) => l.includes('redis-ha')), describeRun('verify --root', result)).toEqual([]);
    expect(result.status, describeRun('verify --root', result)).toBe(0);
  });

  it('logrotate rotates the audit log by renaming, as redis-ha, and keeps numbered names', async () => {
    const [uid, gid] = serviceIds().split(':').map(Number) as [number, number];
    const logs = at('var/log/redis-ha');
    mkdirSync(logs, { recursive: true, mode: 0o750 }); // systemd's LogsDirectory= in real life
    chownSync(logs, uid, gid);
    const write = (text: string): void => {
      writeFileSync(join(logs, 'audit.jsonl'), text, { mode: 0o640 });
      chownSync(join(logs, 'audit.jsonl'), uid, gid);
    };
    const rotate = (): Promise<RunResult> =>
      chroot(['logrotate', '--force', '--state', '/var/lib/logrotate/redis-ha-test.status', '/etc/logrotate.d/redis-ha']);

    write('{"seq":1}\n');
    const first = await rotate();
    expect(first.status, describeRun('logrotate', first)).toBe(0);
    expect(readFileSync(join(logs, 'audit.jsonl.1'), 'utf8')).toBe('{"seq":1}\n');
    const fresh = statSync(join(logs, 'audit.jsonl'));
    expect([fresh.size, fresh.uid, fresh.gid, mode(join(logs, 'audit.jsonl'))]).toEqual([0, uid, gid, '0640']);

    write('{"seq":2}\n');
    const second = await rotate();
    expect(second.status, describeRun('logrotate', second)).toBe(0);
    // delaycompress: the newest rotation stays plain, older ones are .N.gz.
    expect(readFileSync(join(logs, 'audit.jsonl.1'), 'utf8')).toBe('{"seq":2}\n');
    expect(existsSync(join(logs, 'audit.jsonl.2.gz'))).toBe(true);
  });

  describe('install.sh --witness --tls into the same root, with Debian\'s etcd-server', () => {
    let witness: RunResult;
    const installWitness = (): Promise<RunResult> =>
      run('bash', [installSh, '--witness', '--tls', '--listen', WITNESS_ADDRESS, '--root', root], { timeoutMs: STEP_TIMEOUT_MS });

    beforeAll(async () => {
      const started = Date.now();
      witness = await installWitness();
      process.stderr.write(`install.test: install.sh --witness --root took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }, STEP_TIMEOUT_MS);

    it('installs etcd-server and etcd-client with the root\'s apt, and the witness with the package\'s etcd user', () => {
      expect(witness.status, describeRun('install.sh --witness', witness)).toBe(0);
      expect(witness.stdout).toMatch(/installing Debian packages in .*: etcd-server etcd-client( openssl)?$/m);
      for (const program of ['usr/bin/etcd', 'usr/bin/etcdctl', 'usr/bin/openssl']) expect(existsSync(at(program)), program).toBe(true);
      // Debian's postinst made the account; the install did not make another one.
      expect(witness.stdout).not.toMatch(/created user etcd/);
      const uid = Number(accountField(root, 'passwd', 'etcd'));
      const gid = Number(accountField(root, 'group', 'etcd'));
      const data = statSync(at('var/lib/redis-ha-witness'));
      expect([mode(at('var/lib/redis-ha-witness')), data.uid, data.gid]).toEqual(['0700', uid, gid]);
      const key = statSync(at('etc/redis-ha-witness/server.key'));
      expect([mode(at('etc/redis-ha-witness/server.key')), key.uid, key.gid]).toEqual(['0640', 0, gid]);
      expect(mode(at('etc/redis-ha-witness/client/etcd.password'))).toBe('0600');
    });

    it('leaves Debian\'s etcd.service as the package made it, but disabled', async () => {
      expect(witness.stdout).toMatch(/disabled Debian's etcd\.service/);
      expect(existsSync(at('lib/systemd/system/etcd.service'))).toBe(true);
      expect(existsSync(at('etc/systemd/system/multi-user.target.wants/etcd.service'))).toBe(false);
      expect(existsSync(at('etc/systemd/system/etcd2.service'))).toBe(false);
      // dpkg finds none of the package's files changed.
      const verify = await run('dpkg', [`--root=${root}`, '--verify', 'etcd-server'], { timeoutMs: STEP_TIMEOUT_MS });
      expect(verify.stdout, describeRun('dpkg --verify etcd-server', verify)).toBe('');
    });

    it('systemd-analyze verify --root accepts the witness unit', async () => {
      const result = await run('systemd-analyze', ['verify', `--root=${root}`, 'redis-ha-witness.service'], { timeoutMs: STEP_TIMEOUT_MS });
      expect(result.stderr.split('\n').filter((l) => l.includes('redis-ha-witness')), describeRun('verify --root', result)).toEqual([]);
      expect(result.status, describeRun('verify --root', result)).toBe(0);
    });

    it('a second run changes nothing', async () => {
      const before = snapshot(root, WITNESS_PATHS);
      const again = await installWitness();
      expect(again.status, describeRun('second install.sh --witness', again)).toBe(0);
      expect(again.stdout).toMatch(/Debian packages present in .*: etcd-server etcd-client openssl$/m);
      expect(snapshot(root, WITNESS_PATHS)).toEqual(before);
    });
  });

  // The unit and the daemon under real systemd: the root is booted in a container with
  // its own network namespace (--private-network: nothing on this machine's network is
  // touched), a veth pair stands in for the LAN, the root's own redis-server is the local
  // Redis, and no peer answers, so the node becomes MASTER and claims the VIP. This is
  // what shows that the sandboxing leaves the daemon everything it needs: ip and arping
  // with ambient capabilities, sd_notify READY/STATUS/WATCHDOG, the control socket and
  // the peer credentials of a supplementary-group member (/proc of another user), and
  // the ExecStopPost clean-up after a crash.
  describe.skipIf(!hasNspawn)('booted with systemd-nspawn', () => {
    const VIP = '10.99.0.100';
    const machine = `redis-ha-install-${process.pid}`;
    let nspawn: ChildProcess | null = null;
    let nspawnExited: Promise<void> = Promise.resolve();
    let console_ = '';
    let initPid = 0;
    let savedConfig = '';
    /** Runs a command inside the booted container. */
    const inside = (args: readonly string[]): Promise<RunResult> =>
      run('nsenter', ['-t', String(initPid), '-a', '/usr/bin/env', '-i', ...Object.entries(CHROOT_ENV).map(([k, v]) => `${k}=${v}`), ...args], {
        timeoutMs: 60_000,
      });
    const property = async (name: string): Promise<string> =>
      (await inside(['systemctl', 'show', '--value', '-p', name, 'redis-ha.service'])).stdout.trim();
    const vipHeld = async (): Promise<boolean> => (await inside(['ip', '-br', 'addr', 'show', 'dev', 'v0'])).stdout.includes(`${VIP}/24`);
    async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (await check()) return;
        await sleep(100);
      }
      const journal = initPid > 0 ? (await inside(['journalctl', '--no-pager', '-o', 'cat', '-n', '60'])).stdout : '';
      throw new Error(`timed out waiting for ${what}\n--- journal\n${journal}\n--- console\n${console_.slice(-4000)}`);
    }

    beforeAll(async () => {
      // The root's own Redis, started at boot by its unit.
      if (!existsSync(at('usr/sbin/policy-rc.d'))) {
        writeFileSync(at('usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
      }
      const apt = await chroot(['/usr/bin/env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq',
        '--no-install-recommends', '-o', 'Dpkg::Use-Pty=0', 'redis-server']);
      rmSync(at('usr/sbin/policy-rc.d'), { force: true });
      if (apt.status !== 0) throw new Error(describeRun('apt-get install redis-server in the root', apt));

      writeFileSync(at('etc/systemd/system/test-lan.service'), [
        '[Unit]',
        'Description=veth pair standing in for the LAN',
        'DefaultDependencies=no',
        'Before=redis-ha.service',
        '[Service]',
        'Type=oneshot',
        'RemainAfterExit=yes',
        'ExecStart=/usr/sbin/ip link add v0 type veth peer name v1',
        'ExecStart=/usr/sbin/ip addr add 10.99.0.11/24 dev v0',
        'ExecStart=/usr/sbin/ip link set v1 up',
        'ExecStart=/usr/sbin/ip link set v0 up',
        '[Install]',
        'WantedBy=multi-user.target',
        '',
      ].join('\n'));
      const wants = at('etc/systemd/system/multi-user.target.wants');
      mkdirSync(wants, { recursive: true });
      symlinkSync('/etc/systemd/system/test-lan.service', join(wants, 'test-lan.service'));
      symlinkSync('/usr/lib/systemd/system/redis-ha.service', join(wants, 'redis-ha.service'));

      const configPath = at('etc/redis-ha/redis-ha.yaml');
      savedConfig = readFileSync(configPath, 'utf8');
      writeFileSync(configPath, [
        'node: { name: boot-test, address: 10.99.0.11, priority: 150 }',
        'peer: { address: 10.99.0.12 }',
        'redis: { password_file: "" }',
        `vip: { address: ${VIP}/24, interface: v0 }`,
        'control: { group: redis-ha }',
        '',
      ].join('\n'));
      // Fresh logs: the logrotate test left hand-written records that are no audit chain.
      rmSync(at('var/log/redis-ha'), { recursive: true, force: true });

      // nspawn mounts its own /proc.
      await run('umount', [at('proc')]);
      nspawn = spawn('systemd-nspawn', ['--quiet', '--boot', `--directory=${root}`, `--machine=${machine}`,
        '--private-network', '--register=no', '--keep-unit'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const child = nspawn;
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (console_ += chunk));
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (console_ += chunk));
      nspawnExited = new Promise((resolve) => child.on('exit', () => resolve()));
      // The container's PID 1 is nspawn's child.
      await waitFor('the container to start', async () => {
        const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
        initPid = Number(children[0] ?? 0);
        return initPid > 0 && readFileSync(`/proc/${initPid}/comm`, 'utf8').trim() === 'systemd';
      }, 60_000);
      await waitFor('redis-ha.service to be active (READY=1)', async () => (await property('ActiveState')) === 'active', 90_000);
    }, 4 * 60_000);

    afterAll(async () => {
      if (nspawn !== null && nspawn.exitCode === null) {
        if (initPid > 0) await inside(['systemctl', 'poweroff']).catch(() => undefined);
        const stopped = await Promise.race([nspawnExited.then(() => true), sleep(30_000).then(() => false)]);
        if (!stopped) {
          nspawn.kill('SIGKILL');
          await nspawnExited;
        }
      }
      rmSync(`/run/systemd/nspawn/propagate/${machine}`, { recursive: true, force: true });
      for (const link of ['test-lan.service', 'redis-ha.service']) {
        rmSync(at(`etc/systemd/system/multi-user.target.wants/${link}`), { force: true });
      }
      rmSync(at('etc/systemd/system/test-lan.service'), { force: true });
      if (savedConfig !== '') writeFileSync(at('etc/redis-ha/redis-ha.yaml'), savedConfig);
      if (!mountsUnder(at('proc')).length) await run('mount', ['-t', 'proc', 'proc', at('proc')]);
    }, 2 * 60_000);

    it('starts as MASTER, holds the VIP and feeds the watchdog', async () => {
      expect(await property('StatusText')).toMatch(/^MASTER\b/);
      expect(await property('NRestarts')).toBe('0');
      expect(await vipHeld()).toBe(true);
      const first = await property('WatchdogTimestampMonotonic');
      await waitFor('a WATCHDOG=1', async () => (await property('WatchdogTimestampMonotonic')) !== first, 15_000);
      // The claim's gratuitous ARPs went out (arping with the ambient CAP_NET_RAW).
      const journal = await inside(['journalctl', '--no-pager', '-o', 'cat', '-u', 'redis-ha.service']);
      expect(journal.stdout).toMatch(/VIP claimed/);
      expect(journal.stdout).not.toMatch(/announce failed|Operation not permitted|EPERM|EACCES/);
      // The launcher's probe of the V8 flags passes under the unit's sandbox too: the
      // daemon runs with all of them, and no warning.
      expect(journal.stdout).not.toMatch(/refuses the V8 flags/);
      const cmdline = await inside(['cat', `/proc/${await property('MainPID')}/cmdline`]);
      expect(cmdline.stdout.split('\0').slice(0, NODE_FLAGS.length + 1), describeRun('cat cmdline', cmdline)).toEqual([
        `${PREFIX}/node/bin/node`,
        ...NODE_FLAGS,
      ]);
    });

    it('lets a member of control.group run maintenance (its groups read from /proc)', async () => {
      const add = await inside(['useradd', '--no-create-home', '--groups', 'redis-ha', 'operator1']);
      expect(add.status, describeRun('useradd', add)).toBe(0);
      const on = await inside(['runuser', '-u', 'operator1', '--', '/usr/local/bin/redis-ha', 'maintenance', 'on']);
      expect(on.status, describeRun('maintenance on', on)).toBe(0);
      const off = await inside(['runuser', '-u', 'operator1', '--', '/usr/local/bin/redis-ha', 'maintenance', 'off']);
      expect(off.status, describeRun('maintenance off', off)).toBe(0);
    });

    it('reloads (SIGHUP reopens the audit log)', async () => {
      const reload = await inside(['systemctl', 'reload', 'redis-ha.service']);
      expect(reload.status, describeRun('systemctl reload', reload)).toBe(0);
      await waitFor('the audit log reopened', async () =>
        (await inside(['journalctl', '--no-pager', '-o', 'cat', '-u', 'redis-ha.service'])).stdout.includes('audit log reopened'), 10_000);
    });

    it('after a crash, ExecStopPost removes the VIP before the restart claims it again', async () => {
      const kill = await inside(['systemctl', 'kill', '--kill-who=main', '-s', 'KILL', 'redis-ha.service']);
      expect(kill.status, describeRun('systemctl kill', kill)).toBe(0);
      let sawReleased = false;
      await waitFor('the restart', async () => {
        if (!(await vipHeld())) sawReleased = true;
        return (await property('NRestarts')) === '1' && (await property('ActiveState')) === 'active';
      }, 60_000);
      expect(sawReleased).toBe(true);
      expect(await vipHeld()).toBe(true);
    });

    // The witness installed above, now installed again the way an operator does it, on a
    // host where systemd runs: install.sh --witness inside the container starts the unit
    // (etcd under its sandbox as Debian's etcd user) and runs redis-ha-witness-auth; then
    // the client files it printed are used, all inside the container.
    it('install.sh --witness on a running system: refuses a running Debian etcd, then starts the witness with authentication', async () => {
      const src = '/usr/local/src/redis-ha';
      mkdirSync(at(`${src}/scripts`), { recursive: true });
      for (const script of ['install.sh', 'install-witness.sh', 'witness-auth.sh']) {
        writeFileSync(at(`${src}/scripts/${script}`), readFileSync(join(PROJECT_ROOT, 'scripts', script)), { mode: 0o755 });
      }
      const installInside = (...extra: string[]): Promise<RunResult> =>
        inside(['bash', `${src}/scripts/install.sh`, '--witness', '--tls', '--listen', WITNESS_ADDRESS, ...extra]);
      const journal = async (): Promise<string> =>
        (await inside(['journalctl', '--no-pager', '-o', 'cat', '-u', 'redis-ha-witness.service'])).stdout.slice(-4000);
      const witnessProperty = async (name: string): Promise<string> =>
        (await inside(['systemctl', 'show', '--value', '-p', name, 'redis-ha-witness.service'])).stdout.trim();

      // The --root install disabled Debian's unit; someone started it since. (Its default
      // configuration listens on "localhost", which a minbase root may not resolve.)
      expect((await inside(['systemctl', 'is-enabled', 'etcd.service'])).stdout.trim()).toBe('disabled');
      const hosts = existsSync(at('etc/hosts')) ? readFileSync(at('etc/hosts'), 'utf8') : '';
      if (!/^127\.0\.0\.1\s+(.*\s)?localhost(\s|$)/m.test(hosts)) writeFileSync(at('etc/hosts'), `${hosts}127.0.0.1 localhost\n`);
      const debian = await inside(['systemctl', 'start', 'etcd.service']);
      const debianJournal = async (): Promise<string> =>
        (await inside(['journalctl', '--no-pager', '-o', 'cat', '-u', 'etcd.service'])).stdout.slice(-3000);
      expect(debian.status, `${describeRun('systemctl start etcd (Debian)', debian)}\n--- journal\n${await debianJournal()}`).toBe(0);
      const refused = await installInside();
      expect(refused.status, describeRun('install.sh --witness with Debian etcd running', refused)).toBe(1);
      expect(refused.stderr).toMatch(/Debian's etcd\.service is running here: it may serve something else.*--replace-debian-etcd/);
      expect(await witnessProperty('ActiveState')).toBe('inactive');

      const installed = await installInside('--replace-debian-etcd');
      expect(installed.status, `${describeRun('install.sh --witness --replace-debian-etcd', installed)}\n--- journal\n${await journal()}`).toBe(0);
      for (const line of [/stopped Debian's etcd\.service/, /started redis-ha-witness\.service/, /redis-ha-witness-auth: authentication enabled/,
        /redis-ha-witness-auth: checked: redis-ha reads and writes under \/redis-ha\/ only/, /endpoints: https:\/\/10\.99\.0\.11:2379/]) {
        expect(installed.stdout).toMatch(line);
      }
      expect((await inside(['systemctl', 'is-active', 'etcd.service'])).stdout.trim()).toBe('inactive');
      expect((await inside(['systemctl', 'is-enabled', 'etcd.service'])).stdout.trim()).toBe('disabled');
      expect((await inside(['systemctl', 'is-enabled', 'redis-ha-witness.service'])).stdout.trim()).toBe('enabled');
      expect(await witnessProperty('ActiveState')).toBe('active');
      const pid = await witnessProperty('MainPID');
      expect((await inside(['ps', '-o', 'user=', '-p', pid])).stdout.trim()).toBe('etcd');

      const listening = (await inside(['ss', '-ltnH'])).stdout.split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '').filter(Boolean);
      const etcdPorts = listening.filter((a) => /:(2379|2380)$/.test(a)).sort();
      expect(etcdPorts, listening.join(' ')).toEqual([`${WITNESS_ADDRESS}:2379`, `${WITNESS_ADDRESS}:2380`]);

      // What a Redis host gets: the CA, the client certificate and the password.
      const endpoint = `https://${WITNESS_ADDRESS}:2379`;
      const password = readFileSync(at('etc/redis-ha-witness/client/etcd.password'), 'utf8').trim();
      expect(installed.stdout).toContain(`'${password}' > /etc/redis-ha/etcd.password`);
      const client = (extra: readonly string[], args: readonly string[]): Promise<RunResult> =>
        inside(['etcdctl', `--endpoints=${endpoint}`, '--dial-timeout=2s', '--command-timeout=5s',
          '--cacert=/etc/redis-ha-witness/client/etcd-ca.pem', ...extra, ...args]);
      const asUser = ['--cert=/etc/redis-ha-witness/client/etcd-client.pem', '--key=/etc/redis-ha-witness/client/etcd-client.key',
        '--user=redis-ha', `--password=${password}`];
      const put = await client(asUser, ['put', '/redis-ha/group-51/leader', 'x']);
      expect(put.status, describeRun('etcdctl put as redis-ha', put)).toBe(0);
      const outside = await client(asUser, ['put', '/elsewhere', 'x']);
      expect(outside.stderr).toMatch(/permission denied/);
      const noCert = await client([], ['get', '/redis-ha/group-51/leader']);
      expect(noCert.status).not.toBe(0);

      // A second run on the running system: nothing restarted, nothing created.
      const again = await installInside();
      expect(again.status, describeRun('install.sh --witness again', again)).toBe(0);
      expect(again.stdout).toMatch(/redis-ha-witness\.service is running/);
      expect(again.stdout).toMatch(/redis-ha-witness-auth: user redis-ha: kept/);
      expect(again.stdout).not.toMatch(/created|issued|restarted|authentication enabled/);
      expect(await witnessProperty('MainPID')).toBe(pid);

      // etcd keeps its users across a restart.
      const restart = await inside(['systemctl', 'restart', 'redis-ha-witness.service']);
      expect(restart.status, describeRun('systemctl restart redis-ha-witness', restart)).toBe(0);
      const check = await inside(['/usr/local/sbin/redis-ha-witness-auth', endpoint]);
      expect(check.status, describeRun('redis-ha-witness-auth after a restart', check)).toBe(0);
      expect(check.stdout).toMatch(/user redis-ha: kept/);
      // (etcd logs the refused put above as "auth: permission denied": that is the point.)
      expect(await journal()).not.toMatch(/operation not permitted|EACCES|bad system call/i);
      const stop = await inside(['systemctl', 'stop', 'redis-ha-witness.service']);
      expect(stop.status, describeRun('systemctl stop redis-ha-witness', stop)).toBe(0);
    });

    it('a stop hands over and leaves no VIP behind', async () => {
      const stop = await inside(['systemctl', 'stop', 'redis-ha.service']);
      expect(stop.status, describeRun('systemctl stop', stop)).toBe(0);
      expect(await property('ActiveState')).toBe('inactive');
      expect(await property('Result')).toBe('success');
      expect(await vipHeld()).toBe(false);
    });
  });

  it('a second install keeps the edited configuration and the key', async () => {
    const configPath = at('etc/redis-ha/redis-ha.yaml');
    const edited = `${readFileSync(configPath, 'utf8')}\n# edited by install.test.ts\n`;
    writeFileSync(configPath, edited);
    const key = readFileSync(at('etc/redis-ha/advert.key'), 'utf8');

    const again = await run('bash', [installSh, '--root', root, '--no-start'], { timeoutMs: STEP_TIMEOUT_MS });
    expect(again.status, describeRun('second install.sh', again)).toBe(0);
    expect(again.stdout).toMatch(/kept the existing configuration/);
    expect(again.stdout).toMatch(/kept the existing advert key/);
    expect(again.stdout).toMatch(/node_modules up to date/);
    expect(readFileSync(configPath, 'utf8')).toBe(edited);
    expect(readFileSync(at('etc/redis-ha/advert.key'), 'utf8')).toBe(key);
    expect(mode(configPath)).toBe('0640');
    expect(mode(at('etc/redis-ha/advert.key'))).toBe('0600');
    expect(accountField(root, 'passwd', 'redis-ha')).toBe(serviceIds().split(':')[0]);
    expect(readFileSync(at('etc/passwd'), 'utf8').match(/^redis-ha:/gm)).toHaveLength(1);
  });

  it('uninstall.sh removes the program but keeps configuration, state, logs and the user', async () => {
    mkdirSync(at('var/lib/redis-ha'), { recursive: true });
    writeFileSync(at('var/lib/redis-ha/state.json'), '{}\n');
    const result = await run('bash', [uninstallSh, '--root', root], { timeoutMs: STEP_TIMEOUT_MS });
    expect(result.status, describeRun('uninstall.sh', result)).toBe(0);
    for (const gone of ['usr/lib/systemd/system/redis-ha.service', 'usr/local/bin/redis-ha', PREFIX, 'etc/logrotate.d/redis-ha', 'etc/sysctl.d/60-redis-ha.conf']) {
      expect(existsSync(at(gone)), gone).toBe(false);
    }
    for (const kept of ['etc/redis-ha/redis-ha.yaml', 'etc/redis-ha/advert.key', 'var/lib/redis-ha/state.json', 'var/log/redis-ha/audit.jsonl']) {
      expect(existsSync(at(kept)), kept).toBe(true);
    }
    expect(accountField(root, 'passwd', 'redis-ha')).not.toBeNull();
    // Everything else of the root is still there.
    expect(existsSync(at('usr/bin/apt-get'))).toBe(true);

    const twice = await run('bash', [uninstallSh, '--root', root], { timeoutMs: STEP_TIMEOUT_MS });
    expect(twice.status, describeRun('uninstall.sh again', twice)).toBe(0);
  });

  it('uninstall.sh --witness removes the witness unit, keeps its data and secrets and Debian\'s package; --purge removes them', async () => {
    const removed = await run('bash', [uninstallSh, '--witness', '--root', root], { timeoutMs: STEP_TIMEOUT_MS });
    expect(removed.status, describeRun('uninstall.sh --witness', removed)).toBe(0);
    for (const gone of ['usr/lib/systemd/system/redis-ha-witness.service', 'usr/local/sbin/redis-ha-witness-auth']) {
      expect(existsSync(at(gone)), gone).toBe(false);
    }
    // The member's data (its users) and the secrets survive.
    const data = hasNspawn ? 'var/lib/redis-ha-witness/member' : 'var/lib/redis-ha-witness';
    for (const kept of ['etc/redis-ha-witness/root.password', 'etc/redis-ha-witness/ca.key', data]) {
      expect(existsSync(at(kept)), kept).toBe(true);
    }
    expect(existsSync(at('usr/bin/etcd'))).toBe(true);
    const purged = await run('bash', [uninstallSh, '--witness', '--root', root, '--purge'], { timeoutMs: STEP_TIMEOUT_MS });
    expect(purged.status, describeRun('uninstall.sh --witness --purge', purged)).toBe(0);
    expect(existsSync(at('etc/redis-ha-witness'))).toBe(false);
    expect(existsSync(at('var/lib/redis-ha-witness'))).toBe(false);
    expect(accountField(root, 'passwd', 'etcd')).not.toBeNull();
  });

  it('uninstall.sh --purge removes configuration, state, logs and the account', async () => {
    const result = await run('bash', [uninstallSh, '--root', root, '--purge'], { timeoutMs: STEP_TIMEOUT_MS });
    expect(result.status, describeRun('uninstall.sh --purge', result)).toBe(0);
    for (const gone of ['etc/redis-ha', 'var/lib/redis-ha', 'var/log/redis-ha']) {
      expect(existsSync(at(gone)), gone).toBe(false);
    }
    expect(accountField(root, 'passwd', 'redis-ha')).toBeNull();
    expect(accountField(root, 'group', 'redis-ha')).toBeNull();
  });
});
