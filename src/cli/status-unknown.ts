/**
 * The status document when no daemon answers (`redis-ha status` exit 3, UNKNOWN): the
 * shape of the daemon's report (`StatusReport`, `src/daemon/status.ts`) with every field
 * present, `null` for what only a daemon knows. A monitoring check parsing `--json` then
 * reads the same fields whatever the outcome. The type is derived from `StatusReport`, so
 * a field added there is a compile error here until it is added below.
 */
import { STATUS_VERSION, type StatusReport } from '../daemon/status.js';

/** The fields known without a daemon: the document version, the verdict and the reason. */
type KnownWithoutDaemon = 'version' | 'verdict' | 'problems';

/** `StatusReport` with verdict `unknown` and every other field `null`. */
export type UnknownStatusReport = {
  readonly version: number;
  readonly verdict: 'unknown';
  readonly problems: readonly string[];
} & { readonly [K in Exclude<keyof StatusReport, KnownWithoutDaemon>]: null };

/** The UNKNOWN document for `problem` (why no status could be had), fields in the daemon report's order. */
export function unknownStatus(problem: string): UnknownStatusReport {
  return {
    version: STATUS_VERSION,
    node: null,
    lastTransition: null,
    maintenance: null,
    switchover: null,
    forcedFailover: null,
    redis: null,
    peer: null,
    replication: null,
    takeover: null,
    adverts: null,
    quorum: null,
    whyNotMaster: null,
    verdict: 'unknown',
    problems: [problem],
  };
}

/** The verdict line of the readable form, as `formatStatus` starts a report: `UNKNOWN: <reason>`. */
export function formatUnknown(doc: UnknownStatusReport): string {
  return `UNKNOWN: ${doc.problems.join('; ')}`;
}
