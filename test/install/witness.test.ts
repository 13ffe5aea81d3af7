/**
 * The etcd witness (issue 11, item 8) without debootstrap: `install.sh --witness` and
 * `uninstall.sh --witness` into an empty root (`--no-packages`, whose path holds a quote
 * and a command substitution), and `scripts/witness-auth.sh` against real etcd members on
 * loopback: one started by test/helpers/etcd-cluster.ts (http), one started with the
 * very flags of the unit the install writes (https, client certificates made by the
 * install's own functions). After the set-up the daemons' own client (`EtcdQuorum`)
 * signed in as redis-ha takes, reads and takes over the leader key, and nobody else can
 * touch anything. install.test.ts installs the witness with Debian's packages into a
 * debootstrapped root and boots its unit under systemd.
 *
 * Run under the shared lock: flock /tmp/redis-ha-e2e.lock npx vitest run test/install
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { EtcdQuorum, type QuorumOutcome } from '../../src/adapters/quorum/index.js';
import { checkConfig } from '../../src/config/check.js';
import { timingReportOf } from '../../src/config/derived.js';
import { ETCD_BIN, startEtcdCluster, stopAllEtcdClusters, type EtcdCluster } from '../helpers/etcd-cluster.js';
import { freePort } from '../helpers/free-port.js';
import { PROJECT_ROOT, announceSkip, available, describeRun, parseExposure, parseUnit, run, unitValue, unitValues, type RunResult } from './helpers.js';

const INSTALL_SH = join(PROJECT_ROOT, 'scripts/install.sh');
const UNINSTALL_SH = join(PROJECT_ROOT, 'scripts/uninstall.sh');
const AUTH_SH = join(PROJECT_ROOT, 'scripts/witness-auth.sh');
const EXAMPLE = join(PROJECT_ROOT, 'etc/redis-ha.example.yaml');
const UNIT = 'usr/lib/systemd/system/redis-ha-witness.service';
const AUTH_BIN = 'usr/local/sbin/redis-ha-witness-auth';
const CONF = 'etc/redis-ha-witness';
const DATA = 'var/lib/redis-ha-witness';
const STEP_TIMEOUT_MS = 120_000;
/** A path component that runs `touch pwned` if it is ever pasted into shell code. */
const HOSTILE_NAME = `root'$(touch pwned)'"\`touch pwned2\`"`;
const PASSWORD = /^[0-9a-f]{48}\n$/;

const isRoot = process.getuid?.() === 0;
const hasOpenssl = await available('openssl', ['version']);
const hasEtcd = existsSync(ETCD_BIN) && (await available('etcdctl', ['version']));
if (!isRoot) announceSkip('witness.test.ts: install.sh --witness into a temp root', 'not root (it creates the etcd account with useradd --root and chowns)');
if (!hasOpenssl) announceSkip('witness.test.ts: --tls', 'openssl is not installed');
if (!hasEtcd) announceSkip('witness.test.ts: witness-auth.sh against etcd', `${ETCD_BIN} or etcdctl missing (apt-get install etcd-server etcd-client)`);

/** Runs `function args...` of install.sh, sourced (it defines its functions and does nothing else). */
function sourced(fn: string, args: readonly string[]): Promise<RunResult> {
  return run('bash', ['-c', `source "$1" && shift && ${fn} "$@"`, 'witness.test', INSTALL_SH, ...args]);
}

function mode(path: string): string {
  return (lstatSync(path).mode & 0o7777).toString(8).padStart(4, '0');
}

