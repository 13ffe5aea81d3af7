/**
 * The benchmark drivers of redis-ha itself: the real daemons (`dist/cli/main.js run`)
 * on the pair lab, with the lab's recipe configuration (priorities 100/90, no
 * preemption, fall 2 / rise 2) and one of two timing profiles:
 *
 *  - `redis-ha`: the defaults an operator gets (advert 1 s, health 500 ms / 300 ms), and
 *    no quorum (`quorum.backend: none`, `prefer: availability`, the daemon's defaults:
 *    the file has no `quorum` section);
 *  - `redis-ha-etcd`: the same with `quorum.backend: etcd` and the lab's one-member etcd
 *    witness on the client host `c`, as the lab and the end-to-end quorum tests run it
 *    (`PairOptions.quorum`, `LAB_QUORUM_ETCD_TIMING`: a 2 s lease renewed every 250 ms);
 *  - `redis-ha-safety`: the same without etcd, `quorum.backend: none`, `prefer: safety`
 *    (an isolated master, or one that lost its replica, refuses writes);
 *  - `redis-ha-fast`: `timing.profile: fast` (advert 100 ms, health 100 ms / 100 ms, promotion
 *    peer timeout 100 ms, stall threshold 300 ms: src/config/profiles.ts);
 *  - `redis-ha-lan-fast`: `timing.profile: lan-fast` (advert 20 ms, health 20 ms / 20 ms,
 *    promotion peer timeout 50 ms, stall threshold 60 ms), for a dedicated, loss-free link;
 *  - `redis-ha-pause`: the defaults with `switchover.method: pause` (switchover only), to
 *    compare Redis's FAILOVER with the pause-and-promote handover.
 *
 * The lab is built with the default profile, `startDaemons: false` and the driver's
 * `labOptions` (the quorum); the driver rewrites both node configs with its profile's
 * timings before starting the daemons, so the runner treats every setup alike. The
 * setups of a named timing profile write `timing.profile` and leave the profile's keys
 * out of the file, so the daemon's own profile table decides them, as an operator's
 * file would. The etcd
 * witness counts as part of `redis-ha-etcd`: `daemonPids(lab, 'c')` lists it (so the
 * footprint includes etcd's own memory and CPU) and `stop` stops it after the daemons.
 *
 * Switchover: `redis-ha switchover` run on the master's host through the built CLI
 * (the master's daemon hands its Redis over with FAILOVER TO, steps down, and tells
 * the peer to take the role and the VIP).
 *
 * Stall (`daemon-stall`): the node's daemon process (and anything it has forked at that
 * moment, e.g. an `ip` command) is SIGSTOPped and later SIGCONTed; its Redis keeps
 * running (and so does the witness). The daemon's audit log gives the benchmark its role
 * changes (`roleRecords`): `transition` records into and out of MASTER, `redis-promoted`
 * (ok) and `vip-claimed`.
 */
import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { LAB_QUORUM_ETCD_TIMING, mergeConfig, PairLab, PROFILES, type LabConfig, type LabProfile, type LabQuorum, type PairHost, type PairNode } from '../../lab/pair.js';
import { PROFILE_KEYS, profileValues, type TimingProfile } from '../../../src/config/profiles.js';
import type { FaultName, RoleRecord, SetupDriver } from '../setup.js';
import { processRef, resumeStalled, stallProcesses } from './processes.js';

/** Bound on the initial election (VIP on a, b replicating a). */
const START_TIMEOUT_MS = 60_000;
/** Bound on the peer being master with the VIP after the switchover command returned. */
const HANDOVER_TIMEOUT_MS = 15_000;
/** Grace given to a daemon on SIGTERM at `stop`. */
const STOP_GRACE_MS = 5_000;
const CONFIG_FILE_MODE = 0o600;
/** Bound on the witness's leader key naming `a` once a has settled as master. */
const LEADER_KEY_TIMEOUT_MS = 15_000;
/** What the lab has when a driver sets no quorum: the daemon's defaults. */
const NO_QUORUM: LabQuorum = { backend: 'none', prefer: 'availability' };

const FAULTS_SUPPORTED: readonly FaultName[] = [
  'redis-kill', 'redis-hang', 'link-down', 'daemon-kill', 'daemon-stall', 'partition', 'loss', 'switchover',
];
const MASTER = 'MASTER';

/**
 * The role changes in a node's audit records (`time` is the daemon's ISO wall clock);
 * records without a parsable time are skipped. Pure.
 */
