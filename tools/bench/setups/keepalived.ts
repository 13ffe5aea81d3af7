/**
 * The `keepalived-classic` benchmark driver: the widespread "Redis + keepalived" recipe
 * (seed 002: two nodes `state BACKUP`, priorities 100 + `nopreempt` / 90, `advert_int 1`,
 * PASS authentication, a `chk_redis` PING script every 2 s, and notify scripts that
 * flip replication with `SLAVEOF` after fixed sleeps), translated to the pair lab and
 * otherwise kept as written: its slowness and its write loss are what the benchmark
 * measures.
 *
 * Translation to the lab:
 *  - one Debian keepalived 2.2.7 per node, run in the node's namespace in the foreground
 *    (`--dont-fork --vrrp`), with its own config, pid files and log under `lab.dir`;
 *    VRRP multicast (224.0.0.18, IP protocol 112) stays on the lab bridge;
 *  - `redis-cli -a 123456` becomes `redis-cli` with `REDISCLI_AUTH` (same effect, no
 *    warning on stderr, the password off argv); the scripts are mode 0700;
 *  - the seed's `route_id` typo is written as `router_id`; `script_user root` is
 *    added because 2.2.7 otherwise looks for a `keepalived_script` user; script
 *    security stays off (the scripts live under /tmp, which it would reject), so
 *    keepalived logs "SECURITY VIOLATION" once at start, as on most such hosts;
 *  - each node's state log is `keepalived-redis-state-<node>.log` in `lab.dir`.
 *
 * Start-up is the recipe's own: a is started first (so that it, not b, wins the
 * initial election: both start in BACKUP and a's 40 ms shorter master-down timer is
 * not a margin worth racing), takes the VIP after ~3.6 s, then b starts as the backup.
 * The notify scripts then run their sleeps: a's `notify_backup` (run on entering the
 * initial BACKUP state) issues `SLAVEOF b` after 15 s while b still replicates a, a
 * replication loop that a's `notify_master` ends at ~29 s with `SLAVEOF NO ONE`.
 * `start()` therefore waits until no notify_master/notify_backup script is running on
 * either node and a is the settled master (VIP on a alone, b replicating a with the
 * link up), bounded at 60 s, so the warm-up starts from a settled pair.
 *
 * Stall (`daemon-stall`): keepalived's own processes on the node (the parent and its
 * VRRP child) and whatever script they are running are SIGSTOPped, later SIGCONTed;
 * keepalived keeps no record of its role changes the benchmark could time, so only
 * the sampled state tells when the old master let go.
 *
 * There is no switchover: keepalived has none. `stop()` is a hard stop: keepalived and
 * every script it started are frozen (SIGSTOP) and killed (SIGKILL) by PID, then the
 * VIP is removed. A graceful SIGTERM would make the peer run notify_master, whose 25 s
 * of sleeps would outlive the daemon.
 *
 * The process helpers at the bottom (PID + start-time references, freezing and killing
 * process trees) are shared with the sentinel driver.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RedisHaError } from '../../../src/errors.js';
import { waitChildExit } from '../../lab/netns.js';
import { PairLab, PRIORITY_A, PRIORITY_B, type PairHost, type PairNode } from '../../lab/pair.js';
import { LAB_REDIS_PORT } from '../../lab/redis-proc.js';
import type { FaultName, SetupDriver } from '../setup.js';
import {
  descendants, killProcessTrees, KILL_WAIT_MS, LOG_TAIL_LINES, processAlive, processCmdline, processRef, resumeStalled,
  shellQuote, signalAll, sleep, stallProcesses, tailFile, waitGone, type ProcessRef,
} from './processes.js';

/** VRRP virtual router id of the recipe (the lab bridge carries no other VRRP). */
export const KEEPALIVED_ROUTER_ID = 51;
/** The recipe's advert interval, seconds. */
const ADVERT_INT_S = 1;
/** The recipe's check interval, seconds. */
const CHECK_INTERVAL_S = 2;
/** The recipe's PASS authentication secret. */
const AUTH_PASS = '1111';
/** Sleeps of the recipe's notify scripts, seconds. */
const NOTIFY_FIRST_SLEEP_S = 15;
const NOTIFY_MASTER_SYNC_SLEEP_S = 10;
const INSTANCE_NAME = 'VI_1';
const VIP_PREFIX_LENGTH = 24;
/** Bound on the whole `start()`: the recipe settles after ~30 s. */
const START_TIMEOUT_MS = 60_000;
/** Bound on a's first election (master-down timer ~3.6 s). */
const FIRST_MASTER_TIMEOUT_MS = 15_000;
/** Bound on b reaching BACKUP after its start. */
const BACKUP_STATE_TIMEOUT_MS = 10_000;
const POLL_MS = 200;
const SCRIPT_FILE_MODE = 0o700;
const CONFIG_FILE_MODE = 0o600;
/** Scripts run with a known PATH (keepalived passes its own environment on). */
const SCRIPT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const FAULTS_SUPPORTED: readonly FaultName[] = ['redis-kill', 'redis-hang', 'link-down', 'daemon-kill', 'daemon-stall', 'partition', 'loss'];

