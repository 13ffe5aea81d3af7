/**
 * The `sentinel` benchmark driver: Redis Sentinel (Debian 12's redis-sentinel 7.0) with
 * the VIP moved by the common `client-reconfig-script` recipe.
 *
 * Three sentinels, one per lab host (a and b beside the Redis servers, c on the client
 * host, the usual way to get an odd count with two data nodes), each with its own
 * writable config copy under `lab.dir` (Sentinel rewrites its file), configured as in
 * the Sentinel documentation's quick tutorial: `sentinel monitor mymaster <a> 6379 2`,
 * `down-after-milliseconds 5000`, `failover-timeout 60000`, `parallel-syncs 1`, plus
 * `auth-pass` for the lab password.
 *
 * The VIP script (`client-reconfig-script`, called with `<master-name> <role> <state>
 * <from-ip> <from-port> <to-ip> <to-port>`) is the recipe found in most guides: when
 * `<to-ip>` is this host's address it adds the VIP and announces it (`ip addr add` +
 * `arping -U -c 3`), otherwise it removes it (`ip addr del`), and it always exits 0.
 * Every sentinel runs the same script with its own host's address, the c one included
 * (where `<to-ip>` never matches, so it only ever tries to remove a VIP c never has):
 * the recipe is uniform and c's copy is harmless.
 *
 * Who runs the script: the leader when the promoted replica reports itself master
 * (role `leader`), and every other sentinel when it learns the new configuration from
 * a hello message (role `observer`). The VIP therefore moves only if the sentinel on
 * the *new* master's host is alive and hears about it, and leaves the old master only
 * if the sentinel there is alive and reachable; a sentinel that is down, partitioned or
 * slow to hear keeps (or never gets) the VIP, and nothing repairs it later. That is the
 * recipe's known weakness, and the benchmark measures it.
 *
 * `start()` places the VIP on a (the operator's manual first step of the recipe),
 * starts the three sentinels and waits, bounded, until each sees a as master with one
 * replica and two other sentinels and `SENTINEL CKQUORUM` passes, and a is the settled
 * master. `switchover` is `SENTINEL FAILOVER mymaster` sent to one sentinel.
 *
 * Stall (`daemon-stall`): the analogue of stalling the master host's failover daemon is
 * stalling the sentinel on a (and any script it is running), as `daemon-kill` kills it.
 * Sentinel does not tie the master role to the sentinel beside it: b's and c's
 * sentinels still reach a's Redis and keep the quorum, so no failover is expected and
 * a keeps the VIP (the stalled sentinel enters TILT mode for 30 s when continued). The
 * run measures exactly that: whether anything moves when a failover process on the
 * master host freezes. Sentinel keeps no record of role changes the benchmark times.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RedisHaError } from '../../../src/errors.js';
import { waitChildExit } from '../../lab/netns.js';
import type { PairHost, PairLab, PairNode } from '../../lab/pair.js';
import { LAB_REDIS_PORT } from '../../lab/redis-proc.js';
import type { FaultName, SetupDriver } from '../setup.js';
import {
  descendants,
  killProcessTrees,
  KILL_WAIT_MS,
  processAlive,
  processRef,
  resumeStalled,
  shellQuote,
  signalAll,
  tailFile,
  sleep,
  stallProcesses,
  waitGone,
  type ProcessRef,
} from './processes.js';

/** Sentinel's default port. */
export const SENTINEL_PORT = 26379;
/** Name of the monitored master, as in the documentation. */
export const SENTINEL_MASTER_NAME = 'mymaster';
/** Sentinels that must agree the master is down. */
const QUORUM = 2;
/** The documentation's quick-tutorial values. */
const DOWN_AFTER_MS = 5_000;
const FAILOVER_TIMEOUT_MS = 60_000;
const PARALLEL_SYNCS = 1;
const SENTINEL_HOSTS: readonly PairHost[] = ['a', 'b', 'c'];
const VIP_PREFIX_LENGTH = 24;
/** Unsolicited ARPs sent when a host takes the VIP (the recipe's `arping -c 3`). */
const ARPING_COUNT = 3;
/** Bound on `start()` (discovery through hello messages takes a few seconds). */
const START_TIMEOUT_MS = 30_000;
/** Bound on a switchover (promotion plus the observers' scripts). */
const SWITCHOVER_TIMEOUT_MS = 30_000;
/** Bound on one arping of the initial VIP placement (3 ARPs one second apart). */
const ARPING_TIMEOUT_MS = 10_000;
/** Bound on one redis-cli call to a sentinel. */
const CLI_TIMEOUT_MS = 3_000;
const POLL_MS = 200;
const LOG_TAIL_LINES = 20;
const SCRIPT_FILE_MODE = 0o700;
const CONFIG_FILE_MODE = 0o600;
/** The script runs with a known PATH (Sentinel passes its own environment on). */
const SCRIPT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const FAULTS_SUPPORTED: readonly FaultName[] = [
  'redis-kill', 'redis-hang', 'link-down', 'daemon-kill', 'daemon-stall', 'partition', 'loss', 'switchover',
];

