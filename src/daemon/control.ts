/**
 * What the control socket's requests mean. The socket adapter (`control-socket.ts`)
 * accepts connections and tells who is calling; this handler maps each command onto
 * the runtime and records it in the audit log with the caller, the outcome and the
 * duration. It never acts itself: `switchover` and `maintenance` are queued to the
 * runtime loop as events and answered by the core's `reply`; `status` only reads.
 *
 * Commands:
 *   status                              anyone who can open the socket
 *   switchover { timeoutMs?, force? }   authorized callers only (root, the daemon's user,
 *   maintenance { on }                  members of control.group)
 */
import { randomBytes } from 'node:crypto';
import { MAINTENANCE_REPLY_MS, MAX_SWITCHOVER_TIMEOUT_MS, SWITCHOVER_REPLY_MARGIN_MS } from '../core/timing.js';
import { errorMessage } from '../errors.js';
import type { Caller, ControlHandler, ControlRequest } from '../adapters/control-socket.js';
import type { Logger } from '../logger.js';
import type { RequestEvent, RequestReply } from './runtime.js';
import type { StatusReport } from './status.js';


export interface ControlDeps {
  readonly nodeName: string;
  readonly defaultTimeoutMs: number;
  readonly request: (event: RequestEvent, waitMs: number) => Promise<RequestReply>;
  readonly status: () => Promise<StatusReport>;
  /** Hands the request's record to the core, which audits it; resolves once it is written. */
  readonly record: (record: Readonly<Record<string, unknown>>) => Promise<void>;
  readonly logger: Logger;
}

/** The control socket's handler for this daemon. */
export function controlHandler(deps: ControlDeps): ControlHandler {
  return async (request, caller) => {
    const started = performance.now();
    let reply: Record<string, unknown>;
    try {
      reply = await dispatch(deps, request, caller);
    } catch (error) {
      reply = { ok: false, outcome: 'error', error: errorMessage(error) };
    }
    const durationMs = Math.round(performance.now() - started);
    const outcome = typeof reply.outcome === 'string' ? reply.outcome : reply.ok === true ? 'ok' : 'failed';
    const c = caller.credentials;
    await deps.record({
      command: request.command,
      args: request.args,
      user: c?.user ?? null,
      uid: c?.uid ?? null,
      pid: c?.pid ?? null,
      caller: caller.description,
      outcome,
      detail: typeof reply.detail === 'string' ? reply.detail : typeof reply.error === 'string' ? reply.error : null,
      requestId: typeof reply.requestId === 'string' ? reply.requestId : null,
      durationMs,
    });
    deps.logger.info({ command: request.command, caller: caller.description, outcome, durationMs }, 'control request');
    return { ...reply, durationMs };
  };
}

async function dispatch(deps: ControlDeps, request: ControlRequest, caller: Caller): Promise<Record<string, unknown>> {
  switch (request.command) {
    case 'status':
      return { ok: true, status: await deps.status() };
    case 'switchover':
    case 'maintenance': {
      if (!caller.authorized) {
        return {
          ok: false,
          outcome: 'denied',
          error: `${caller.description} may not run ${request.command}: root, the daemon's user or a member of control.group only`,
        };
      }
      return request.command === 'switchover' ? switchover(deps, request.args, caller) : maintenance(deps, request.args, caller);
    }
    default:
      return { ok: false, outcome: 'error', error: `unknown command ${JSON.stringify(request.command)} (status, switchover, maintenance)` };
  }
}

async function switchover(deps: ControlDeps, args: Readonly<Record<string, unknown>>, caller: Caller): Promise<Record<string, unknown>> {
  const timeoutMs = args.timeoutMs ?? deps.defaultTimeoutMs;
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_SWITCHOVER_TIMEOUT_MS) {
    return { ok: false, outcome: 'error', error: `timeoutMs: expected an integer 1..${MAX_SWITCHOVER_TIMEOUT_MS}, got ${JSON.stringify(timeoutMs)}` };
  }
  const force = args.force ?? false;
  if (typeof force !== 'boolean') return { ok: false, outcome: 'error', error: `force: expected true or false, got ${JSON.stringify(force)}` };
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
  if (typeof on !== 'boolean') return { ok: false, outcome: 'error', error: `on: expected true or false, got ${JSON.stringify(on)}` };
  const requestId = newRequestId(deps.nodeName);
  const reply = await deps.request({ type: 'maintenance-requested', requestId, on, user: userOf(caller) }, MAINTENANCE_REPLY_MS);
  return { ok: reply.ok, requestId, detail: reply.detail, ...reply.data };
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
