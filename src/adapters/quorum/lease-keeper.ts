/**
 * One etcd lease and its keepalive, with the holder's own deadline (quorum-facts.md: the
 * library's `Lease` drops the granted TTL and its events can arrive after the lease is
 * already gone, so it is not used).
 *
 *   validUntil = send time of the last acknowledged keepalive (or of the grant) + granted TTL
 *
 * on the injected monotonic clock. etcd starts a lease's TTL afresh when it *receives* a
 * keepalive, which is after we sent it, so etcd cannot expire the lease before
 * `validUntil` (clock rates being equal; the bound on their difference is the core's). The
 * granted TTL is read from each grant and keepalive response: etcd may grant more than asked.
 *
 * One keepalive is in flight at a time on one stream. A keepalive not answered within
 * one renew interval has its stream cancelled; the next tick opens a new one (maybe to
 * another endpoint). A stream that fails is reopened at once (`STREAM_RETRY_MS`). A timer at `validUntil` declares the lease lost if no keepalive
 * was acknowledged in time, whatever the library or gRPC still believe. `lost` fires at most
 * once per lease; the lease is then dropped (revoked if etcd can still be reached) and
 * `ensure()` grants a new one.
 */
import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { callFailure, type CallFailure } from './errors.js';
import type { LostReason } from './types.js';

/** Part of the granted TTL between two keepalives when no interval is given. */
export const DEFAULT_RENEW_FRACTION = 4;
/**
 * First wait before reopening a keepalive stream that failed, doubled for each failure in
 * a row up to the renew interval, back to this after an acknowledged keepalive. `etcd3`
 * picks a random endpoint per stream and does not learn from a stream's failure, so with
 * one member of three down a new stream lands on it a third of the time (failing within
 * milliseconds: connection refused); retrying quickly rather than a renew interval later
 * finds a live member long before the deadline, and the doubling keeps a wholly
 * unreachable etcd from being hammered.
 */
export const STREAM_RETRY_MS = 20;

type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

interface LiveLease {
  readonly id: string;
  ttlMs: number;
  validUntilMs: number;
  renewIntervalMs: number;
  stream: KeepAliveStream | null;
  opening: boolean;
  /** Send time of the keepalive in flight, or null. */
  inFlightSince: number | null;
  /** Streams that ended since the last acknowledged keepalive. */
  streamFailures: number;
  tick: NodeJS.Timeout | null;
  deadline: NodeJS.Timeout | null;
}

export interface LeaseKeeperOptions {
  readonly requestedTtlS: number;
  readonly renewIntervalMs?: number;
  readonly callTimeoutMs: number;
  readonly now: () => number;
  readonly onRenewed: (validUntilMs: number) => void;
  readonly onLost: (reason: LostReason, detail: string) => void;
}

/**
 * A revoke etcd did not confirm is tried again this often, for this long: etcd extends
 * every lease when it restarts or elects a leader, so a lease given up while etcd was
 * unreachable would otherwise hold its key a whole TTL after etcd is back, and the peer
 * would wait that out. Lease ids are never reused, so a late revoke cannot hit a new hold.
 */
export const REVOKE_RETRY_MS = 500;
export const REVOKE_RETRY_FOR_MS = 60_000;

