/**
 * `redis-ha failover [--accept-data-loss] [--json]`, run on the node that should become
 * master: the operator takes over past an automatic takeover that is held back (replication
 * lag, the recovery block, `prefer: safety`, the data guard), like Patroni's
 * `patronictl failover --force` or Sentinel's `SENTINEL FAILOVER`.
 *
 * Without `--accept-data-loss` nothing changes: the daemon says what a forced takeover
 * would do and what holds the automatic one back now. With it, the daemon takes over at
 * once, past those holds, never past the leader key (`quorum.backend: etcd`), the state
 * file or a healthy master (that is `redis-ha switchover`). The core decides and answers
 * (`src/core/forced-failover.ts`); this file only asks and prints.
 *
 * Exit status, as the other control commands: 0 this node took over; 1 refused, failed,
 * not run (no `--accept-data-loss`: nothing changed) or no daemon answering; 64 an unknown
 * option (commander's usage error, `main.ts`). `--json` carries the `outcome`:
 * `taken-over`, `dry-run`, `refused`, `no-leader-key`, `failed`.
 */
import { sendControlRequest } from '../adapters/control-socket.js';
import { FAILOVER_REPLY_MS } from '../core/timing.js';
import { errorMessage } from '../errors.js';
import { processIo, resolveSocket, type CliIo, type SocketOptions } from './control.js';

/** The CLI waits this much longer than the daemon waits for the core's answer. */
const CLIENT_MARGIN_MS = 30_000;

/** `redis-ha failover`; returns the exit status. */
export async function failoverCommand(
  opts: SocketOptions & { acceptDataLoss?: boolean; json?: boolean },
  io: CliIo = processIo,
): Promise<number> {
  const acceptDataLoss = opts.acceptDataLoss === true;
  const path = resolveSocket(opts);
  if (acceptDataLoss && opts.json !== true) io.stderr('forced failover requested (data loss accepted); waiting for the daemon...\n');
  let reply: Record<string, unknown>;
  try {
    reply = await sendControlRequest(path, { command: 'failover', args: { acceptDataLoss } }, FAILOVER_REPLY_MS + CLIENT_MARGIN_MS);
  } catch (error) {
    io.stderr(`redis-ha: ${errorMessage(error)}\n`);
    return 1;
  }
  if (opts.json === true) io.stdout(`${JSON.stringify(reply)}\n`);
  else print(reply, io);
  return reply.ok === true ? 0 : 1;
}

function print(reply: Record<string, unknown>, io: CliIo): void {
  const detail = text(reply.detail ?? reply.error ?? 'no detail');
  const took = typeof reply.durationMs === 'number' ? ` in ${reply.durationMs} ms` : '';
  switch (reply.outcome) {
    case 'taken-over': {
      const overrode = typeof reply.overrode === 'string' ? `\n  overrode: ${reply.overrode}` : '';
      io.stdout(`failover done: ${detail}${took}${overrode}\n`);
      return;
    }
    case 'dry-run':
      io.stdout([
        'failover NOT RUN: nothing changed (no --accept-data-loss)',
        `  held back now: ${typeof reply.heldBy === 'string' ? reply.heldBy : 'nothing holds an automatic takeover back'}`,
        `  a forced takeover would: ${text(reply.wouldDo ?? '?')}`,
        '  run `redis-ha failover --accept-data-loss` on this node to take over anyway',
      ].join('\n') + '\n');
      return;
    case 'refused':
      io.stdout(`failover REFUSED: ${detail}\n`);
      return;
    case 'denied':
    case 'error':
      io.stderr(`redis-ha: failover: ${detail}\n`);
      return;
    default:
      io.stdout(`failover FAILED: ${detail}${took}\n`);
  }
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