/** Every file and directory under `dir`: mode, owner, size, mtime and content hash, to compare two runs. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (path: string, rel: string): void => {
    const stats = lstatSync(path);
    const hash = stats.isFile() ? createHash('sha256').update(readFileSync(path)).digest('hex') : '-';
    out[rel] = `${mode(path)} ${stats.uid}:${stats.gid} ${stats.size} ${stats.mtimeMs} ${hash}`;
    if (stats.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name), `${rel}/${name}`);
  };
  walk(dir, '.');
  return out;
}

/** The field `field` (3 = id) of `name` in the root's passwd or group file, or null. */
function accountField(root: string, file: 'passwd' | 'group', name: string, field = 3): string | null {
  const line = readFileSync(join(root, 'etc', file), 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  return line === undefined ? null : (line.split(':')[field - 1] ?? null);
}

/** The unit's ExecStart= as words (the install writes no quoted arguments). */
function execStart(unitText: string): string[] {
  const unit = parseUnit(unitText);
  const starts = unitValues(unit, 'Service', 'ExecStart');
  expect(starts).toHaveLength(1);
  return starts[0]!.split(/\s+/).filter((w) => w !== '');
}

/** The etcd flags of a witness on `address`, as the unit must run them. */
function expectedExecStart(address: string, tls: boolean): string[] {
  const scheme = tls ? 'https' : 'http';
  const host = address.includes(':') ? `[${address}]` : address;
  const client = `${scheme}://${host}:2379`;
  const peer = `${scheme}://${host}:2380`;
  return [
    '/usr/bin/etcd',
    '--name', 'redis-ha-witness',
    '--data-dir', '/var/lib/redis-ha-witness',
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `redis-ha-witness=${peer}`,
    '--initial-cluster-token', 'redis-ha-witness',
    '--initial-cluster-state', 'new',
    '--heartbeat-interval', '100',
    '--election-timeout', '1000',
    '--auto-compaction-mode', 'periodic',
    '--auto-compaction-retention', '1h',
    '--quota-backend-bytes', '536870912',
    ...(tls
      ? [
          '--cert-file', '/etc/redis-ha-witness/server.pem',
          '--key-file', '/etc/redis-ha-witness/server.key',
          '--trusted-ca-file', '/etc/redis-ha-witness/ca.pem',
          '--client-cert-auth',
          '--peer-cert-file', '/etc/redis-ha-witness/server.pem',
          '--peer-key-file', '/etc/redis-ha-witness/server.key',
          '--peer-trusted-ca-file', '/etc/redis-ha-witness/ca.pem',
          '--peer-client-cert-auth',
        ]
      : []),
    '--logger', 'zap',
    '--log-outputs', 'stderr',
  ];
}

/** The `quorum:` block the install prints, parsed. */
function printedQuorum(stdout: string): unknown {
  const lines = stdout.split('\n');
  const start = lines.indexOf('quorum:');
  expect(start, 'a quorum: block in the output').toBeGreaterThanOrEqual(0);
  let end = start + 1;
  while (end < lines.length && lines[end]!.startsWith('  ') && !/^ {2}\d\./.test(lines[end]!)) end++;
  return parse(lines.slice(start, end).join('\n'));
}

describe('install.sh --witness refuses bad arguments before it touches anything', () => {
  let work = '';
  let empty = '';
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'redis-ha-witness-args-'));
    empty = join(work, 'root');
    mkdirSync(empty);
  });
  afterAll(() => {
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  const cases: Array<[string, string[], RegExp]> = [
    ['no --listen', ['--witness'], /--witness needs --listen ADDRESS/],
    ['a host name', ['--witness', '--listen', 'witness.example'], /--listen must be this host's IPv4 or IPv6 address .*got witness\.example/],
    ['the IPv4 wildcard', ['--witness', '--listen', '0.0.0.0'], /got the wildcard 0\.0\.0\.0/],
    ['the IPv6 wildcard', ['--witness', '--listen', '::'], /got the wildcard ::/],
    ['an octet above 255', ['--witness', '--listen', '192.0.2.300'], /got 192\.0\.2\.300/],
    ['a leading zero', ['--witness', '--listen', '192.0.2.020'], /no leading zeros/],
    ['multicast', ['--witness', '--listen', '239.1.1.1'], /multicast/],
    ['an IPv6 link-local address', ['--witness', '--listen', 'fe80::1'], /link-local/],
    ['two ::', ['--witness', '--listen', '2001:db8::1::2'], /at most one ::/],
    ['an address with a port', ['--witness', '--listen', '192.0.2.20:2379'], /got 192\.0\.2\.20:2379/],
    ['shell code', ['--witness', '--listen', '$(touch pwned)'], /got \\\$\\\(touch\\ pwned\\\)/],
    ['an empty address', ['--witness', '--listen', ''], /got nothing/],
    ['--prefix with --witness', ['--witness', '--listen', '192.0.2.20', '--prefix', '/opt/x'], /--prefix is for the daemon/],
    ['--listen without --witness', ['--listen', '192.0.2.20'], /--listen is an option of --witness/],
    ['--tls without --witness', ['--tls'], /--tls is an option of --witness/],
    ['--replace-debian-etcd without --witness', ['--replace-debian-etcd'], /--replace-debian-etcd is an option of --witness/],
  ];
  it.each(cases)('%s: exit 1 with the reason', async (_name, args, message) => {
    const result = await run('bash', [INSTALL_SH, ...args, '--root', empty], { cwd: work });
    expect(result.status, describeRun('install.sh', result)).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
    expect(readdirSync(empty)).toEqual([]);
    expect(readdirSync(work).sort()).toEqual(['root']);
  });

  it('takes IPv4 and IPv6 addresses, IPv6 in lower case', async () => {
    for (const [given, canonical] of [
      ['192.0.2.20', '192.0.2.20'],
      ['10.0.0.1', '10.0.0.1'],
      ['127.0.0.1', '127.0.0.1'],
      ['2001:DB8::20', '2001:db8::20'],
      ['::1', '::1'],
      ['fd00:1:2:3:4:5:6:7', 'fd00:1:2:3:4:5:6:7'],
    ] as const) {
      const result = await sourced('witness_address_problem "$1" && witness_canonical_address', [given]);
      expect(result.status, describeRun(given, result)).toBe(0);
      expect(result.stdout).toBe(`${canonical}\n`);
    }
  });

  it('writes IPv6 addresses in brackets in the unit', async () => {
    const unit = await sourced('witness_unit', ['2001:db8::20', '0']);
    expect(execStart(unit.stdout)).toEqual(expectedExecStart('2001:db8::20', false));
    expect(unit.stdout).toContain('--listen-client-urls http://[2001:db8::20]:2379');
  });
});

describe.skipIf(!isRoot || !hasOpenssl)('install.sh --witness --tls into an empty root', () => {
  let work = '';
  let root = '';
  let first: RunResult;
  const at = (path: string): string => join(root, path);
  const install = (...args: string[]): Promise<RunResult> =>
    run('bash', [INSTALL_SH, '--witness', '--root', root, '--no-packages', ...args], { cwd: work, timeoutMs: STEP_TIMEOUT_MS });
  const ids = (): { uid: number; gid: number } => ({
    uid: Number(accountField(root, 'passwd', 'etcd')),
    gid: Number(accountField(root, 'group', 'etcd')),
  });

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'redis-ha-witness-'));
    root = join(work, HOSTILE_NAME);
    mkdirSync(join(root, 'etc'), { recursive: true });
    for (const file of ['passwd', 'group', 'shadow', 'gshadow']) writeFileSync(join(root, 'etc', file), '');
    first = await install('--tls', '--listen', '192.0.2.20');
  }, STEP_TIMEOUT_MS);

  afterAll(() => {
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('succeeds, runs nothing its --root path spells, and leaves no temporary file', () => {
    expect(first.status, describeRun('install.sh --witness', first)).toBe(0);
    expect(readdirSync(work)).toEqual([HOSTILE_NAME]);
    const leftovers = Object.keys(snapshot(root)).filter((p) => /\.new\.|\/\.issue\.|\/\.ca\./.test(p));
    expect(leftovers).toEqual([]);
  });

  it('makes the etcd system account the way Debian does when the package is not there', () => {
    expect(first.stdout).toMatch(/created user etcd/);
    const { uid } = ids();
    expect(uid).toBeGreaterThan(0);
    expect(uid).toBeLessThan(1000);
    expect(accountField(root, 'passwd', 'etcd', 6)).toBe('/var/lib/etcd');
    expect(accountField(root, 'passwd', 'etcd', 7)).toBe('/usr/sbin/nologin');
  });

  it('installs every file with its mode and owner; secrets only root can read', () => {
    const { uid, gid } = ids();
    const expected: Array<[string, string, number, number]> = [
      [CONF, '0750', 0, gid],
      [`${CONF}/root.password`, '0600', 0, 0],
      [`${CONF}/ca.pem`, '0644', 0, 0],
      [`${CONF}/ca.key`, '0600', 0, 0],
      [`${CONF}/server.pem`, '0644', 0, 0],
      [`${CONF}/server.key`, '0640', 0, gid],
      [`${CONF}/client`, '0700', 0, 0],
      [`${CONF}/client/etcd.password`, '0600', 0, 0],
      [`${CONF}/client/etcd-ca.pem`, '0644', 0, 0],
      [`${CONF}/client/etcd-client.pem`, '0644', 0, 0],
      [`${CONF}/client/etcd-client.key`, '0600', 0, 0],
      [DATA, '0700', uid, gid],
      [UNIT, '0644', 0, 0],
      [AUTH_BIN, '0755', 0, 0],
    ];
    for (const [path, wantMode, wantUid, wantGid] of expected) {
      const stats = statSync(at(path));
      expect(`${path} ${mode(at(path))} ${stats.uid}:${stats.gid}`).toBe(`${path} ${wantMode} ${wantUid}:${wantGid}`);
    }
    expect(readdirSync(at(CONF)).sort()).toEqual(['ca.key', 'ca.pem', 'client', 'root.password', 'server.key', 'server.pem']);
    expect(readdirSync(at(`${CONF}/client`)).sort()).toEqual(['etcd-ca.pem', 'etcd-client.key', 'etcd-client.pem', 'etcd.password']);
    const rootPassword = readFileSync(at(`${CONF}/root.password`), 'utf8');
    const userPassword = readFileSync(at(`${CONF}/client/etcd.password`), 'utf8');
    expect(rootPassword).toMatch(PASSWORD);
    expect(userPassword).toMatch(PASSWORD);
    expect(userPassword).not.toBe(rootPassword);
    expect(readFileSync(at(`${CONF}/client/etcd-ca.pem`), 'utf8')).toBe(readFileSync(at(`${CONF}/ca.pem`), 'utf8'));
    expect(readFileSync(at(AUTH_BIN), 'utf8')).toBe(readFileSync(AUTH_SH, 'utf8'));
    // Nothing the Redis hosts get is the CA's key.
    for (const name of readdirSync(at(`${CONF}/client`))) {
      expect(readFileSync(at(`${CONF}/client/${name}`), 'utf8')).not.toBe(readFileSync(at(`${CONF}/ca.key`), 'utf8'));
    }
  });

  it('issues a server certificate for the listen address and a client certificate for the user redis-ha, both from its CA', async () => {
    for (const cert of [`${CONF}/server.pem`, `${CONF}/client/etcd-client.pem`]) {
      const verify = await run('openssl', ['verify', '-CAfile', at(`${CONF}/ca.pem`), at(cert)]);
      expect(verify.status, describeRun(`openssl verify ${cert}`, verify)).toBe(0);
    }
    const server = await run('openssl', ['x509', '-in', at(`${CONF}/server.pem`), '-noout', '-text']);
    expect(server.stdout).toMatch(/Subject: CN ?= ?redis-ha-witness/);
    expect(server.stdout).toMatch(/IP Address:192\.0\.2\.20\s*$/m);
    expect(server.stdout).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect((await run('openssl', ['x509', '-in', at(`${CONF}/server.pem`), '-noout', '-checkip', '192.0.2.20'])).stdout).toMatch(/does match/);
    expect((await run('openssl', ['x509', '-in', at(`${CONF}/server.pem`), '-noout', '-checkip', '127.0.0.1'])).stdout).toMatch(/does NOT match/);
    const client = await run('openssl', ['x509', '-in', at(`${CONF}/client/etcd-client.pem`), '-noout', '-text']);
    // etcd takes the CN as the user when a request carries no password.
    expect(client.stdout).toMatch(/Subject: CN ?= ?redis-ha\s*$/m);
    expect(client.stdout).toMatch(/TLS Web Client Authentication/);
    expect(client.stdout).not.toMatch(/Server Authentication/);
    const ca = await run('openssl', ['x509', '-in', at(`${CONF}/ca.pem`), '-noout', '-text']);
    expect(ca.stdout).toMatch(/CA:TRUE/);
  });

  it('writes a unit running Debian\'s etcd as etcd, a single member bound to the listen address, with TLS', () => {
    const text = readFileSync(at(UNIT), 'utf8');
    expect(execStart(text)).toEqual(expectedExecStart('192.0.2.20', true));
    const unit = parseUnit(text);
    const service = (key: string): string | undefined => unitValue(unit, 'Service', key);
    expect(service('Type')).toBe('notify');
    expect(service('User')).toBe('etcd');
    expect(service('Group')).toBe('etcd');
    expect(service('StateDirectory')).toBe('redis-ha-witness');
    expect(service('StateDirectoryMode')).toBe('0700');
    expect(service('Restart')).toBe('always');
    expect(service('CapabilityBoundingSet')).toBe('');
    expect(unitValue(unit, 'Install', 'WantedBy')).toBe('multi-user.target');
    // Nothing listens on every address.
    expect(text).not.toMatch(/0\.0\.0\.0|\[::\]/);
  });

  it('prints the lines each Redis host needs, and they pass check-config with the timing rule', () => {
    expect(first.stdout).toMatch(/quorum\.etcd\.election_timeout_ms must be 1000/);
    const password = readFileSync(at(`${CONF}/client/etcd.password`), 'utf8').trim();
    expect(first.stdout).toContain(`printf '%s\\n' '${password}' > /etc/redis-ha/etcd.password`);
    expect(first.stdout).toContain('install -m 600 -o redis-ha -g redis-ha /dev/null /etc/redis-ha/etcd.password');
    const quorum = printedQuorum(first.stdout);
    expect(quorum).toEqual({
      quorum: {
        backend: 'etcd',
        etcd: {
          endpoints: 'https://192.0.2.20:2379',
          username: 'redis-ha',
          password_file: '/etc/redis-ha/etcd.password',
          ca_file: '/etc/redis-ha/etcd-ca.pem',
          cert_file: '/etc/redis-ha/etcd-client.pem',
          key_file: '/etc/redis-ha/etcd-client.key',
          election_timeout_ms: 1000,
        },
      },
    });

    // A Redis host that did what the output says: the files copied, the block pasted.
    const host = join(work, 'redis-host');
    mkdirSync(host, { mode: 0o750 });
    for (const name of ['etcd.password', 'etcd-ca.pem', 'etcd-client.pem', 'etcd-client.key']) {
      copyFileSync(at(`${CONF}/client/${name}`), join(host, name));
    }
    const example = readFileSync(EXAMPLE, 'utf8');
    const block = stringify(quorum).replaceAll('/etc/redis-ha/', `${host}/`);
    const config = join(host, 'redis-ha.yaml');
    writeFileSync(config, `${example.slice(0, example.indexOf('\nquorum:'))}\n${block}`);
    const result = checkConfig(config, { REDIS_HA_ADVERT_KEY: 'e3b0c44298fc1c149afbf4c8996fb924', REDIS_HA_REDIS_PASSWORD: 'x' });
    expect(result.ok ? [] : result.problems).toEqual([]);
    if (!result.ok) return;
    expect(result.config.quorum.etcd.username).toBe('redis-ha');
    expect(result.config.quorum.etcd.password).toBe(password);
    expect(result.config.quorum.etcd.electionTimeoutMs).toBe(1000);
    expect(timingReportOf(result.config).errors).toEqual([]);
  });

  it('a second run changes nothing: no file, mode, owner or mtime', async () => {
    const before = snapshot(root);
    const again = await install('--tls', '--listen', '192.0.2.20');
    expect(again.status, describeRun('second install.sh --witness', again)).toBe(0);
    expect(snapshot(root)).toEqual(before);
    for (const kept of [/kept \/etc\/redis-ha-witness\/root\.password/, /kept \/etc\/redis-ha-witness\/client\/etcd\.password/, /kept the CA/,
      /kept the server certificate/, /kept the client certificate/, /kept the data directory/, /unit .* unchanged/]) {
      expect(again.stdout).toMatch(kept);
    }
    expect(again.stdout).not.toMatch(/created|issued/);
    expect(readFileSync(join(root, 'etc/passwd'), 'utf8').match(/^etcd:/gm)).toHaveLength(1);
  });

  it('refuses to drop TLS, or to serve another address with the old certificate, and changes nothing', async () => {
    const before = snapshot(root);
    const plain = await install('--listen', '192.0.2.20');
    expect(plain.status).toBe(1);
    expect(plain.stderr).toMatch(/installed with --tls .*pass --tls again/);
    const moved = await install('--tls', '--listen', '192.0.2.21');
    expect(moved.status).toBe(1);
    expect(moved.stderr).toMatch(/server\.pem does not name 192\.0\.2\.21 .*remove server\.pem and server\.key/);
    expect(snapshot(root)).toEqual(before);
  });

  it('issues a missing certificate again from the same CA, and never touches the passwords', async () => {
    const passwords = [readFileSync(at(`${CONF}/root.password`)), readFileSync(at(`${CONF}/client/etcd.password`))];
    const ca = readFileSync(at(`${CONF}/ca.pem`));
    const client = readFileSync(at(`${CONF}/client/etcd-client.pem`));
    rmSync(at(`${CONF}/server.pem`));
    rmSync(at(`${CONF}/server.key`));
    const result = await install('--tls', '--listen', '192.0.2.21');
    expect(result.status, describeRun('install.sh --witness --listen 192.0.2.21', result)).toBe(0);
    expect(result.stdout).toMatch(/issued the server certificate .* for 192\.0\.2\.21/);
    expect(readFileSync(at(`${CONF}/ca.pem`))).toEqual(ca);
    expect(readFileSync(at(`${CONF}/client/etcd-client.pem`))).toEqual(client);
    expect([readFileSync(at(`${CONF}/root.password`)), readFileSync(at(`${CONF}/client/etcd.password`))]).toEqual(passwords);
    expect(execStart(readFileSync(at(UNIT), 'utf8'))).toEqual(expectedExecStart('192.0.2.21', true));
  });

  it('uninstall.sh --witness removes the unit and the helper, keeps data and secrets; --purge removes them', async () => {
    writeFileSync(at(`${DATA}/member.marker`), 'data\n');
    const removed = await run('bash', [UNINSTALL_SH, '--witness', '--root', root], { cwd: work });
    expect(removed.status, describeRun('uninstall.sh --witness', removed)).toBe(0);
    expect(existsSync(at(UNIT))).toBe(false);
    expect(existsSync(at(AUTH_BIN))).toBe(false);
    for (const kept of [`${CONF}/root.password`, `${CONF}/client/etcd.password`, `${CONF}/ca.key`, `${DATA}/member.marker`]) {
      expect(existsSync(at(kept)), kept).toBe(true);
    }
    expect(removed.stdout).toMatch(/kept \/etc\/redis-ha-witness .* --purge removes them/);
    const twice = await run('bash', [UNINSTALL_SH, '--witness', '--root', root], { cwd: work });
    expect(twice.status, describeRun('uninstall.sh --witness again', twice)).toBe(0);

    const prefix = await run('bash', [UNINSTALL_SH, '--witness', '--root', root, '--prefix', '/opt/redis-ha'], { cwd: work });
    expect(prefix.status).toBe(1);
    expect(prefix.stderr).toMatch(/--prefix is for the daemon/);

    const purged = await run('bash', [UNINSTALL_SH, '--witness', '--root', root, '--purge'], { cwd: work });
    expect(purged.status, describeRun('uninstall.sh --witness --purge', purged)).toBe(0);
    expect(existsSync(at(CONF))).toBe(false);
    expect(existsSync(at(DATA))).toBe(false);
    // Debian's account (here made by the install) stays: the package owns it.
    expect(accountField(root, 'passwd', 'etcd')).not.toBeNull();
    expect(readdirSync(work).filter((n) => n.startsWith('pwned'))).toEqual([]);
  });
});