export function roleRecordsFromAudit(node: PairNode, records: ReadonlyArray<Readonly<Record<string, unknown>>>): RoleRecord[] {
  const out: RoleRecord[] = [];
  for (const record of records) {
    const wallMs = typeof record['time'] === 'string' ? Date.parse(record['time']) : Number.NaN;
    if (!Number.isFinite(wallMs)) continue;
    const add = (kind: RoleRecord['kind']): void => {
      out.push({ node, wallMs, kind });
    };
    switch (record['event']) {
      case 'transition':
        if (record['to'] === MASTER && record['from'] !== MASTER) add('to-master');
        else if (record['from'] === MASTER && record['to'] !== MASTER) add('from-master');
        break;
      case 'redis-promoted':
        if (record['ok'] === true) add('redis-promoted');
        break;
      case 'vip-claimed':
        add('vip-claimed');
        break;
      default:
        break;
    }
  }
  return out;
}

/** The node config keys a profile sets (snake_case, as in the YAML). */
function profileOverrides(profile: LabProfile): LabConfig {
  const timing = PROFILES[profile];
  const promotion: LabConfig['promotion'] = {};
  if (timing.peerTimeoutMs !== null) promotion.peer_timeout_ms = timing.peerTimeoutMs;
  return {
    advert: { interval_ms: timing.advertIntervalMs },
    health: { interval_ms: timing.healthIntervalMs, timeout_ms: timing.healthTimeoutMs },
    promotion,
    // Debug logs of two daemons at 10 adverts/s each are pure overhead in a benchmark.
    log: { level: 'info' },
  };
}

/**
 * A node config with `timing.profile` set and the profile's keys removed (they would
 * win over the profile), and debug logs off as in `profileOverrides`.
 */
function withTimingProfile(config: LabConfig, profile: TimingProfile): LabConfig {
  const out = structuredClone(config) as Record<string, Record<string, unknown> | undefined>;
  for (const key of PROFILE_KEYS) {
    const [section = '', name = ''] = key.split('.');
    delete out[section]?.[name];
  }
  return mergeConfig(out as LabConfig, { timing: { profile }, log: { level: 'info' } });
}

/** The description's words for a quorum. */
function quorumText(quorum: LabQuorum | undefined): string {
  const q = quorum ?? NO_QUORUM;
  if (q.backend === 'none') return `no quorum (quorum.backend none, prefer ${q.prefer}${quorum === undefined ? ': the defaults' : ''})`;
  return (
    `quorum.backend etcd: a one-member etcd witness on the client host (lease ${LAB_QUORUM_ETCD_TIMING.lease_ttl_s} s, ` +
    `renewed every ${LAB_QUORUM_ETCD_TIMING.renew_interval_ms} ms; its memory and CPU counted in the footprint)`
  );
}

/**
 * Why `lab` cannot run a driver with `quorum`, or `null`: the quorum is the lab's
 * (`labOptions`), and a lab built without it would silently benchmark another setup.
 */
function labQuorumProblem(name: string, lab: PairLab, quorum: LabQuorum | undefined): string | null {
  const section = lab.baseConfig('a').quorum;
  const matches =
    quorum === undefined
      ? section === undefined
      : section?.backend === quorum.backend && (quorum.backend === 'etcd' || section.prefer === quorum.prefer);
  if (matches) return null;
  return (
    `${name}: the lab was built with quorum ${JSON.stringify(section ?? null)}, the setup needs ` +
    `${JSON.stringify(quorum ?? null)} (build the lab with the driver's labOptions)`
  );
}

