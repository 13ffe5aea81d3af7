/**
 * What the control socket's requests mean. The socket adapter (`control-socket.ts`)
 * accepts connections and tells who is calling; this handler maps each command onto
 * the runtime and records it in the audit log with the caller, the outcome and the
 * duration. It never acts itself: `switchover`, `maintenance` and `failover` are queued to
 * the runtime loop as events and answered by the core's `reply`; `status` only reads.
 *
 * Commands:
 *   status                              anyone who can open the socket
 *   switchover { timeoutMs?, force? }   authorized callers only (root, the daemon's user,
 *   maintenance { on }                  members of control.group)
 *   failover { acceptDataLoss? }        (without acceptDataLoss: a dry run, nothing changes)
 *
 * The audit record (issue 10, item 5) always names the command, who asked (user, uid,
 * pid) and the outcome; the arguments are a bounded, flattened copy (`ARGS_LIMITS`,
 * with `argsCut` saying what was left out), so no request can blank a record or make
 * it large. What is recorded:
 *   - switchover, maintenance and failover from an authorized caller: every request;
 *   - status (read-only, anyone on the socket, polled by monitoring): summarised, one
 *     record per uid per `STATUS_AUDIT_INTERVAL_MS`, whose `calls` counts the requests it
 *     stands for (the first one, and those held back since the last record);
 *   - anything else from an unauthorized caller (refused, unknown or invalid): likewise,
 *     one record per uid per `REFUSED_AUDIT_INTERVAL_MS`, so a caller who may not
 *     change anything cannot fill the fsynced log either.
 * Requests held back after a uid's last record are not written (their count would go
 * in the next record of that uid); the daemon log has a debug line for each.
 */
import { randomBytes } from 'node:crypto';
import { ARGS_LIMITS, capString, flattenBounded } from '../audit/bound.js';
import { FAILOVER_REPLY_MS, MAINTENANCE_REPLY_MS, MAX_SWITCHOVER_TIMEOUT_MS, SWITCHOVER_REPLY_MARGIN_MS } from '../core/timing.js';
import { errorMessage } from '../errors.js';
import type { Caller, ControlHandler, ControlRequest } from '../adapters/control-socket.js';
import type { Logger } from '../logger.js';
import type { RequestEvent, RequestReply } from './runtime.js';
import type { StatusReport } from './status.js';

/** A uid's `status` calls are recorded at most once per this interval (the record counts them). */
export const STATUS_AUDIT_INTERVAL_MS = 10 * 60_000;
/** An unauthorized uid's other requests are recorded at most once per this interval. */
export const REFUSED_AUDIT_INTERVAL_MS = 60_000;
/** Longest command name and detail text in a record. */
const MAX_COMMAND_CHARS = 64;
const MAX_DETAIL_CHARS = 512;
/** Longest argument value quoted in an error reply. */
const MAX_SHOWN_ARG_CHARS = 100;
/** Most (uid, kind) pairs whose last record time is remembered. */
const MAX_SUMMARISED_CALLERS = 1024;

/** What the handler needs from the daemon. */
export interface ControlDeps {
  readonly nodeName: string;
  readonly defaultTimeoutMs: number;
  readonly request: (event: RequestEvent, waitMs: number) => Promise<RequestReply>;
  readonly status: () => Promise<StatusReport>;
  /** Hands the request's record to the core, which audits it; resolves once it is written. */
  readonly record: (record: Readonly<Record<string, unknown>>) => Promise<void>;
  readonly logger: Logger;
  /** Monotonic milliseconds, for durations and the summarising intervals; default `performance.now()`. */
  readonly now?: () => number;
}

/** The control socket's handler for this daemon. */
export function controlHandler(deps: ControlDeps): ControlHandler {
  const now = deps.now ?? (() => performance.now());
  const summary = new RecordSummary();
  return async (request, caller) => {
    const started = now();
    let reply: Record<string, unknown>;
    try {
      reply = await dispatch(deps, request, caller);
    } catch (error) {
      reply = { ok: false, outcome: 'error', error: errorMessage(error) };
    }
    const durationMs = Math.round(now() - started);
    const outcome = typeof reply.outcome === 'string' ? reply.outcome : reply.ok === true ? 'ok' : 'failed';
    const c = caller.credentials;
    const command = capString(request.command, MAX_COMMAND_CHARS);
    const log = { command, caller: caller.description, outcome, durationMs };
    const kind = request.command === 'status' ? 'status' : caller.authorized ? null : 'refused';
    const calls = kind === null ? null : summary.admit(`${kind}/${c?.uid ?? 'unknown'}`, started, kind === 'status' ? STATUS_AUDIT_INTERVAL_MS : REFUSED_AUDIT_INTERVAL_MS);
    if (calls === 0) {
      deps.logger.debug(log, 'control request (audit record held back)');
      return { ...reply, durationMs };
    }
    const args = flattenBounded(request.args, ARGS_LIMITS);
    const detail = typeof reply.detail === 'string' ? reply.detail : typeof reply.error === 'string' ? reply.error : null;
    await deps.record({
      command,
      args: args.value,
      ...(args.cut ? { argsCut: args.cut } : {}),
      user: c?.user ?? null,
      uid: c?.uid ?? null,
      pid: c?.pid ?? null,
      caller: caller.description,
      outcome,
      detail: detail === null ? null : capString(detail, MAX_DETAIL_CHARS),
      requestId: typeof reply.requestId === 'string' ? reply.requestId : null,
      durationMs,
      ...(calls === null ? {} : { calls }),
    });
    if (kind === 'status') deps.logger.debug(log, 'control request');
    else deps.logger.info(log, 'control request');
    return { ...reply, durationMs };
  };
}

