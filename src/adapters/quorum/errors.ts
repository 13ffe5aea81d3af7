/**
 * What can go wrong talking to etcd, folded into the few outcomes the core reasons
 * about: the lease is gone (`lease-lost`) or etcd could not give an answer in time or
 * refused the call (`unreachable`). Bad options are a `QuorumError` thrown at `open()`.
 */
import { EtcdLeaseInvalidError } from 'etcd3';
import { errorMessage, RedisHaError } from '../../errors.js';

/** The quorum adapter was given options it cannot work with (a caller or configuration bug). */
export class QuorumError extends RedisHaError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { recoverable: false, ...options });
  }
}

/** A failed etcd call, mapped. */
export type CallFailure =
  | { readonly type: 'lease-lost'; readonly reason: string }
  | { readonly type: 'unreachable'; readonly reason: string };

/** Maps anything an etcd call threw; `what` names the call for the reason. */
export function callFailure(what: string, error: unknown): CallFailure {
  if (error instanceof EtcdLeaseInvalidError) return { type: 'lease-lost', reason: `${what}: etcd says the lease is gone` };
  const name = error instanceof Error ? error.constructor.name : 'Error';
  return { type: 'unreachable', reason: `${what}: ${name}: ${errorMessage(error)}` };
}
