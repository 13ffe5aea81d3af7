/**
 * The quorum adapter (issue 11): a group's leader key on etcd, bound to this node's
 * lease. See `etcd-quorum.ts` for the behaviour and `types.ts` for the interface.
 */
export { EtcdQuorum, DEFAULT_CALL_TIMEOUT_MS } from './etcd-quorum.js';
export { QuorumError } from './errors.js';
export { LEADER_RECORD_FORMAT, describeRecord, encodeLeaderRecord, parseLeaderRecord, type LeaderRecord, type ParsedRecord } from './record.js';
export { SERVED_RECORD_FORMAT, encodeServedRecord, parseServedRecord, type ServedRecord } from './served-record.js';
export type { EtcdQuorumOptions, HolderOutcome, LostReason, MarkOutcome, Quorum, QuorumEvent, QuorumMemory, QuorumOutcome, QuorumTls } from './types.js';