/** Files of one node's keepalived. */
interface NodeFiles {
  readonly dir: string;
  readonly config: string;
  readonly pidFile: string;
  readonly vrrpPidFile: string;
  readonly checkersPidFile: string;
  readonly log: string;
  readonly stateLog: string;
  readonly checkScript: string;
  readonly masterScript: string;
  readonly backupScript: string;
  readonly faultScript: string;
  readonly stopScript: string;
}

/** What the driver keeps per lab. */
interface KeepalivedRun {
  readonly files: Record<PairNode, NodeFiles>;
  readonly parents: Map<PairNode, ChildProcess>;
  /** Scripts left running by a SIGKILLed keepalived (`killDaemon`), killed at `stop()`. */
  readonly orphans: ProcessRef[];
}

const runs = new WeakMap<PairLab, KeepalivedRun>();

function nodeFiles(lab: PairLab, node: PairNode): NodeFiles {
  const dir = join(lab.dir, `keepalived-${node}`);
  return {
    dir,
    config: join(dir, 'keepalived.conf'),
    pidFile: join(dir, 'keepalived.pid'),
    vrrpPidFile: join(dir, 'vrrp.pid'),
    checkersPidFile: join(dir, 'checkers.pid'),
    log: join(lab.dir, `keepalived-${node}.log`),
    stateLog: join(lab.dir, `keepalived-redis-state-${node}.log`),
    checkScript: join(dir, 'redis_check.sh'),
    masterScript: join(dir, 'redis_master.sh'),
    backupScript: join(dir, 'redis_backup.sh'),
    faultScript: join(dir, 'redis_fault.sh'),
    stopScript: join(dir, 'redis_stop.sh'),
  };
}

/** keepalived.conf of a node: the seed's file with the lab's addresses. */
export function keepalivedConfigText(lab: PairLab, node: PairNode, files: NodeFiles): string {
  const priority = node === 'a' ? PRIORITY_A : PRIORITY_B;
  return [
    '! Configuration File for keepalived (keepalived-classic, node ' + node + ')',
    '',
    'global_defs {',
    '    notification_email {',
    '        root@localhost',
    '    }',
    '    notification_email_from keepalived@localhost',
    '    smtp_server 127.0.0.1',
    '    smtp_connect_timeout 30',
    `    router_id LVS_DEVEL_${node}`,
    '    script_user root',
    '}',
    '',
    'vrrp_script chk_redis {',
    `    script "${files.checkScript}"`,
    `    interval ${CHECK_INTERVAL_S}`,
    '}',
    '',
    `vrrp_instance ${INSTANCE_NAME} {`,
    '    state BACKUP',
    '    interface eth0',
    `    virtual_router_id ${KEEPALIVED_ROUTER_ID}`,
    `    priority ${priority}`,
    // The seed sets nopreempt on its preferred node only.
    ...(node === 'a' ? ['    nopreempt'] : []),
    `    advert_int ${ADVERT_INT_S}`,
    '    authentication {',
    '        auth_type PASS',
    `        auth_pass ${AUTH_PASS}`,
    '    }',
    '    track_script {',
    '        chk_redis',
    '    }',
    '    virtual_ipaddress {',
    `        ${lab.vip}/${VIP_PREFIX_LENGTH}`,
    '    }',
    `    notify_master "${files.masterScript}"`,
    `    notify_backup "${files.backupScript}"`,
    `    notify_fault "${files.faultScript}"`,
    `    notify_stop "${files.stopScript}"`,
    '}',
    '',
  ].join('\n');
}

