/**
 * Demotion: the local Redis becomes a replica of the master (`REPLICAOF host port`
 * with `masterauth` for the peer), verified, and its application clients are
 * disconnected so they reconnect through the VIP. It refuses to replicate from
 * itself (its own address, or the same run_id under another address) and from a Redis
 * Cluster node; a local Redis that is one gets nothing (its control connection refuses
 * it: `refuseClusterNode` in connection.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../logger.js';
import type { HostPort } from '../../core/types.js';
import type { RedisEndpoint } from '../../config/types.js';
import { Connection, describeError, probeServer } from './connection.js';
import type { LocalRedis } from './local.js';
import { describeSnapshot, formatHostPort, replicatesFrom, sameServer } from './snapshot.js';
import { nowMs, Trail } from './trail.js';
import { ROLE_VERIFY_BOUND_MS } from '../../core/timing.js';


/** Outcome of a demotion: ok when the local Redis ended up replicating from the master. */
export interface RedisReplicateResult {
  readonly ok: boolean;
  readonly detail: string;
}

/** What a demotion drives. */
export interface DemoteDeps {
  readonly local: LocalRedis;
  /** The local Redis' own address: never a master to replicate from. */
  readonly localAddress: HostPort;
  /** Credentials (and TLS) for the peer's Redis, to ask the master who it is. */
  readonly peerEndpoint: RedisEndpoint;
  readonly peerTimeoutMs: number;
  /** `CLIENT SETNAME` prefix of our connections. */
  readonly clientName: string;
  /** config `demotion.delayMs`: waited before anything is changed. */
  readonly delayMs: number;
  readonly logger: Logger;
}

/**
 * Makes the local Redis a replica of `master`; see `RedisControl.replicateFrom`.
 * Never throws: a failure is `{ ok: false, detail }`.
 */
export async function demote(deps: DemoteDeps, master: HostPort, options: { guard?: boolean } = {}): Promise<RedisReplicateResult> {
  const trail = new Trail();
  const target = formatHostPort(master);
  const { local } = deps;
  try {
    if (deps.delayMs > 0) {
      const since = nowMs();
      await sleep(deps.delayMs);
      trail.add(`demotion delay ${deps.delayMs} ms`, since);
    }
    let since = nowMs();
    const toSelf = master.host === deps.localAddress.host && master.port === deps.localAddress.port;
    if (options.guard === true && !toSelf) {
      // The data guard: every millisecond counts before the peer's replica resyncs from
      // this (emptied) server; the checks below run after, on a server already a replica.
      await local.replicaOf(master);
      trail.add(`REPLICAOF ${master.host} ${master.port} (data guard, first)`, since);
      since = nowMs();
    }
    const state = await local.state(true);
    trail.add(`local ${describeSnapshot(state.snapshot)}`, since);

    since = nowMs();
    if (toSelf) {
      trail.add(`refused: ${target} is this server's own address`);
      return { ok: false, detail: trail.toString() };
    }
    const probe = await probeMaster(deps, master);
    if (probe.ok) {
      if (sameServer(probe.runId, state.fields.get('run_id'))) {
        trail.add(`refused: ${target} is this very server (same run_id)`, since);
        return { ok: false, detail: trail.toString() };
      }
      if (probe.clusterEnabled === true) {
        // Issue 14: a Redis Cluster node is no master of a redis-ha pair.
        trail.add(`refused: ${target} is a Redis Cluster node (cluster_enabled:1): not replicating from it`, since);
        return { ok: false, detail: trail.toString() };
      }
      trail.add(`master ${target} answers: ${describeSnapshot(probe.snapshot)}`, since);
    } else {
      // Issued anyway: the replica keeps retrying, and the link comes up when the master answers.
      trail.add(`master ${target} not reachable (${probe.detail}), replicating anyway`, since);
    }

    await local.setMasterAuth(trail);
    since = nowMs();
    if (replicatesFrom(state.snapshot, master)) {
      trail.add(`already replicating from ${target}`);
    } else {
      await local.replicaOf(master);
      trail.add(`REPLICAOF ${master.host} ${master.port}`, since);
      deps.logger.info({ master: target }, 'redis set to replicate');
    }

    since = nowMs();
    const verified = await local.waitForRole(master, ROLE_VERIFY_BOUND_MS);
    if (verified === null || !replicatesFrom(verified, master)) {
      const seen = verified === null ? 'no answer' : describeSnapshot(verified);
      trail.add(`not a replica of ${target} within ${ROLE_VERIFY_BOUND_MS} ms (${seen})`, since);
      return { ok: false, detail: trail.toString() };
    }
    trail.add(`verified ${describeSnapshot(verified)}`, since);

    since = nowMs();
    trail.add(await local.disconnectApplicationClients(), since);
    return { ok: true, detail: trail.toString() };
  } catch (err) {
    trail.add(`failed: local Redis: ${describeError(err)}`);
    const detail = trail.toString();
    deps.logger.warn({ detail }, 'redis demotion failed');
    return { ok: false, detail };
  }
}

/** Asks the server at `master` (with the peer's credentials) for its run_id and replication state; never throws. */
async function probeMaster(deps: DemoteDeps, master: HostPort): ReturnType<typeof probeServer> {
  const peer = new Connection({
    endpoint: deps.peerEndpoint,
    target: master,
    name: `${deps.clientName}-peer`,
    timeoutMs: deps.peerTimeoutMs,
  });
  try {
    return await probeServer(peer, deps.peerTimeoutMs);
  } finally {
    await peer.close();
  }
}