describe.skipIf(!isRoot)('install.sh --witness without --tls', () => {
  let work = '';
  let root = '';
  let result: RunResult;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'redis-ha-witness-plain-'));
    root = join(work, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    for (const file of ['passwd', 'group', 'shadow', 'gshadow']) writeFileSync(join(root, 'etc', file), '');
    result = await run('bash', [INSTALL_SH, '--witness', '--root', root, '--no-packages', '--listen', '192.0.2.30'], { timeoutMs: STEP_TIMEOUT_MS });
  }, STEP_TIMEOUT_MS);
  afterAll(() => {
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('serves http with a password only, and says that the password crosses the network in clear', () => {
    expect(result.status, describeRun('install.sh --witness', result)).toBe(0);
    expect(execStart(readFileSync(join(root, UNIT), 'utf8'))).toEqual(expectedExecStart('192.0.2.30', false));
    expect(readdirSync(join(root, CONF)).sort()).toEqual(['client', 'root.password']);
    expect(readdirSync(join(root, CONF, 'client'))).toEqual(['etcd.password']);
    expect(printedQuorum(result.stdout)).toEqual({
      quorum: {
        backend: 'etcd',
        etcd: { endpoints: 'http://192.0.2.30:2379', username: 'redis-ha', password_file: '/etc/redis-ha/etcd.password', election_timeout_ms: 1000 },
      },
    });
    expect(result.stdout).toMatch(/the password crosses the network in clear/);
    expect(result.stdout).toMatch(/systemctl enable --now redis-ha-witness\.service/);
    expect(result.stdout).toContain('/usr/local/sbin/redis-ha-witness-auth http://192.0.2.30:2379');
  });
});

