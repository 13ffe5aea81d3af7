/**
 * The operator commands that talk to the running daemon over its control socket:
 * `status [--json]`, `switchover [--timeout MS] [--force]` and `maintenance on|off`
 * (`failover` is in failover.ts).
 *
 * The socket path comes from `--socket`, else `REDIS_HA_CONTROL_SOCKET`, else
 * `control.socket` in the configuration file, else the default. Only that one key is
 * read from the file (without validating the rest or reading the key files), so an
 * operator in the control group can run these without access to the secrets.
 *
 * Exit status of `status` follows the Nagios plugin convention so it can be used as a
 * monitoring check: 0 ok, 1 warning, 2 critical, 3 unknown (daemon not reachable); the
 * verdict line is on stdout in every case, and `--json` has the same fields for UNKNOWN
 * (`status-unknown.ts`).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { sendControlRequest } from '../adapters/control-socket.js';
import { MAX_SWITCHOVER_TIMEOUT_MS } from '../core/timing.js';
import { VERDICT_EXIT, type StatusReport } from '../daemon/status.js';
import { formatStatus } from './status-format.js';
import { formatUnknown, unknownStatus } from './status-unknown.js';
import { errorMessage } from '../errors.js';

/** Where the daemon listens unless told otherwise (the schema's default). */
export const DEFAULT_SOCKET = '/run/redis-ha/control.sock';
const STATUS_TIMEOUT_MS = 10_000;
/** After `maintenance on|off`: how long to wait for the peer's advert to show the same flag. */
const PEER_CONFIRM_MS = 5_000;
const PEER_CONFIRM_POLL_MS = 250;

export interface SocketOptions {
  readonly config: string;
  readonly socket?: string;
}

/** Output sinks, injectable for tests. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** The process's own stdout and stderr. */
export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/** The control socket path for these options (see the file header). */
export function resolveSocket(opts: SocketOptions, env: NodeJS.ProcessEnv = process.env): string {
  if (opts.socket !== undefined && opts.socket !== '') return opts.socket;
  const fromEnv = env.REDIS_HA_CONTROL_SOCKET;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  try {
    const doc: unknown = parse(readFileSync(opts.config, 'utf8'));
    const control = (doc as { control?: { socket?: unknown } } | null)?.control;
    if (typeof control?.socket === 'string' && control.socket !== '') return control.socket;
  } catch {
    // Unreadable or invalid file: the daemon would not run with it either; use the default.
  }
  return DEFAULT_SOCKET;
}