/** Files of one host's sentinel. */
interface SentinelFiles {
  readonly dir: string;
  readonly config: string;
  readonly log: string;
  readonly script: string;
  readonly scriptLog: string;
}

/** What the driver keeps per lab. */
interface SentinelRun {
  readonly files: Record<PairHost, SentinelFiles>;
  readonly children: Map<PairHost, ChildProcess>;
  /** Scripts left running by a SIGKILLed sentinel, killed at `stop()`. */
  readonly orphans: ProcessRef[];
}

const runs = new WeakMap<PairLab, SentinelRun>();

function sentinelFiles(lab: PairLab, host: PairHost): SentinelFiles {
  const dir = join(lab.dir, `sentinel-${host}`);
  return {
    dir,
    config: join(dir, 'sentinel.conf'),
    log: join(dir, 'sentinel.log'),
    script: join(dir, 'vip-reconfig.sh'),
    scriptLog: join(dir, 'vip-reconfig.log'),
  };
}

/** sentinel.conf of a host. */
export function sentinelConfigText(lab: PairLab, host: PairHost, files: SentinelFiles): string {
  const name = SENTINEL_MASTER_NAME;
  return [
    `port ${SENTINEL_PORT}`,
    `bind ${lab.address(host)} 127.0.0.1`,
    'protected-mode no',
    'daemonize no',
    `logfile "${files.log}"`,
    `dir "${files.dir}"`,
    `sentinel monitor ${name} ${lab.address('a')} ${LAB_REDIS_PORT} ${QUORUM}`,
    `sentinel auth-pass ${name} ${lab.password}`,
    `sentinel down-after-milliseconds ${name} ${DOWN_AFTER_MS}`,
    `sentinel failover-timeout ${name} ${FAILOVER_TIMEOUT_MS}`,
    `sentinel parallel-syncs ${name} ${PARALLEL_SYNCS}`,
    `sentinel client-reconfig-script ${name} ${files.script}`,
    '',
  ].join('\n');
}

/** The recipe's client-reconfig-script for a host. */
export function sentinelReconfigScript(lab: PairLab, host: PairHost, files: SentinelFiles): string {
  return [
    '#!/bin/bash',
    '# client-reconfig-script: <master-name> <role> <state> <from-ip> <from-port> <to-ip> <to-port>',
    `export PATH=${SCRIPT_PATH}`,
    'MASTER_IP=${6}',
    `MY_IP=${shellQuote(lab.address(host))}`,
    `VIP=${shellQuote(lab.vip)}`,
    `NETMASK='${VIP_PREFIX_LENGTH}'`,
    "INTERFACE='eth0'",
    `echo "$(date '+%F %T.%N') $*" >> ${shellQuote(files.scriptLog)}`,
    'if [ "${MASTER_IP}" = "${MY_IP}" ]; then',
    '    ip addr add ${VIP}/${NETMASK} dev ${INTERFACE}',
    `    arping -U -c ${ARPING_COUNT} -I \${INTERFACE} -s \${VIP} \${VIP}`,
    '    exit 0',
    'else',
    '    ip addr del ${VIP}/${NETMASK} dev ${INTERFACE}',
    '    exit 0',
    'fi',
    '',
  ].join('\n');
}

/** Runs `redis-cli` against the sentinel of `host`; `null` when it did not answer. */
async function sentinelCli(lab: PairLab, host: PairHost, args: readonly string[]): Promise<string | null> {
  const result = await lab.net.exec(
    host,
    ['redis-cli', '-h', '127.0.0.1', '-p', String(SENTINEL_PORT), ...args],
    { timeoutMs: CLI_TIMEOUT_MS },
  );
  if (result.code !== 0) return null;
  const out = result.stdout.trim();
  if (out.startsWith('Could not connect') || out.startsWith('Error:')) return null;
  return out;
}

/** Parses a flat key/value reply (one element per line, as redis-cli prints it). */
function parsePairs(text: string): Record<string, string> {
  const lines = text.split('\n');
  const pairs: Record<string, string> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const key = lines[i];
    const value = lines[i + 1];
    if (key !== undefined && value !== undefined) pairs[key] = value;
  }
  return pairs;
}

