/**
 * Fault handling for the etcd client, replacing `etcd3`'s defaults (quorum-facts.md): its
 * per-host circuit breaker blocks every call for 5 s after 3 failures, so a witness that
 * restarts or one lost etcd member would keep the quorum away for seconds after etcd is
 * back. Here:
 *  - global: one retry of a recoverable error (the pool then picks another host); every
 *    call carries its own absolute deadline, so the retry never outlives it;
 *  - per host: with a single endpoint nothing is blocked (there is no other host to try);
 *    with several, a host that failed `HOST_FAILURES_TO_SKIP` times in a row is skipped for
 *    `HOST_SKIP_MS`, so calls go to the live members without first timing out on a dead one.
 *
 * Written against `etcd3`'s policy interface (cockatiel's `IPolicy`) without importing
 * cockatiel: it is `etcd3`'s dependency, not ours.
 */
import { isRecoverableError, type IOptions } from 'etcd3';

type FaultHandling = NonNullable<IOptions['faultHandling']>;
/** The policy type `etcd3` accepts. */
export type FaultPolicy = NonNullable<FaultHandling['global']>;

/** Consecutive failures after which a host is skipped (with more than one endpoint). */
export const HOST_FAILURES_TO_SKIP = 2;
/** How long a failing host is skipped: shorter than a lease renewal interval matters. */
export const HOST_SKIP_MS = 500;
/** Attempts of one call through the global policy (1 retry). */
export const CALL_ATTEMPTS = 2;

/** Thrown instead of calling a skipped host; the pool then tries the next one. */
export class HostSkippedError extends Error {
  constructor(host: string) {
    super(`etcd host ${host} skipped after ${HOST_FAILURES_TO_SKIP} failures in a row`);
  }
}

const noListeners = (): { dispose(): void } => ({ dispose: () => undefined });

function policy(execute: FaultPolicy['execute']): FaultPolicy {
  return {
    // A type-only member of cockatiel's interface; never read.
    _altReturn: undefined as never,
    onSuccess: noListeners,
    onFailure: noListeners,
    execute,
  };
}

/** Retries a recoverable failure once. */
function retryOnce(): FaultPolicy {
  return policy(async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) => {
    const context = { signal: signal ?? new AbortController().signal };
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(context);
      } catch (error) {
        if (attempt >= CALL_ATTEMPTS || !(error instanceof Error) || !isRecoverableError(error)) throw error;
      }
    }
  });
}

/** Skips a host for `HOST_SKIP_MS` after `HOST_FAILURES_TO_SKIP` recoverable failures in a row. */
function skipFailingHost(host: string, now: () => number): FaultPolicy {
  let failures = 0;
  let skipUntil = -Infinity;
  return policy(async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) => {
    if (now() < skipUntil) throw new HostSkippedError(host);
    try {
      const result = await fn({ signal: signal ?? new AbortController().signal });
      failures = 0;
      return result;
    } catch (error) {
      if (error instanceof Error && isRecoverableError(error) && ++failures >= HOST_FAILURES_TO_SKIP) {
        failures = 0;
        skipUntil = now() + HOST_SKIP_MS;
      }
      throw error;
    }
  });
}

function passThrough(): FaultPolicy {
  return policy(async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) =>
    fn({ signal: signal ?? new AbortController().signal }),
  );
}

/** The `faultHandling` option for a client of `endpointCount` endpoints. */
export function faultHandling(endpointCount: number, now: () => number): FaultHandling {
  return {
    global: retryOnce(),
    host: (host: string) => (endpointCount > 1 ? skipFailingHost(host, now) : passThrough()),
  };
}