/** The four notify scripts and the check script of a node, from the seed's text. */
export function keepalivedScripts(lab: PairLab, node: PairNode, files: NodeFiles): Record<string, string> {
  const peer = lab.address(PairLab.other(node));
  const prelude = [
    '#!/bin/bash',
    `export PATH=${SCRIPT_PATH}`,
    `export REDISCLI_AUTH=${shellQuote(lab.password)}`,
    `REDISCLI="redis-cli -h 127.0.0.1 -p ${LAB_REDIS_PORT}"`,
    `LOGFILE=${shellQuote(files.stateLog)}`,
  ];
  const check = [
    '#!/bin/bash',
    `export PATH=${SCRIPT_PATH}`,
    `export REDISCLI_AUTH=${shellQuote(lab.password)}`,
    `ALIVE=\`redis-cli -h 127.0.0.1 -p ${LAB_REDIS_PORT} PING\``,
    'if [ "$ALIVE" == "PONG" ]; then',
    '    echo $ALIVE',
    '    exit 0',
    'else',
    '    echo $ALIVE',
    '    exit 1',
    'fi',
  ];
  const master = [
    ...prelude,
    '',
    `sleep ${NOTIFY_FIRST_SLEEP_S}`,
    '',
    'echo "[master]" >> $LOGFILE',
    'date >> $LOGFILE',
    'echo "Being master...." >> $LOGFILE 2>&1',
    'echo "Run SLAVEOF cmd ..." >> $LOGFILE',
    `$REDISCLI SLAVEOF ${peer} ${LAB_REDIS_PORT} >> $LOGFILE 2>&1`,
    'if [ $? -ne 0 ]; then',
    '    echo "data rsync fail." >> $LOGFILE 2>&1',
    'else',
    '    echo "data rsync OK." >> $LOGFILE 2>&1',
    'fi',
    '',
    `sleep ${NOTIFY_MASTER_SYNC_SLEEP_S} # wait for the sync before cancelling it`,
    '',
    'echo "Run SLAVEOF NO ONE cmd ..." >> $LOGFILE',
    '$REDISCLI SLAVEOF NO ONE >> $LOGFILE 2>&1',
    'if [ $? -ne 0 ]; then',
    '    echo "Run SLAVEOF NO ONE cmd fail." >> $LOGFILE 2>&1',
    'else',
    '    echo "Run SLAVEOF NO ONE cmd OK." >> $LOGFILE 2>&1',
    'fi',
  ];
  const backup = [
    ...prelude,
    '',
    'echo "[backup]" >> $LOGFILE',
    'date >> $LOGFILE',
    'echo "Being slave...." >> $LOGFILE 2>&1',
    '',
    `sleep ${NOTIFY_FIRST_SLEEP_S} # let the peer sync our data before switching roles`,
    'echo "Run SLAVEOF cmd ..." >> $LOGFILE',
    `$REDISCLI SLAVEOF ${peer} ${LAB_REDIS_PORT} >> $LOGFILE 2>&1`,
  ];
  const note = (word: string): string[] => [
    '#!/bin/bash',
    `LOGFILE=${shellQuote(files.stateLog)}`,
    `echo "[${word}]" >> $LOGFILE`,
    'date >> $LOGFILE',
  ];
  return {
    [files.checkScript]: `${check.join('\n')}\n`,
    [files.masterScript]: `${master.join('\n')}\n`,
    [files.backupScript]: `${backup.join('\n')}\n`,
    [files.faultScript]: `${note('fault').join('\n')}\n`,
    [files.stopScript]: `${note('stop').join('\n')}\n`,
  };
}

function writeNodeFiles(lab: PairLab, node: PairNode): NodeFiles {
  const files = nodeFiles(lab, node);
  mkdirSync(files.dir, { recursive: true, mode: SCRIPT_FILE_MODE });
  writeFileSync(files.config, keepalivedConfigText(lab, node, files), { mode: CONFIG_FILE_MODE });
  for (const [path, text] of Object.entries(keepalivedScripts(lab, node, files))) {
    writeFileSync(path, text, { mode: SCRIPT_FILE_MODE });
  }
  return files;
}