/** Whether the sentinel on `host` sees a as master with b and both other sentinels. */
async function sentinelReady(lab: PairLab, host: PairHost): Promise<boolean> {
  const master = await sentinelCli(lab, host, ['SENTINEL', 'MASTER', SENTINEL_MASTER_NAME]);
  if (master === null) return false;
  const fields = parsePairs(master);
  if (
    fields['ip'] !== lab.address('a') ||
    fields['flags'] !== 'master' ||
    fields['num-slaves'] !== '1' ||
    fields['num-other-sentinels'] !== String(SENTINEL_HOSTS.length - 1)
  ) {
    return false;
  }
  const quorum = await sentinelCli(lab, host, ['SENTINEL', 'CKQUORUM', SENTINEL_MASTER_NAME]);
  return quorum !== null && quorum.startsWith('OK');
}

function sentinelProcess(run: SentinelRun, host: PairHost): ProcessRef | null {
  const child = run.children.get(host);
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return null;
  const ref = processRef(child.pid);
  return ref && processAlive(ref) ? ref : null;
}

function diagnostics(run: SentinelRun): string {
  return SENTINEL_HOSTS.map(
    (host) =>
      `--- sentinel ${host} (last ${LOG_TAIL_LINES} lines)\n${tailFile(run.files[host].log, LOG_TAIL_LINES)}\n` +
      `--- vip-reconfig ${host}\n${tailFile(run.files[host].scriptLog, LOG_TAIL_LINES)}`,
  ).join('\n');
}

async function statusText(lab: PairLab): Promise<string> {
  try {
    return JSON.stringify(await lab.status());
  } catch (error) {
    return `status unavailable: ${String(error)}`;
  }
}

/** Polls `predicate` until it holds or `timeoutMs` passes; fails at once if a sentinel exited on its own. */
async function waitUntil(
  lab: PairLab,
  run: SentinelRun,
  description: string,
  predicate: () => Promise<boolean>,
  timeoutMs: number,
  expectRunning: readonly PairHost[],
): Promise<number> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    for (const host of expectRunning) {
      const child = run.children.get(host);
      if (child && (child.exitCode !== null || child.signalCode !== null)) {
        throw new RedisHaError(
          'SETUP_DAEMON_EXITED',
          `sentinel: the sentinel on ${host} exited (${child.exitCode ?? child.signalCode}) while waiting for: ${description}\n${diagnostics(run)}`,
          { recoverable: false },
        );
      }
    }
    if (await predicate()) return Date.now() - started;
    if (Date.now() >= deadline) break;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
  }
  throw new RedisHaError(
    'SETUP_NOT_SETTLED',
    `sentinel: timed out after ${timeoutMs} ms waiting for: ${description}\nstatus: ${await statusText(lab)}\n${diagnostics(run)}`,
    { recoverable: false },
  );
}

function spawnSentinel(lab: PairLab, run: SentinelRun, host: PairHost): void {
  const files = run.files[host];
  // Sentinel logs to its logfile; stdout/stderr only carry start-up failures.
  const fd = openSync(join(files.dir, 'stdout.log'), 'a');
  try {
    run.children.set(host, lab.net.spawn(host, ['redis-sentinel', files.config], { stdio: ['ignore', fd, fd] }));
  } finally {
    closeSync(fd);
  }
}

async function removeVip(lab: PairLab): Promise<void> {
  for (const host of SENTINEL_HOSTS) {
    await lab.net.exec(host, ['ip', 'addr', 'del', `${lab.vip}/${VIP_PREFIX_LENGTH}`, 'dev', 'eth0']);
  }
}

