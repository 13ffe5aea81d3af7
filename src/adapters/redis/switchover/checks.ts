/**
 * The pre-checks of a switchover, before anything changes: the local Redis is a
 * master with no FAILOVER under way; the target is listed among its `slaveN` lines,
 * online and (unless forced) within the lag bounds; the target answers directly as a
 * replica of our history with its link up, and is no Redis Cluster node (issue 14).
 * The rules are in `rules.ts`; this file reads both servers and resolves the target's
 * name.
 */
import { lookup } from 'node:dns/promises';
import type { RedisSnapshot } from '../../../core/types.js';
import { ipFamily, sameAddress } from '../../../net/address.js';
import { describeError, probeServer } from '../connection.js';
import { parseInfoFields, parseReplicaEntries, parseReplicationInfo, type ReplicaEntry } from '../info.js';
import {
  chooseMethod,
  lagBytes,
  localRefusal,
  notConnectedRefusal,
  replicaRefusal,
  targetRefusal,
} from '../rules.js';
import { describeSnapshot, formatHostPort } from '../snapshot.js';
import { nowMs } from '../trail.js';
import type { Checked, SwitchoverContext } from './context.js';

/** Runs the pre-checks; what they established, or the reason for refusing. */
export async function preChecks(ctx: SwitchoverContext): Promise<Checked | { readonly refusal: string }> {
  const { trail, name, request, deps } = ctx;
  let since = nowMs();
  let fields: Map<string, string>;
  let local: RedisSnapshot;
  let entries: ReplicaEntry[];
  try {
    const [server, replication] = await deps.local.run(deps.localTimeoutMs, (c) =>
      Promise.all([c.info('server'), c.info('replication')]),
    );
    fields = parseInfoFields(`${server}\n${replication}`);
    local = parseReplicationInfo(replication);
    entries = parseReplicaEntries(replication);
  } catch (err) {
    return { refusal: `local Redis does not answer (${describeError(err)})` };
  }
  ctx.localAnswered = true;
  const version = ctx.hooks.assumeVersion ?? fields.get('redis_version') ?? '';
  const notReady = localRefusal(local, fields.get('master_failover_state') ?? 'no-failover');
  if (notReady !== null) return { refusal: notReady };
  trail.add(`local Redis ${version || '(version unknown)'}: ${describeSnapshot(local)}`, since);

  const chosen = chooseMethod(request.method, version);
  if ('refusal' in chosen) return chosen;

  since = nowMs();
  const entry = await findTarget(ctx, entries);
  if (entry === null) return { refusal: notConnectedRefusal(name, request.target, entries) };
  const lagging = replicaRefusal(name, entry, local, request);
  if (lagging !== null) return { refusal: lagging };
  trail.add(
    `replica ${name} listed as ${formatHostPort({ host: entry.ip, port: entry.port })}, online, ` +
      `${lagBytes(local, entry)} bytes and ${entry.lagS} s behind` +
      (request.force ? ' (forced: lag bounds not applied)' : ''),
    since,
  );

  since = nowMs();
  const probe = await probeServer(ctx.peer, deps.peerTimeoutMs);
  if (!probe.ok) return { refusal: `replica ${name} does not answer directly (${probe.detail})` };
  if (probe.clusterEnabled === true) {
    return { refusal: `replica ${name} is a Redis Cluster node (cluster_enabled:1): redis-ha does not manage Redis Cluster; use CLUSTER FAILOVER on that replica` };
  }
  const unfit = targetRefusal(name, probe.snapshot, local);
  if (unfit !== null) return { refusal: unfit };
  trail.add(`replica ${name} answers: ${describeSnapshot(probe.snapshot)}`, since);
  return { local, entry, method: chosen.method, modern: chosen.modern };
}

/** The `slaveN` entry of the target: same port, and the same address (resolved when a name). */
async function findTarget(ctx: SwitchoverContext, entries: readonly ReplicaEntry[]): Promise<ReplicaEntry | null> {
  const { target } = ctx.request;
  const candidates = entries.filter((e) => e.port === target.port);
  if (candidates.length === 0) return null;
  let addresses = [target.host];
  if (ipFamily(target.host) === 0) {
    try {
      addresses = (await lookup(target.host, { all: true })).map((a) => a.address);
    } catch (err) {
      ctx.trail.add(`cannot resolve ${target.host} (${describeError(err)})`);
      return null;
    }
  }
  return candidates.find((e) => addresses.some((a) => sameAddress(a, e.ip))) ?? null;
}