/** Keeps one lease alive at a time. */
export class LeaseKeeper {
  private lease: LiveLease | null = null;
  private granting: Promise<{ ok: true; id: string } | CallFailure> | null = null;
  private closed = false;
  /** Leases given up whose revoke etcd has not confirmed yet, with when to stop trying. */
  private readonly unrevoked = new Map<string, number>();
  private revokeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly client: Etcd3,
    private readonly options: LeaseKeeperOptions,
  ) {}

  /** The live lease's id, or null. */
  id(): string | null {
    return this.lease?.id ?? null;
  }

  /** The live lease's deadline (monotonic ms), or null. */
  validUntil(): number | null {
    return this.lease?.validUntilMs ?? null;
  }

  /** The granted TTL of the live lease, or null. */
  grantedTtlMs(): number | null {
    return this.lease?.ttlMs ?? null;
  }

  /** Returns the live lease, granting one (with the call deadline) if there is none. */
  ensure(): Promise<{ ok: true; id: string } | CallFailure> {
    if (this.lease !== null && this.options.now() < this.lease.validUntilMs) return Promise.resolve({ ok: true, id: this.lease.id });
    if (this.lease !== null) this.drop('deadline-passed', 'lease deadline passed before a keepalive was acknowledged');
    this.granting ??= this.grant().finally(() => {
      this.granting = null;
    });
    return this.granting;
  }

  /** Declares the live lease lost (e.g. its key was taken) and revokes it in the background. */
  abandon(reason: LostReason, detail: string): void {
    if (this.lease !== null) this.drop(reason, detail);
  }

  /** Revokes the live lease (its keys go at once). Idempotent; resolves with the failure if etcd did not confirm. */
  async revoke(): Promise<{ ok: true } | CallFailure> {
    const lease = this.lease;
    if (lease === null) return { ok: true };
    this.stop(lease);
    this.lease = null;
    const revoked = await this.revokeId(lease.id);
    if (!('ok' in revoked) && !this.closed) {
      this.unrevoked.set(lease.id, this.options.now() + REVOKE_RETRY_FOR_MS);
      this.scheduleRevokeRetry();
    }
    return revoked;
  }

  /** Leases whose revoke is still being retried (for tests and status). */
  pendingRevokes(): number {
    return this.unrevoked.size;
  }

  /** Stops renewing (the lease then expires in etcd). Idempotent. */
  close(): void {
    this.closed = true;
    if (this.lease !== null) this.stop(this.lease);
    this.lease = null;
    if (this.revokeTimer !== null) clearTimeout(this.revokeTimer);
    this.revokeTimer = null;
    this.unrevoked.clear();
  }

  private scheduleRevokeRetry(): void {
    if (this.revokeTimer !== null || this.unrevoked.size === 0 || this.closed) return;
    this.revokeTimer = setTimeout(() => {
      this.revokeTimer = null;
      void this.retryRevokes().finally(() => this.scheduleRevokeRetry());
    }, REVOKE_RETRY_MS);
    this.revokeTimer.unref();
  }

  private async retryRevokes(): Promise<void> {
    for (const [id, giveUpAt] of [...this.unrevoked]) {
      if (this.closed) return;
      const revoked = await this.revokeId(id);
      if ('ok' in revoked || this.options.now() >= giveUpAt) this.unrevoked.delete(id);
    }
  }

  private async grant(): Promise<{ ok: true; id: string } | CallFailure> {
    const sentAt = this.options.now();
    try {
      const response = await this.client.leaseClient.leaseGrant(
        { TTL: this.options.requestedTtlS },
        { deadline: Date.now() + this.options.callTimeoutMs },
      );
      const ttlMs = Number(response.TTL) * 1_000;
      if (!(ttlMs > 0)) return { type: 'unreachable', reason: `lease grant: etcd granted TTL ${response.TTL}` };
      if (this.closed) {
        void this.revokeId(response.ID);
        return { type: 'unreachable', reason: 'lease grant: the quorum was closed meanwhile' };
      }
      const lease: LiveLease = {
        id: response.ID,
        ttlMs,
        validUntilMs: sentAt + ttlMs,
        renewIntervalMs: this.options.renewIntervalMs ?? ttlMs / DEFAULT_RENEW_FRACTION,
        stream: null,
        opening: false,
        inFlightSince: null,
        streamFailures: 0,
        tick: null,
        deadline: null,
      };
      this.lease = lease;
      this.armDeadline(lease);
      this.scheduleTick(lease, 0);
      return { ok: true, id: lease.id };
    } catch (error) {
      return callFailure('lease grant', error);
    }
  }

  private scheduleTick(lease: LiveLease, afterMs: number): void {
    lease.tick = setTimeout(() => {
      lease.tick = null;
      if (this.lease !== lease) return;
      this.renew(lease);
      this.scheduleTick(lease, lease.renewIntervalMs);
    }, afterMs);
  }

  private armDeadline(lease: LiveLease): void {
    if (lease.deadline !== null) clearTimeout(lease.deadline);
    // +1: a timer may fire a fraction of a millisecond early on the monotonic clock.
    const afterMs = Math.max(0, lease.validUntilMs - this.options.now()) + 1;
    lease.deadline = setTimeout(() => {
      lease.deadline = null;
      if (this.lease !== lease) return;
      if (this.options.now() >= lease.validUntilMs) {
        this.drop('deadline-passed', `no keepalive acknowledged within the granted TTL of ${lease.ttlMs} ms`);
      } else {
        this.armDeadline(lease);
      }
    }, afterMs);
  }

  private renew(lease: LiveLease): void {
    const now = this.options.now();
    if (lease.inFlightSince !== null) {
      if (now - lease.inFlightSince < lease.renewIntervalMs) return;
      // Unanswered for a whole interval: a frozen or cut member. Start afresh.
      this.resetStream(lease);
    }
    if (lease.stream === null) {
      this.openStream(lease);
      return;
    }
    lease.inFlightSince = now;
    try {
      lease.stream.write({ ID: lease.id });
    } catch {
      this.resetStream(lease);
    }
  }

  private openStream(lease: LiveLease): void {
    if (lease.opening) return;
    lease.opening = true;
    let gaveUp = false;
    // Opening may wait on the auth token exchange; a stream that comes after we gave up is
    // cancelled, never adopted.
    const timer = setTimeout(() => {
      gaveUp = true;
      lease.opening = false;
    }, this.options.callTimeoutMs);
    this.client.leaseClient.leaseKeepAlive().then(
      (stream) => {
        clearTimeout(timer);
        stream.on('error', () => this.streamEnded(lease, stream));
        stream.on('end', () => this.streamEnded(lease, stream));
        if (gaveUp || this.lease !== lease) {
          stream.cancel();
          return;
        }
        lease.opening = false;
        lease.stream = stream;
        stream.on('data', (response) => this.acknowledged(lease, stream, response));
        // Send at once rather than a tick later: the lease may be close to its deadline.
        this.renew(lease);
      },
      () => {
        clearTimeout(timer);
        if (!gaveUp) lease.opening = false;
      },
    );
  }

  private acknowledged(lease: LiveLease, stream: KeepAliveStream, response: ILeaseKeepAliveResponse): void {
    if (this.lease !== lease || lease.stream !== stream || lease.inFlightSince === null) return;
    const sentAt = lease.inFlightSince;
    lease.inFlightSince = null;
    const ttlMs = Number(response.TTL) * 1_000;
    if (!(ttlMs > 0)) {
      this.drop('lease-expired', `etcd answered the keepalive with TTL ${response.TTL}: the lease is gone`);
      return;
    }
    lease.ttlMs = ttlMs;
    lease.streamFailures = 0;
    const validUntilMs = sentAt + ttlMs;
    if (validUntilMs > lease.validUntilMs) {
      lease.validUntilMs = validUntilMs;
      this.armDeadline(lease);
    }
    this.options.onRenewed(lease.validUntilMs);
  }

  private streamEnded(lease: LiveLease, stream: KeepAliveStream): void {
    if (lease.stream !== stream) return;
    lease.stream = null;
    lease.inFlightSince = null;
    const retryMs = Math.min(lease.renewIntervalMs, STREAM_RETRY_MS * 2 ** lease.streamFailures);
    lease.streamFailures += 1;
    setTimeout(() => {
      if (this.lease === lease && lease.stream === null) this.renew(lease);
    }, retryMs);
  }

  private resetStream(lease: LiveLease): void {
    const stream = lease.stream;
    lease.stream = null;
    lease.inFlightSince = null;
    if (stream !== null) {
      try {
        stream.cancel();
      } catch {
        // Already closed.
      }
    }
  }

  private stop(lease: LiveLease): void {
    if (lease.tick !== null) clearTimeout(lease.tick);
    if (lease.deadline !== null) clearTimeout(lease.deadline);
    lease.tick = null;
    lease.deadline = null;
    this.resetStream(lease);
  }

  private drop(reason: LostReason, detail: string): void {
    const lease = this.lease;
    if (lease === null) return;
    this.stop(lease);
    this.lease = null;
    // Best effort: frees the key (and a takeover fence) at once when etcd is reachable.
    void this.revokeId(lease.id);
    this.options.onLost(reason, detail);
  }

  private async revokeId(id: string): Promise<{ ok: true } | CallFailure> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + this.options.callTimeoutMs });
      return { ok: true };
    } catch (error) {
      const failure = callFailure('lease revoke', error);
      // A lease etcd no longer knows is revoked as far as we care.
      return failure.type === 'lease-lost' ? { ok: true } : failure;
    }
  }
}