/** Redis Sentinel x3 (a, b, c), quorum 2, VIP moved by client-reconfig-script. */
export const sentinel: SetupDriver = {
  name: 'sentinel',
  description:
    `redis-sentinel 7.0 x3 (a, b, client c), quorum ${QUORUM}, down-after ${DOWN_AFTER_MS} ms, ` +
    `failover-timeout ${FAILOVER_TIMEOUT_MS} ms, parallel-syncs ${PARALLEL_SYNCS}; VIP by client-reconfig-script ` +
    '(to-ip = me: ip addr add + arping -U, else ip addr del); switchover = SENTINEL FAILOVER',
  supports: FAULTS_SUPPORTED,

  async start(lab: PairLab): Promise<void> {
    if (runs.has(lab)) throw new Error('sentinel: already started on this lab');
    const run: SentinelRun = {
      files: { a: sentinelFiles(lab, 'a'), b: sentinelFiles(lab, 'b'), c: sentinelFiles(lab, 'c') },
      children: new Map(),
      orphans: [],
    };
    runs.set(lab, run);
    // The recipe's first step is manual: the VIP goes on the current master.
    await lab.net.execOk('a', ['ip', 'addr', 'add', `${lab.vip}/${VIP_PREFIX_LENGTH}`, 'dev', 'eth0']);
    await lab.net.exec('a', ['arping', '-U', '-c', String(ARPING_COUNT), '-I', 'eth0', '-s', lab.vip, lab.vip], {
      timeoutMs: ARPING_TIMEOUT_MS,
    });
    for (const host of SENTINEL_HOSTS) {
      const files = run.files[host];
      mkdirSync(files.dir, { recursive: true, mode: SCRIPT_FILE_MODE });
      writeFileSync(files.config, sentinelConfigText(lab, host, files), { mode: CONFIG_FILE_MODE });
      writeFileSync(files.script, sentinelReconfigScript(lab, host, files), { mode: SCRIPT_FILE_MODE });
    }
    for (const host of SENTINEL_HOSTS) spawnSentinel(lab, run, host);
    await waitUntil(
      lab,
      run,
      'every sentinel seeing a as master with b and two other sentinels (CKQUORUM OK), a settled as master',
      async () => {
        for (const host of SENTINEL_HOSTS) if (!(await sentinelReady(lab, host))) return false;
        return lab.isSettledMaster('a');
      },
      START_TIMEOUT_MS,
      SENTINEL_HOSTS,
    );
  },

  async killDaemon(lab: PairLab, node: PairNode): Promise<void> {
    const run = runs.get(lab);
    const ref = run ? sentinelProcess(run, node) : null;
    if (!run || !ref) return;
    // Frozen first so that a script it is running is recorded for `stop()`.
    signalAll([ref], 'SIGSTOP');
    run.orphans.push(...descendants([ref]));
    signalAll([ref], 'SIGKILL');
    const child = run.children.get(node);
    if (child) await waitChildExit(child, KILL_WAIT_MS);
    await waitGone([ref], KILL_WAIT_MS);
  },

  async suspendDaemon(lab: PairLab, node: PairNode): Promise<void> {
    const run = runs.get(lab);
    const ref = run ? sentinelProcess(run, node) : null;
    if (!ref) throw new Error(`sentinel: no sentinel running on ${node} to stall`);
    stallProcesses(lab, node, [ref]);
  },

  async resumeDaemon(lab: PairLab, node: PairNode): Promise<void> {
    resumeStalled(lab, node);
  },

  async switchover(lab: PairLab): Promise<void> {
    const run = runs.get(lab);
    if (!run) throw new Error('sentinel: switchover before start');
    // The client host's sentinel first: it is neither data node, so the order is neutral.
    const host = (['c', 'b', 'a'] as const).find((candidate) => sentinelProcess(run, candidate) !== null);
    if (!host) throw new RedisHaError('SWITCHOVER_FAILED', 'sentinel: no sentinel is running', { recoverable: false });
    const reply = await sentinelCli(lab, host, ['SENTINEL', 'FAILOVER', SENTINEL_MASTER_NAME]);
    if (reply !== 'OK') {
      throw new RedisHaError(
        'SWITCHOVER_FAILED',
        `sentinel: SENTINEL FAILOVER on ${host} answered ${reply ?? 'nothing'}\n${diagnostics(run)}`,
        { recoverable: false },
      );
    }
    await waitUntil(
      lab,
      run,
      'b master and the only VIP holder after SENTINEL FAILOVER',
      async () => (await lab.vipHolders()).join() === 'b' && (await lab.redisRole('b')) === 'master',
      SWITCHOVER_TIMEOUT_MS,
      [],
    );
  },

  daemonPids(lab: PairLab, host: PairHost): number[] {
    const run = runs.get(lab);
    const ref = run ? sentinelProcess(run, host) : null;
    return ref ? [ref.pid] : [];
  },

  async stop(lab: PairLab): Promise<void> {
    const run = runs.get(lab);
    if (!run) return;
    const roots: ProcessRef[] = [...run.orphans];
    for (const host of SENTINEL_HOSTS) {
      const ref = sentinelProcess(run, host);
      if (ref) roots.push(ref);
    }
    await killProcessTrees(roots, KILL_WAIT_MS);
    await Promise.all([...run.children.values()].map((child) => waitChildExit(child, KILL_WAIT_MS)));
    await removeVip(lab);
    runs.delete(lab);
  },
};

/** The master address every running sentinel reports (for tests and diagnostics). */
export async function sentinelMasterAddresses(lab: PairLab): Promise<Partial<Record<PairHost, string>>> {
  const addresses: Partial<Record<PairHost, string>> = {};
  for (const host of SENTINEL_HOSTS) {
    const out = await sentinelCli(lab, host, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME]);
    const ip = out?.split('\n')[0];
    if (ip) addresses[host] = ip;
  }
  return addresses;
}