const hasAnalyze = await available('systemd-analyze');
describe.skipIf(!hasAnalyze)('systemd-analyze on the witness unit', () => {
  let dir = '';
  let unitPath = '';
  let text = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-ha-witness-unit-'));
    text = (await sourced('witness_unit', ['192.0.2.20', '1'])).stdout;
    unitPath = join(dir, 'redis-ha-witness.service');
    // verify insists that ExecStart's binary exists: a stand-in where there is no etcd.
    const etcd = existsSync('/usr/bin/etcd') ? '/usr/bin/etcd' : join(dir, 'etcd');
    if (etcd !== '/usr/bin/etcd') writeFileSync(etcd, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    writeFileSync(unitPath, text.replace('ExecStart=/usr/bin/etcd', `ExecStart=${etcd}`));
  });
  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('verify accepts it', async () => {
    const result = await run('systemd-analyze', ['verify', unitPath]);
    expect(result.stderr.split('\n').filter((line) => line.includes('redis-ha-witness')), describeRun('verify', result)).toEqual([]);
    expect(result.status, describeRun('verify', result)).toBe(0);
  });

  it('security --offline scores it no worse than the exposure its header documents', async (ctx) => {
    const result = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', unitPath]);
    if (result.status !== 0 && /unrecognized option|unknown option/i.test(result.stderr)) {
      announceSkip('systemd-analyze security --offline', `this systemd-analyze has no --offline: ${result.stderr.trim()}`);
      ctx.skip();
    }
    const documented = Number(/overall\s+#?\s*exposure (\d+(?:\.\d+)?)/i.exec(text.replace(/\n#/g, ' '))?.[1]);
    const exposure = parseExposure(result.stdout + result.stderr);
    expect(exposure, describeRun('security', result)).not.toBeNull();
    process.stderr.write(`redis-ha-witness.service: systemd-analyze security exposure ${exposure} (documented ${documented})\n`);
    expect(exposure!).toBeLessThanOrEqual(documented);
  });
});