/** `redis-ha status`; returns the exit status. */
export async function statusCommand(opts: SocketOptions & { json?: boolean }, io: CliIo = processIo): Promise<number> {
  const path = resolveSocket(opts);
  let report: StatusReport;
  try {
    report = await fetchStatus(path);
  } catch (error) {
    // A monitoring check reads its verdict from stdout, UNKNOWN included (Nagios plugin guidelines).
    const doc = unknownStatus(errorMessage(error));
    io.stdout(opts.json === true ? `${JSON.stringify(doc, null, 2)}\n` : `${formatUnknown(doc)}\n`);
    return VERDICT_EXIT.unknown;
  }
  io.stdout(opts.json === true ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report)}\n`);
  return VERDICT_EXIT[report.verdict];
}

/** `redis-ha switchover`; exit 0 when the peer is master afterwards, 1 otherwise. */
export async function switchoverCommand(
  opts: SocketOptions & { timeout?: string; force?: boolean; json?: boolean },
  io: CliIo = processIo,
): Promise<number> {
  const args: Record<string, unknown> = { force: opts.force === true };
  if (opts.timeout !== undefined) {
    const t = Number(opts.timeout);
    if (!Number.isInteger(t) || t < 1 || t > MAX_SWITCHOVER_TIMEOUT_MS) {
      io.stderr(`redis-ha: --timeout: expected an integer number of milliseconds 1..${MAX_SWITCHOVER_TIMEOUT_MS}, got ${JSON.stringify(opts.timeout)}\n`);
      return 64;
    }
    args.timeoutMs = t;
  }
  const path = resolveSocket(opts);
  const waitMs = (typeof args.timeoutMs === 'number' ? args.timeoutMs : 600_000) + 90_000;
  if (opts.json !== true) io.stderr(`switchover requested${opts.force === true ? ' (FORCED)' : ''}; waiting for the daemons...\n`);
  try {
    const reply = await sendControlRequest(path, { command: 'switchover', args }, waitMs);
    if (opts.json === true) io.stdout(`${JSON.stringify(reply)}\n`);
    else io.stdout(`${reply.ok === true ? 'switchover done' : 'switchover FAILED'}: ${String(reply.detail ?? reply.error ?? '')}` +
      `${typeof reply.pausedMs === 'number' ? ` (writes paused ${reply.pausedMs} ms)` : ''}` +
      `${typeof reply.durationMs === 'number' ? ` in ${reply.durationMs} ms` : ''}\n`);
    return reply.ok === true ? 0 : 1;
  } catch (error) {
    io.stderr(`redis-ha: ${errorMessage(error)}\n`);
    return 1;
  }
}

/** `redis-ha maintenance on|off`; waits (bounded) for the peer to show the same flag. */
export async function maintenanceCommand(mode: string, opts: SocketOptions, io: CliIo = processIo): Promise<number> {
  if (mode !== 'on' && mode !== 'off') {
    io.stderr(`redis-ha: maintenance: expected on or off, got ${JSON.stringify(mode)}\n`);
    return 64;
  }
  const on = mode === 'on';
  const path = resolveSocket(opts);
  try {
    const reply = await sendControlRequest(path, { command: 'maintenance', args: { on } }, STATUS_TIMEOUT_MS);
    if (reply.ok !== true) {
      io.stderr(`redis-ha: maintenance ${mode} failed: ${String(reply.error ?? reply.detail ?? 'no detail')}\n`);
      return 1;
    }
    io.stdout(`maintenance ${mode} on this node${on ? ': automatic failover is frozen on both nodes once the peer adopts it' : ''}\n`);
    const peer = await waitForPeer(path, on);
    io.stdout(peer.confirmed ? `peer ${peer.name} confirmed maintenance ${mode}\n` : `peer has not confirmed yet (${peer.detail}); it adopts the flag from the next advert it receives\n`);
    return 0;
  } catch (error) {
    io.stderr(`redis-ha: ${errorMessage(error)}\n`);
    return 1;
  }
}

async function waitForPeer(path: string, on: boolean): Promise<{ confirmed: boolean; name: string; detail: string }> {
  const deadline = Date.now() + PEER_CONFIRM_MS;
  let detail = 'no peer heard';
  for (let i = 0; i < PEER_CONFIRM_MS / PEER_CONFIRM_POLL_MS + 1 && Date.now() < deadline; i++) {
    const report = await fetchStatus(path);
    const peer = report.peer;
    if (peer !== null) {
      if (peer.live && peer.maintenance === on) return { confirmed: true, name: peer.name, detail: '' };
      detail = peer.live ? `peer ${peer.name} still shows maintenance ${peer.maintenance ? 'on' : 'off'}` : `peer ${peer.name} is silent`;
    }
    await new Promise((resolve) => setTimeout(resolve, PEER_CONFIRM_POLL_MS));
  }
  return { confirmed: false, name: '', detail };
}

async function fetchStatus(path: string): Promise<StatusReport> {
  const reply = await sendControlRequest(path, { command: 'status', args: {} }, STATUS_TIMEOUT_MS);
  if (reply.ok !== true || typeof reply.status !== 'object' || reply.status === null) {
    throw new Error(`the daemon refused the status request: ${String(reply.error ?? 'no detail')}`);
  }
  return reply.status as StatusReport;
}