/**
 * Which summarised requests get a record: the first of a key, then the first after each
 * interval, carrying the count of those held back in between.
 */
class RecordSummary {
  private readonly last = new Map<string, { at: number; held: number }>();

  /** The `calls` the record stands for, or 0 when this request is held back. */
  admit(key: string, now: number, intervalMs: number): number {
    const entry = this.last.get(key);
    if (entry && now - entry.at < intervalMs) {
      entry.held++;
      return 0;
    }
    this.last.delete(key);
    if (this.last.size >= MAX_SUMMARISED_CALLERS) {
      // Many callers at once: forget the oldest (its held count is lost, never a record).
      const oldest = this.last.keys().next();
      if (!oldest.done) this.last.delete(oldest.value);
    }
    this.last.set(key, { at: now, held: 0 });
    return (entry?.held ?? 0) + 1;
  }
}

async function dispatch(deps: ControlDeps, request: ControlRequest, caller: Caller): Promise<Record<string, unknown>> {
  switch (request.command) {
    case 'status':
      return { ok: true, status: await deps.status() };
    case 'switchover':
    case 'maintenance':
    case 'failover': {
      if (!caller.authorized) {
        return {
          ok: false,
          outcome: 'denied',
          error: `${caller.description} may not run ${request.command}: root, the daemon's user or a member of control.group only`,
        };
      }
      if (request.command === 'switchover') return switchover(deps, request.args, caller);
      return request.command === 'maintenance' ? maintenance(deps, request.args, caller) : failover(deps, request.args, caller);
    }
    default:
      return {
        ok: false,
        outcome: 'error',
        error: `unknown command ${JSON.stringify(capString(request.command, MAX_COMMAND_CHARS))} (status, switchover, maintenance, failover)`,
      };
  }
}

async function switchover(deps: ControlDeps, args: Readonly<Record<string, unknown>>, caller: Caller): Promise<Record<string, unknown>> {
  const timeoutMs = args.timeoutMs ?? deps.defaultTimeoutMs;
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_SWITCHOVER_TIMEOUT_MS) {
    return { ok: false, outcome: 'error', error: `timeoutMs: expected an integer 1..${MAX_SWITCHOVER_TIMEOUT_MS}, got ${shown(timeoutMs)}` };
  }
  const force = args.force ?? false;
  if (typeof force !== 'boolean') return { ok: false, outcome: 'error', error: `force: expected true or false, got ${shown(force)}` };
  const requestId = newRequestId(deps.nodeName);
  const user = userOf(caller);
  const reply = await deps.request(
    { type: 'switchover-requested', requestId, timeoutMs, force, user, origin: 'local' },
    timeoutMs + SWITCHOVER_REPLY_MARGIN_MS,
  );
  const outcome = reply.ok ? (force ? 'ok-forced' : 'ok') : typeof reply.data.outcome === 'string' ? reply.data.outcome : 'failed';
  return { ok: reply.ok, outcome, requestId, detail: reply.detail, force, ...reply.data };
}

async function maintenance(deps: ControlDeps, args: Readonly<Record<string, unknown>>, caller: Caller): Promise<Record<string, unknown>> {
  const on = args.on;
  if (typeof on !== 'boolean') return { ok: false, outcome: 'error', error: `on: expected true or false, got ${shown(on)}` };
  const requestId = newRequestId(deps.nodeName);
  const reply = await deps.request({ type: 'maintenance-requested', requestId, on, user: userOf(caller) }, MAINTENANCE_REPLY_MS);
  return { ok: reply.ok, requestId, detail: reply.detail, ...reply.data };
}

/**
 * `redis-ha failover`: the core answers at once (refused, or a dry run without
 * `acceptDataLoss`), or once the forced takeover has an outcome. The outcome recorded:
 * `taken-over`, `dry-run`, `refused`, `no-leader-key` or `failed`.
 */
async function failover(deps: ControlDeps, args: Readonly<Record<string, unknown>>, caller: Caller): Promise<Record<string, unknown>> {
  const acceptDataLoss = args.acceptDataLoss ?? false;
  if (typeof acceptDataLoss !== 'boolean') {
    return { ok: false, outcome: 'error', error: `acceptDataLoss: expected true or false, got ${shown(acceptDataLoss)}` };
  }
  const requestId = newRequestId(deps.nodeName);
  const reply = await deps.request(
    { type: 'failover-requested', requestId, user: userOf(caller), pid: caller.credentials?.pid ?? null, acceptDataLoss },
    FAILOVER_REPLY_MS,
  );
  const outcome = typeof reply.data.outcome === 'string' ? reply.data.outcome : reply.ok ? 'ok' : 'failed';
  return { ok: reply.ok, requestId, detail: reply.detail, acceptDataLoss, ...reply.data, outcome };
}

/** An argument as an error message quotes it: JSON, short, never throwing (deep nesting, BigInt). */
function shown(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    return capString(JSON.stringify(value) ?? String(value), MAX_SHOWN_ARG_CHARS);
  } catch {
    return Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : typeof value;
  }
}

function userOf(caller: Caller): string {
  const c = caller.credentials;
  return c ? `${c.user}(uid ${c.uid})` : 'unknown';
}

/** Unique enough to tell requests apart in the audit log and on the wire ([A-Za-z0-9._-], <= 64). */
export function newRequestId(nodeName: string): string {
  const safe = nodeName.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 32);
  return `${safe}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}