/** etcdctl against `endpoint` as nobody, or with `user`/`password` in its environment. */
function etcdctl(endpoint: string, args: readonly string[], auth?: { user: string; password: string }, tls: readonly string[] = []): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ETCDCTL_API: '3' };
  if (auth !== undefined) {
    env['ETCDCTL_USER'] = auth.user;
    env['ETCDCTL_PASSWORD'] = auth.password;
  }
  return run('etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=2s', '--command-timeout=5s', ...tls, ...args], { env, timeoutMs: 30_000 });
}

/** A secrets directory as the install leaves it (only what witness-auth.sh reads). */
function secretsDir(base: string): { dir: string; rootPassword: string; userPassword: string } {
  const dir = join(base, 'conf');
  mkdirSync(join(dir, 'client'), { recursive: true, mode: 0o700 });
  const rootPassword = createHash('sha256').update(`root-${base}`).digest('hex').slice(0, 48);
  const userPassword = createHash('sha256').update(`user-${base}`).digest('hex').slice(0, 48);
  writeFileSync(join(dir, 'root.password'), `${rootPassword}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'client/etcd.password'), `${userPassword}\n`, { mode: 0o600 });
  return { dir, rootPassword, userPassword };
}

const opened: EtcdQuorum[] = [];
async function openQuorum(options: Partial<Parameters<typeof EtcdQuorum.open>[0]> & { endpoints: readonly string[]; nodeName: string }): Promise<EtcdQuorum> {
  const quorum = await EtcdQuorum.open({ keyPrefix: '/redis-ha', clusterName: 'group-51', leaseTtlS: 2, callTimeoutMs: 2_000, ...options });
  opened.push(quorum);
  return quorum;
}

/** Retries `acquire` for a while (a fresh connection may need a moment); the last outcome. */
async function acquired(quorum: EtcdQuorum, epoch: number): Promise<QuorumOutcome> {
  let outcome = await quorum.acquire(epoch);
  for (let i = 0; i < 20 && outcome.type === 'unreachable'; i++) {
    await sleep(250);
    outcome = await quorum.acquire(epoch);
  }
  return outcome;
}

describe.skipIf(!hasEtcd)('witness-auth.sh against a real etcd member (http)', () => {
  let cluster: EtcdCluster;
  let work = '';
  let secrets: ReturnType<typeof secretsDir>;
  let endpoint = '';
  let first: RunResult;
  const auth = (): Promise<RunResult> => run('bash', [AUTH_SH, '--dir', secrets.dir, endpoint], { timeoutMs: STEP_TIMEOUT_MS });

  beforeAll(async () => {
    cluster = await startEtcdCluster(1);
    endpoint = cluster.endpoints[0]!;
    work = mkdtempSync(join(tmpdir(), 'redis-ha-witness-auth-'));
    secrets = secretsDir(work);
    first = await auth();
  }, STEP_TIMEOUT_MS);

  afterAll(async () => {
    for (const quorum of opened.splice(0)) quorum.close();
    await stopAllEtcdClusters();
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('creates root, the role and the user, and turns authentication on', () => {
    expect(first.status, describeRun('witness-auth.sh', first)).toBe(0);
    for (const line of [/authentication is off .*setting it up/, /user root: created/, /user root: granted role root/, /role redis-ha: created/,
      /role redis-ha: granted read and write on the keys under \/redis-ha\//, /user redis-ha: created/, /user redis-ha: granted role redis-ha/,
      /authentication enabled/, /checked: redis-ha reads and writes under \/redis-ha\/ only; anonymous requests are refused/]) {
      expect(first.stdout).toMatch(line);
    }
  });

  it('refuses anonymous requests', async () => {
    for (const args of [['get', '/redis-ha/group-51/leader'], ['put', '/redis-ha/x', '1'], ['put', '/x', '1'], ['user', 'list']]) {
      const result = await etcdctl(endpoint, args);
      expect(result.status, describeRun(`anonymous etcdctl ${args.join(' ')}`, result)).not.toBe(0);
      expect(result.stderr).toMatch(/user name is empty/);
    }
  });

  it('lets redis-ha read and write under /redis-ha/ and nowhere else', async () => {
    const user = { user: 'redis-ha', password: secrets.userPassword };
    expect((await etcdctl(endpoint, ['put', '/redis-ha/group-7/leader', 'x'], user)).status).toBe(0);
    expect((await etcdctl(endpoint, ['get', '/redis-ha/group-7/leader', '--print-value-only'], user)).stdout).toBe('x\n');
    expect((await etcdctl(endpoint, ['del', '/redis-ha/group-7/leader'], user)).status).toBe(0);
    for (const args of [['put', '/other', '1'], ['get', '/other'], ['put', '/redis-ha', '1'], ['put', '/redis-hax/y', '1'], ['get', '', '--prefix'], ['user', 'list']]) {
      const result = await etcdctl(endpoint, args, user);
      expect(result.status, describeRun(`redis-ha etcdctl ${args.join(' ')}`, result)).not.toBe(0);
      expect(result.stderr).toMatch(/permission denied/);
    }
    const wrong = await etcdctl(endpoint, ['get', '/redis-ha/x'], { user: 'redis-ha', password: 'not-the-password' });
    expect(wrong.stderr).toMatch(/authentication failed/);
    // root is etcd's administrator.
    expect((await etcdctl(endpoint, ['put', '/other', '1'], { user: 'root', password: secrets.rootPassword })).status).toBe(0);
  });

  it("the daemons' own client, signed in as redis-ha, takes, reads and takes over the leader key", async () => {
    const credentials = { username: 'redis-ha', password: secrets.userPassword };
    const a = await openQuorum({ endpoints: [endpoint], nodeName: 'a', auth: credentials });
    const b = await openQuorum({ endpoints: [endpoint], nodeName: 'b', auth: credentials });
    const held = await acquired(a, 1);
    expect(held.type, JSON.stringify(held)).toBe('held');
    const seen = await b.holder();
    expect(seen.type === 'present' ? seen.record : seen).toEqual({ node: 'a', epoch: 1 });
    // A takeover revokes the previous holder's lease: allowed because its keys are all under /redis-ha/.
    const taken = await b.takeover(1, 2, { revokePrevious: true });
    expect(taken.type, JSON.stringify(taken)).toBe('held');
    expect((await b.release()).ok).toBe(true);

    const anonymous = await openQuorum({ endpoints: [endpoint], nodeName: 'c' });
    const refused = await anonymous.acquire(3);
    expect(refused.type).toBe('unreachable');
  });

  it('a second run keeps everything and checks it again', async () => {
    const users = await etcdctl(endpoint, ['user', 'list'], { user: 'root', password: secrets.rootPassword });
    const again = await auth();
    expect(again.status, describeRun('witness-auth.sh again', again)).toBe(0);
    expect(again.stdout).toMatch(/authentication is on .*signed in as root/);
    expect(again.stdout).toMatch(/user root: kept/);
    expect(again.stdout).toMatch(/role redis-ha: kept/);
    expect(again.stdout).toMatch(/user redis-ha: kept/);
    expect(again.stdout).not.toMatch(/created|granted|enabled|password set/);
    expect((await etcdctl(endpoint, ['user', 'list'], { user: 'root', password: secrets.rootPassword })).stdout).toBe(users.stdout);
  });

  it('says so when the root password on file is not etcd\'s, or the user\'s does not sign in', async () => {
    const rootFile = join(secrets.dir, 'root.password');
    writeFileSync(rootFile, 'not-the-root-password\n');
    const badRoot = await auth();
    writeFileSync(rootFile, `${secrets.rootPassword}\n`);
    expect(badRoot.status).toBe(1);
    expect(badRoot.stderr).toMatch(/authentication is on at .* and etcd's root user does not take the password in .*root\.password/);

    const userFile = join(secrets.dir, 'client/etcd.password');
    writeFileSync(userFile, 'not-the-user-password\n');
    const badUser = await auth();
    writeFileSync(userFile, `${secrets.userPassword}\n`);
    expect(badUser.status).toBe(1);
    expect(badUser.stderr).toMatch(/etcd user redis-ha cannot write .* with the password in .*etcd\.password/);
    // It changed no password.
    expect((await etcdctl(endpoint, ['get', '/redis-ha/x'], { user: 'redis-ha', password: secrets.userPassword })).status).toBe(0);
  });

  it('refuses a missing secret, a bad endpoint and an unreachable etcd with the reason', async () => {
    const noDir = await run('bash', [AUTH_SH, '--dir', join(work, 'absent'), endpoint]);
    expect(noDir.status).toBe(1);
    expect(noDir.stderr).toMatch(/absent\/root\.password is missing/);
    const badUrl = await run('bash', [AUTH_SH, '--dir', secrets.dir, '192.0.2.20:2379']);
    expect(badUrl.status).toBe(1);
    expect(badUrl.stderr).toMatch(/ENDPOINT must be http\(s\):\/\/host:port/);
    const port = await freePort('127.0.0.1');
    const down = await run('bash', [AUTH_SH, '--dir', secrets.dir, '--wait', '1', `http://127.0.0.1:${port}`], { timeoutMs: 30_000 });
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(/does not answer after 1 s/);
  });

  it("after the witness restarts, the daemons' client signs in again", async () => {
    const quorum = await openQuorum({ endpoints: [endpoint], nodeName: 'd', auth: { username: 'redis-ha', password: secrets.userPassword } });
    expect((await acquired(quorum, 10)).type).toBe('held');
    await cluster.stop(0);
    await cluster.start(0);
    // Its token died with the member: the client must fetch a new one by itself.
    let read = await quorum.holder();
    for (let i = 0; i < 40 && read.type === 'unreachable'; i++) {
      await sleep(250);
      read = await quorum.holder();
    }
    expect(read.type, JSON.stringify(read)).not.toBe('unreachable');
    expect((await acquired(quorum, 11)).type).toBe('held');
  }, 60_000);
});

