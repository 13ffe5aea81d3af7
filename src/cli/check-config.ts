/**
 * `redis-ha check-config`: every problem on its own line (key, expected form, value
 * given) and exit 78, or a summary (with the quorum mode and each fault's worst case) plus
 * the computed takeover times and exit 0 (with a warning when the VIP lies in none of its
 * interface's subnets). A timing rule broken (the takeover invariants, the quorum's lease
 * and fence rule) is printed as `error:` and exits 78, as `run` would refuse to start.
 *
 * It also asks the local and the peer's Redis, once each and bounded (issue 14), whether
 * they are Redis Cluster nodes: one is an `error:` (what was found, why redis-ha does not
 * manage it, what to use instead) and exit 78, as `run` refuses it; a mode that cannot be
 * read is a `warning:`; a Redis that does not answer (not started yet) only a `note:`.
 */
import { run } from '../adapters/exec.js';
import { clusterRefusalLines, RedisControl } from '../adapters/redis/index.js';
import { checkConfig, vipSubnetNotes } from '../config/check.js';
import { timingReportOf } from '../config/derived.js';
import { EXIT_CONFIG } from '../errors.js';

/** Prints the report; returns the exit status. */
export async function checkConfigCommand(path: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const result = checkConfig(path, env);
  if (!result.ok) {
    process.stderr.write(`redis-ha: configuration ${path} has ${result.problems.length} problem(s):\n`);
    for (const p of result.problems) process.stderr.write(`  ${p}\n`);
    return EXIT_CONFIG;
  }
  // The rules `run` enforces at start-up: the takeover invariants and, with etcd, the quorum's lease and fence rule.
  const timing = timingReportOf(result.config);
  const lines = [...result.lines];
  const e = timing.estimate;
  lines.push(`worst-case takeover by this node: Redis failure on the peer ${Math.round(e.redisFailureMs)} ms ` +
    `(${Math.round(e.redisCrashMs)} ms when its process dies), peer host loss ${Math.round(e.hostLossMs)} ms, peer stopped cleanly ${Math.round(e.resignMs)} ms`);
  for (const w of timing.warnings) lines.push(`warning: ${w}`);
  const config = result.config;
  const [subnetNotes, cluster] = await Promise.all([
    vipSubnetNotes(config, (args) => run('ip', args)),
    RedisControl.clusterModes({ local: config.redis, peer: config.peerRedis, health: config.health, promotion: config.promotion }),
  ]);
  lines.push(...subnetNotes, ...cluster.standalone);
  for (const w of cluster.warnings) lines.push(`warning: ${w}`);
  for (const n of cluster.notes) lines.push(`note: ${n}`);
  for (const err of timing.errors) lines.push(`error: ${err}`);
  if (cluster.refusals.length > 0) {
    const headlines = new Set(cluster.refusals);
    for (const line of clusterRefusalLines(cluster.refusals)) lines.push(headlines.has(line) ? `error: ${line}` : `  ${line}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return timing.errors.length > 0 || cluster.refusals.length > 0 ? EXIT_CONFIG : 0;
}