/** Builds the driver of one profile; `extra` is merged over every node's configuration. */
function redisHaDriver(
  name: string,
  profile: LabProfile,
  variant: { extra?: LabConfig; supports?: readonly FaultName[]; method?: string; quorum?: LabQuorum; timingProfile?: TimingProfile } = {},
): SetupDriver {
  const { quorum, timingProfile } = variant;
  const named = timingProfile === undefined ? null : profileValues(timingProfile);
  const timing = named === null
    ? PROFILES[profile]
    : { advertIntervalMs: named['advert.interval_ms'], healthIntervalMs: named['health.interval_ms'], healthTimeoutMs: named['health.timeout_ms'] };
  const profileText = timingProfile === undefined ? `profile ${profile}` : `timing.profile ${timingProfile}`;
  const withEtcd = quorum?.backend === 'etcd';
  return {
    name,
    description:
      `redis-ha daemons, ${profileText} (advert ${timing.advertIntervalMs} ms, health ` +
      `${timing.healthIntervalMs}/${timing.healthTimeoutMs} ms, fall 2, priorities 100/90, nopreempt), ${quorumText(quorum)}; ` +
      `switchover = \`redis-ha switchover\` on the master (${variant.method ?? 'Redis FAILOVER TO'}, then the VIP moves)`,
    supports: variant.supports ?? FAULTS_SUPPORTED,
    ...(quorum === undefined ? {} : { labOptions: { quorum } }),

    async start(lab: PairLab): Promise<void> {
      const problem = labQuorumProblem(name, lab, quorum);
      if (problem !== null) throw new Error(problem);
      for (const node of ['a', 'b'] as const) {
        const timed = timingProfile === undefined
          ? mergeConfig(lab.baseConfig(node), profileOverrides(profile))
          : withTimingProfile(lab.baseConfig(node), timingProfile);
        const config = mergeConfig(timed, variant.extra);
        writeFileSync(lab.configPath(node), stringify(config), { mode: CONFIG_FILE_MODE });
      }
      lab.startDaemon('a');
      if (timingProfile !== undefined) {
        // A start-up listen of one master-down interval (73 ms at lan-fast) is shorter than a
        // daemon's own start-up on a busy host: started together, b could be master before
        // it hears a, and without preemption it stays so. a first, then b.
        await lab.waitFor(`${name}: a holds the VIP`, async () => (await lab.vipHolders()).join() === 'a', START_TIMEOUT_MS);
      }
      lab.startDaemon('b');
      await lab.waitFor(`${name}: a settled as master (VIP on a, b replicating a)`, () => lab.isSettledMaster('a'), START_TIMEOUT_MS);
      if (withEtcd) {
        // Settled means the key too: a fault injected before a holds it would test the election, not the fault.
        await lab.waitFor(`${name}: the witness's leader key held by a`, async () => (await lab.etcd().leader())?.record?.node === 'a', LEADER_KEY_TIMEOUT_MS);
      }
    },

    async killDaemon(lab: PairLab, node: PairNode): Promise<void> {
      await lab.stopDaemon(node, 'SIGKILL');
    },

    async suspendDaemon(lab: PairLab, node: PairNode): Promise<void> {
      const pid = lab.daemonPid(node);
      const ref = pid === null ? null : processRef(pid);
      if (!ref) throw new Error(`${name}: no daemon running on ${node} to stall`);
      stallProcesses(lab, node, [ref]);
    },

    async resumeDaemon(lab: PairLab, node: PairNode): Promise<void> {
      resumeStalled(lab, node);
    },

    roleRecords(lab: PairLab): RoleRecord[] {
      return (['a', 'b'] as const).flatMap((node) => roleRecordsFromAudit(node, lab.auditRecords(node)));
    },

    async switchover(lab: PairLab): Promise<void> {
      const r = await lab.ctl('a', ['switchover']);
      // A refused or rolled-back switchover is an outcome the runner records, not a crash.
      if (r.code !== 0) return;
      await lab.waitFor(
        'b master with the VIP after the switchover',
        async () => (await lab.vipHolders()).join() === 'b' && (await lab.redisRole('b')) === 'master',
        HANDOVER_TIMEOUT_MS,
      );
    },

    daemonPids(lab: PairLab, host: PairHost): number[] {
      if (host === 'c') {
        const pid = withEtcd ? lab.etcd().pid : null;
        return pid === null ? [] : [pid];
      }
      const pid = lab.daemonPid(host);
      return pid === null ? [] : [pid];
    },

    async stop(lab: PairLab): Promise<void> {
      await Promise.all((['a', 'b'] as const).map((node) => lab.stopDaemon(node, 'SIGTERM', STOP_GRACE_MS)));
      // After the daemons: a daemon stopping gives up its leader key through etcd.
      if (withEtcd) await lab.etcd().stop('SIGTERM');
    },
  };
}

/** redis-ha with the default timings. */
export const redisHa: SetupDriver = redisHaDriver('redis-ha', 'default');

/** redis-ha with the default timings and the etcd quorum (a one-member witness on the client host). */
export const redisHaEtcd: SetupDriver = redisHaDriver('redis-ha-etcd', 'default', { quorum: { backend: 'etcd' } });

/** redis-ha with the default timings, no quorum, `prefer: safety`. */
export const redisHaSafety: SetupDriver = redisHaDriver('redis-ha-safety', 'default', { quorum: { backend: 'none', prefer: 'safety' } });

/** redis-ha with `timing.profile: fast` (100 ms adverts and health checks). */
export const redisHaFast: SetupDriver = redisHaDriver('redis-ha-fast', 'fast', { timingProfile: 'fast' });

/** redis-ha with `timing.profile: lan-fast` (20 ms adverts and health checks, a dedicated link). */
export const redisHaLanFast: SetupDriver = redisHaDriver('redis-ha-lan-fast', 'fast', { timingProfile: 'lan-fast' });

/** redis-ha with the defaults but the pause-and-promote switchover (switchover only). */
export const redisHaPause: SetupDriver = redisHaDriver('redis-ha-pause', 'default', {
  extra: { switchover: { method: 'pause' } },
  supports: ['switchover'],
  method: 'writes blocked, offsets equal, promote, demote',
});