describe.skipIf(!hasEtcd || !hasOpenssl || !isRoot)('the TLS witness for real: the install\'s certificates, the unit\'s flags, witness-auth.sh over https', () => {
  let work = '';
  let conf = '';
  let endpoint = '';
  let etcd: ChildProcess | null = null;
  let log = '';
  let secrets: ReturnType<typeof secretsDir>;
  const tlsArgs = (): string[] => [
    `--cacert=${join(conf, 'ca.pem')}`,
    `--cert=${join(conf, 'client/etcd-client.pem')}`,
    `--key=${join(conf, 'client/etcd-client.key')}`,
  ];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'redis-ha-witness-tls-'));
    secrets = secretsDir(work);
    conf = secrets.dir;
    const tls = await sourced('witness_tls', [conf, '127.0.0.1', '0']);
    if (tls.status !== 0) throw new Error(describeRun('witness_tls', tls));
    const data = join(work, 'data');
    mkdirSync(data, { mode: 0o700 });
    const clientPort = await freePort('127.0.0.1');
    const peerPort = await freePort('127.0.0.1');
    const unit = (await sourced('witness_unit', ['127.0.0.1', '1'])).stdout;
    // The unit's own flags, moved to a temp directory and to free ports.
    const args = execStart(unit)
      .slice(1)
      .map((word) =>
        word
          .replaceAll('/etc/redis-ha-witness', conf)
          .replaceAll('/var/lib/redis-ha-witness', data)
          .replaceAll(':2379', `:${clientPort}`)
          .replaceAll(':2380', `:${peerPort}`),
      );
    endpoint = `https://127.0.0.1:${clientPort}`;
    etcd = spawn(ETCD_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    etcd.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log = (log + chunk).slice(-8_000)));
    for (let i = 0; i < 80; i++) {
      if ((await etcdctl(endpoint, ['endpoint', 'status'], undefined, tlsArgs())).status === 0) return;
      if (etcd.exitCode !== null) break;
      await sleep(250);
    }
    throw new Error(`etcd with the unit's flags did not come up:\n${log}`);
  }, STEP_TIMEOUT_MS);

  afterAll(async () => {
    for (const quorum of opened.splice(0)) quorum.close();
    const child = etcd;
    const running = (): boolean => child !== null && child.exitCode === null && child.signalCode === null;
    if (child !== null && running()) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      if (running()) child.kill('SIGKILL');
    }
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('sets up authentication over https with the client certificate', async () => {
    const result = await run('bash', [AUTH_SH, '--dir', conf, endpoint], { timeoutMs: STEP_TIMEOUT_MS });
    expect(result.status, describeRun('witness-auth.sh https', result)).toBe(0);
    expect(result.stdout).toMatch(/authentication enabled/);
    const again = await run('bash', [AUTH_SH, '--dir', conf, endpoint], { timeoutMs: STEP_TIMEOUT_MS });
    expect(again.status, describeRun('witness-auth.sh https again', again)).toBe(0);
    expect(again.stdout).toMatch(/user redis-ha: kept/);
  });

  it('refuses a client without the certificate, and one that trusts another CA', async () => {
    const noCert = await etcdctl(endpoint, ['get', '/redis-ha/x'], { user: 'redis-ha', password: secrets.userPassword }, [`--cacert=${join(conf, 'ca.pem')}`]);
    expect(noCert.status).not.toBe(0);
    const plain = await etcdctl(endpoint.replace('https:', 'http:'), ['get', '/redis-ha/x'], { user: 'redis-ha', password: secrets.userPassword });
    expect(plain.status).not.toBe(0);
  });

  it("the daemons' client with the printed TLS files and password holds the leader key; the certificate alone is the user redis-ha", async () => {
    const tls = { caFile: join(conf, 'client/etcd-ca.pem'), certFile: join(conf, 'client/etcd-client.pem'), keyFile: join(conf, 'client/etcd-client.key') };
    const a = await openQuorum({ endpoints: [endpoint], nodeName: 'a', tls, auth: { username: 'redis-ha', password: secrets.userPassword } });
    const held = await acquired(a, 1);
    expect(held.type, JSON.stringify(held)).toBe('held');
    expect((await a.release()).ok).toBe(true);
    // etcd maps the certificate's CN to the user redis-ha: same rights, no more.
    const certOnly = await etcdctl(endpoint, ['put', '/redis-ha/cn-check', '1'], undefined, tlsArgs());
    expect(certOnly.status, describeRun('put with the certificate only', certOnly)).toBe(0);
    const outside = await etcdctl(endpoint, ['put', '/other', '1'], undefined, tlsArgs());
    expect(outside.stderr).toMatch(/permission denied/);
  });
});