function readPidFile(path: string): number | null {
  if (!existsSync(path)) return null;
  const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** keepalived's own processes on a node (parent, then the VRRP child), alive ones only. */
function keepalivedProcesses(run: KeepalivedRun, node: PairNode): ProcessRef[] {
  const refs: ProcessRef[] = [];
  const parent = run.parents.get(node);
  if (parent?.pid !== undefined && parent.exitCode === null && parent.signalCode === null) {
    const ref = processRef(parent.pid);
    if (ref) refs.push(ref);
    // The VRRP child is only ours while its parent is: a stale pid file may name a
    // recycled PID, so its parent must be the keepalived we started.
    const vrrpPid = readPidFile(run.files[node].vrrpPidFile);
    const vrrp = vrrpPid === null ? null : processRef(vrrpPid);
    if (vrrp && vrrp.ppid === parent.pid) refs.push(vrrp);
  }
  return refs.filter(processAlive);
}

/** Notify scripts (master/backup, the ones with sleeps) currently running on a node. */
function runningNotifyScripts(run: KeepalivedRun, node: PairNode): ProcessRef[] {
  const files = run.files[node];
  return descendants(keepalivedProcesses(run, node)).filter((ref) => {
    const cmdline = processCmdline(ref.pid);
    return cmdline.includes(files.masterScript) || cmdline.includes(files.backupScript);
  });
}

function diagnostics(run: KeepalivedRun): string {
  return (['a', 'b'] as const)
    .map(
      (node) =>
        `--- keepalived ${node} (last ${LOG_TAIL_LINES} lines)\n${tailFile(run.files[node].log)}\n` +
        `--- keepalived-redis-state ${node}\n${tailFile(run.files[node].stateLog)}`,
    )
    .join('\n');
}

async function statusText(lab: PairLab): Promise<string> {
  try {
    return JSON.stringify(await lab.status());
  } catch (error) {
    return `status unavailable: ${String(error)}`;
  }
}

/**
 * Polls `predicate` until it holds or `deadline` (epoch ms) passes. Fails at once when
 * a keepalived we started has exited (a config error, say).
 */
async function waitUntil(
  lab: PairLab,
  run: KeepalivedRun,
  description: string,
  predicate: () => Promise<boolean>,
  deadline: number,
): Promise<void> {
  for (;;) {
    for (const [node, parent] of run.parents) {
      if (parent.exitCode !== null || parent.signalCode !== null) {
        throw new RedisHaError(
          'SETUP_DAEMON_EXITED',
          `keepalived-classic: keepalived on ${node} exited (${parent.exitCode ?? parent.signalCode}) while waiting for: ${description}\n${diagnostics(run)}`,
          { recoverable: false },
        );
      }
    }
    if (await predicate()) return;
    if (Date.now() >= deadline) break;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
  }
  throw new RedisHaError(
    'SETUP_NOT_SETTLED',
    `keepalived-classic: timed out waiting for: ${description}\nstatus: ${await statusText(lab)}\n${diagnostics(run)}`,
    { recoverable: false },
  );
}

function spawnKeepalived(lab: PairLab, run: KeepalivedRun, node: PairNode): void {
  const files = run.files[node];
  const fd = openSync(files.log, 'a');
  try {
    const child = lab.net.spawn(
      node,
      [
        'keepalived',
        '--dont-fork',
        '--log-console',
        '--log-detail',
        '--no-syslog',
        '--vrrp',
        '-f', files.config,
        '-p', files.pidFile,
        '-r', files.vrrpPidFile,
        '-c', files.checkersPidFile,
      ],
      { stdio: ['ignore', fd, fd] },
    );
    run.parents.set(node, child);
  } finally {
    closeSync(fd);
  }
}

async function removeVip(lab: PairLab): Promise<void> {
  for (const node of ['a', 'b'] as const) {
    await lab.net.exec(node, ['ip', 'addr', 'del', `${lab.vip}/${VIP_PREFIX_LENGTH}`, 'dev', 'eth0']);
  }
}

/** The classic keepalived + notify-scripts recipe (seed 002). */
export const keepalivedClassic: SetupDriver = {
  name: 'keepalived-classic',
  description:
    `keepalived 2.2.7 VRRP (both BACKUP, prio ${PRIORITY_A}+nopreempt/${PRIORITY_B}, advert_int ${ADVERT_INT_S}, ` +
    `chk_redis PING every ${CHECK_INTERVAL_S} s) + notify scripts: master "sleep ${NOTIFY_FIRST_SLEEP_S}; SLAVEOF peer; ` +
    `sleep ${NOTIFY_MASTER_SYNC_SLEEP_S}; SLAVEOF NO ONE", backup "sleep ${NOTIFY_FIRST_SLEEP_S}; SLAVEOF peer"; no switchover`,
  supports: FAULTS_SUPPORTED,

  async start(lab: PairLab): Promise<void> {
    if (runs.has(lab)) throw new Error('keepalived-classic: already started on this lab');
    const deadline = Date.now() + START_TIMEOUT_MS;
    const run: KeepalivedRun = {
      files: { a: writeNodeFiles(lab, 'a'), b: writeNodeFiles(lab, 'b') },
      parents: new Map(),
      orphans: [],
    };
    runs.set(lab, run);
    spawnKeepalived(lab, run, 'a');
    await waitUntil(
      lab,
      run,
      'keepalived on a master with the VIP',
      async () => (await lab.vipHolders()).join() === 'a',
      Math.min(deadline, Date.now() + FIRST_MASTER_TIMEOUT_MS),
    );
    spawnKeepalived(lab, run, 'b');
    await waitUntil(
      lab,
      run,
      'keepalived on b in BACKUP state',
      async () => tailFile(run.files.b.log, 1_000).includes(`(${INSTANCE_NAME}) Entering BACKUP STATE`),
      Math.min(deadline, Date.now() + BACKUP_STATE_TIMEOUT_MS),
    );
    await waitUntil(
      lab,
      run,
      'the notify scripts finished (a: backup then master, b: backup) and a settled as master (VIP on a, b replicating a)',
      async () =>
        runningNotifyScripts(run, 'a').length === 0 &&
        runningNotifyScripts(run, 'b').length === 0 &&
        (await lab.isSettledMaster('a')),
      deadline,
    );
  },

  async killDaemon(lab: PairLab, node: PairNode): Promise<void> {
    const run = runs.get(lab);
    if (!run) return;
    const own = keepalivedProcesses(run, node);
    // Frozen first so the snapshot of its scripts is complete; the kill itself is as
    // abrupt as the fault wants (the VIP stays where it is, scripts keep running).
    signalAll(own, 'SIGSTOP');
    run.orphans.push(...descendants(own));
    signalAll(own, 'SIGKILL');
    const parent = run.parents.get(node);
    if (parent) await waitChildExit(parent, KILL_WAIT_MS);
    await waitGone(own, KILL_WAIT_MS);
  },

  async suspendDaemon(lab: PairLab, node: PairNode): Promise<void> {
    const run = runs.get(lab);
    const own = run ? keepalivedProcesses(run, node) : [];
    if (own.length === 0) throw new Error(`keepalived-classic: no keepalived running on ${node} to stall`);
    stallProcesses(lab, node, own);
  },

  async resumeDaemon(lab: PairLab, node: PairNode): Promise<void> {
    resumeStalled(lab, node);
  },

  daemonPids(lab: PairLab, host: PairHost): number[] {
    const run = runs.get(lab);
    if (!run || host === 'c') return [];
    return keepalivedProcesses(run, host).map((ref) => ref.pid);
  },

  async stop(lab: PairLab): Promise<void> {
    const run = runs.get(lab);
    if (!run) return;
    const roots = [...keepalivedProcesses(run, 'a'), ...keepalivedProcesses(run, 'b'), ...run.orphans];
    await killProcessTrees(roots, KILL_WAIT_MS);
    await Promise.all([...run.parents.values()].map((child) => waitChildExit(child, KILL_WAIT_MS)));
    await removeVip(lab);
    runs.delete(lab);
  },
};
