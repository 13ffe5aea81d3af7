/**
 * Builds the `etcd3` client the quorum adapter uses, with what the library leaves out
 * (quorum-facts.md):
 *  - a deadline on every unary call (`etcd3` sets none: a frozen etcd hangs a call for the
 *    whole freeze). Callers pass their own absolute deadline; the default here is the
 *    safety net for calls made inside the library (the auth token exchange);
 *  - gRPC keepalive pings every `GRPC_KEEPALIVE_TIME_MS`, answered within
 *    `GRPC_KEEPALIVE_TIMEOUT_MS`, also without calls in flight, so a dead or frozen
 *    connection is closed. Not faster than etcd's default `--grpc-keepalive-min-time`
 *    (5 s): a server answers pings that come faster with GOAWAY. The adapter does not rely on
 *    these pings for safety (its own deadlines do), only to drop a silent connection;
 *  - reconnect backoff capped at `GRPC_MAX_RECONNECT_BACKOFF_MS` (gRPC's default grows to
 *    120 s, which would keep a node away from a witness long after it is back);
 *  - the fault handling of `fault-policy.ts` instead of the 5 s circuit breaker.
 */
import { readFile } from 'node:fs/promises';
import { Etcd3, type IOptions } from 'etcd3';
import { errorMessage } from '../../errors.js';
import { QuorumError } from './errors.js';
import { faultHandling } from './fault-policy.js';
import type { EtcdQuorumOptions } from './types.js';

export const GRPC_KEEPALIVE_TIME_MS = 5_000;
export const GRPC_KEEPALIVE_TIMEOUT_MS = 2_000;
export const GRPC_INITIAL_RECONNECT_BACKOFF_MS = 100;
export const GRPC_MAX_RECONNECT_BACKOFF_MS = 1_000;
/** How long connecting may take before a call fails. */
export const DIAL_TIMEOUT_MS = 2_000;

const ENDPOINT = /^(https?):\/\/[^/\s]+$/;

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new QuorumError('QUORUM_TLS_UNREADABLE', `cannot read the etcd ${what} ${path}: ${errorMessage(error)}`, { cause: error });
  }
}

async function credentials(options: EtcdQuorumOptions): Promise<IOptions['credentials']> {
  const tls = options.tls;
  if (tls === undefined || tls === null) return undefined;
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new QuorumError('QUORUM_TLS_INCOMPLETE', 'etcd TLS: a client certificate needs its key and a key its certificate');
  }
  return {
    rootCertificate: await readPem(tls.caFile, 'CA file'),
    ...(tls.certFile !== undefined ? { certChain: await readPem(tls.certFile, 'client certificate') } : {}),
    ...(tls.keyFile !== undefined ? { privateKey: await readPem(tls.keyFile, 'client key') } : {}),
  };
}

/** Checks the endpoints: at least one, each `http(s)://host:port`, all of one scheme, TLS only with https. */
export function endpointProblem(endpoints: readonly string[], tls: boolean): string | null {
  if (endpoints.length === 0) return 'no etcd endpoints';
  const schemes = new Set<string>();
  for (const endpoint of endpoints) {
    const match = ENDPOINT.exec(endpoint);
    if (match === null) return `etcd endpoint ${JSON.stringify(endpoint)} is not http(s)://host:port`;
    schemes.add(match[1] ?? '');
  }
  if (schemes.size > 1) return 'etcd endpoints mix http:// and https://';
  if (tls && schemes.has('http')) return 'etcd TLS is configured but the endpoints are http://';
  return null;
}

/** A client for `options`; reads the TLS files. Throws `QuorumError` for unusable options. */
export async function createEtcdClient(options: EtcdQuorumOptions, callTimeoutMs: number, now: () => number): Promise<Etcd3> {
  const tls = options.tls !== undefined && options.tls !== null;
  const problem = endpointProblem(options.endpoints, tls);
  if (problem !== null) throw new QuorumError('QUORUM_ENDPOINTS_INVALID', problem);
  const deadline = (): { deadline: number } => ({ deadline: Date.now() + callTimeoutMs });
  const creds = await credentials(options);
  return new Etcd3({
    hosts: [...options.endpoints],
    ...(creds !== undefined ? { credentials: creds } : {}),
    ...(options.auth !== undefined && options.auth !== null
      ? { auth: { username: options.auth.username, password: options.auth.password, callOptions: deadline } }
      : {}),
    dialTimeout: DIAL_TIMEOUT_MS,
    // gRPC deadlines are wall-clock dates; the monotonic clock only drives our own timers.
    defaultCallOptions: (context) => (context.isStream ? {} : deadline()),
    grpcOptions: {
      'grpc.keepalive_time_ms': GRPC_KEEPALIVE_TIME_MS,
      'grpc.keepalive_timeout_ms': GRPC_KEEPALIVE_TIMEOUT_MS,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': GRPC_INITIAL_RECONNECT_BACKOFF_MS,
      'grpc.max_reconnect_backoff_ms': GRPC_MAX_RECONNECT_BACKOFF_MS,
    },
    faultHandling: faultHandling(options.endpoints.length, now),
  });
}
