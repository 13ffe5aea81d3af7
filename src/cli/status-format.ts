/**
 * The readable form of `redis-ha status`: a verdict line, then one short table per
 * side (this node, its Redis, the peer), then the facts an operator needs before a
 * switchover (lag, maintenance, last transition, takeover times). `--json` prints the
 * report itself instead (`src/daemon/status.ts`).
 */
import type { StatusReport } from '../daemon/status.js';

export function formatStatus(r: StatusReport): string {
  const lines: string[] = [];
  lines.push(`${r.verdict.toUpperCase()}${r.problems.length > 0 ? `: ${r.problems.join('; ')}` : ': pair healthy'}`);
  lines.push('');
  const n = r.node;
  const vip = n.holdsVip === null ? 'unknown' : n.holdsVip ? 'held here' : 'not here';
  const rows: [string, string][] = [
    ['node', `${n.name} (${n.address})`],
    ['state', `${n.state}  epoch ${n.epoch}  priority ${n.priority.effective}${n.priority.effective !== n.priority.configured ? ` (configured ${n.priority.configured})` : ''}`],
    ['VIP', `${n.vip}: ${vip}`],
    ['last transition', `${r.lastTransition.state} at ${r.lastTransition.at} (${ago(r.lastTransition.agoMs)} ago): ${r.lastTransition.reason}`],
    ['maintenance', r.maintenance.on
      ? `ON (gen ${r.maintenance.gen})${r.maintenance.heldBack ? `; held back since ${r.maintenance.heldSince}: ${r.maintenance.heldBack}` : ''}`
      : 'off'],
  ];
  if (r.switchover) rows.push(['switchover', `${r.switchover.requestId} ${r.switchover.phase} for ${ago(r.switchover.runningMs)} (by ${r.switchover.user})`]);
  const forced = r.forcedFailover;
  if (forced) {
    rows.push(['forced failover', `${forced.requestId} running for ${ago(forced.runningMs)} (by ${forced.user})` +
      `${forced.overrode === null ? '' : `, overriding: ${forced.overrode}`}`]);
  }
  const red = r.redis;
  const health = red.clusterEnabled ? 'REFUSED (a Redis Cluster node)' : red.healthy === null ? 'not checked yet' : red.healthy ? 'healthy' : 'FAILING';
  rows.push(['local Redis', `${health}, ${red.role}${red.master ? ` of ${red.master}, link ${red.linkUp ? 'up' : 'DOWN'}` : ''}` +
    `${red.connectedReplicas !== null ? `, ${red.connectedReplicas} replica(s)` : ''}`]);
  rows.push(['  replication', `offset ${red.offset ?? '?'}, replid ${short(red.replId)}${red.replId2 ? `, replid2 ${short(red.replId2)}` : ''}`]);
  rows.push(['  last check', `${red.checkedAgoMs === null ? 'never' : `${ago(red.checkedAgoMs)} ago`}: ${red.detail}`]);
  const p = r.peer;
  if (p === null) {
    rows.push(['peer', 'never heard']);
  } else {
    rows.push(['peer', `${p.name} (${p.address}) ${p.state}${p.fault ? ' FAULT' : ''}  epoch ${p.epoch}  priority ${p.priority}` +
      `${p.maintenance ? '  maintenance' : ''}`]);
    rows.push(['  last advert', `${ago(p.lastAdvertAgoMs)} ago${p.live ? '' : ' (SILENT: past its master-down interval)'}`]);
    rows.push(['  peer Redis', `${p.redis.role}, offset ${p.redis.offset}, replid ${short(p.redis.replId)}`]);
  }
  rows.push(['replication lag', r.replication.lagBytes === null ? 'n/a' : `${r.replication.lagBytes} bytes (switchover bound ${r.replication.maxLagBytes})`]);
  rows.push(...quorumRows(r));
  if (r.whyNotMaster !== null) rows.push(['not master', r.whyNotMaster]);
  rows.push(['takeover (worst)', `Redis failure ${r.takeover.redisFailureMs} ms (dead process ${r.takeover.redisCrashMs} ms), host loss ${r.takeover.hostLossMs} ms, planned stop ${r.takeover.resignMs} ms`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) lines.push(`${k.padEnd(width)}  ${v}`);
  return lines.join('\n');
}

function quorumRows(r: StatusReport): [string, string][] {
  const q = r.quorum;
  if (q.backend === 'none') {
    return [['quorum', `none, prefer ${q.prefer}${q.prefer === 'availability' ? ' (a partition can leave two masters)' : ''}`]];
  }
  const key = q.held
    ? `held here (epoch ${q.epoch ?? '?'}), lease valid ${ago(Math.max(0, q.validForMs ?? 0))} more`
    : q.holder !== null ? `held by ${q.holder.node} (epoch ${q.holder.epoch})` : 'not held here';
  const rows: [string, string][] = [['quorum', `etcd; leader key ${key}`]];
  if (q.failsafeForMs !== null) rows.push(['  failsafe', `serving without the key for ${ago(q.failsafeForMs)} (etcd unreachable, peer heard)`]);
  if (q.lastAnswer !== null) rows.push(['  last answer', `${q.lastAnswer.what} ${ago(q.lastAnswer.agoMs)} ago: ${q.lastAnswer.detail}`]);
  if (q.fence !== null) rows.push(['  Redis fence', `writes ${q.fence.writes}${q.fence.ok === false ? ' NOT APPLIED' : ''}: ${q.fence.detail}`]);
  if (q.relaxMark !== null) {
    rows.push(['  relaxed mark', q.relaxMark.state === 'marked'
      ? `marked (epoch ${q.relaxMark.epoch}): writes may go on without a replica`
      : `${q.relaxMark.state} (epoch ${q.relaxMark.epoch}): writes only while a replica acknowledges`]);
  }
  const m = q.memory;
  if (m !== null && m.last !== null) rows.push(['  last served', `${m.last.node} (epoch ${m.last.epoch}, replication id ${short(m.last.replId)})`]);
  if (m !== null && m.relaxed !== null) rows.push(['  relaxed in etcd', `${m.relaxed.node} (epoch ${m.relaxed.epoch})`]);
  if (q.fenceRequired !== null) rows.push(['  takeover', `only through the old master's Redis, caught up with and fenced: ${q.fenceRequired}`]);
  return rows;
}

function short(id: string | null): string {
  return id ? id.slice(0, 12) : '-';
}

function ago(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
