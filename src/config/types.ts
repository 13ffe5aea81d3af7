/**
 * The typed, frozen configuration every other module receives.
 *
 * YAML keys are snake_case (`advert.interval_ms`); this is the camelCase view the
 * loader (`load.ts`) produces after convict has validated the file, applied
 * `REDIS_HA_*` environment overrides and read the secret files. Durations carry
 * their unit in the name. Nothing here is optional at run time: defaults are
 * filled in by the schema.
 *
 * Written by hand for its documentation, but not free to drift: `ConfigShapeCheck`
 * (`load.ts`) fails `tsc` unless every section and key here is a schema key in
 * camelCase with the schema's type, or a departure declared in `CONFIG_DEPARTURES`.
 */
import type { ProfileKey } from './profiles.js';
import type { LogLevel, QuorumBackend, QuorumPreference, SwitchoverMethod, TimingProfile } from './schema.js';


/** One HMAC key from the advert key file. `id` travels in every advert so keys can rotate. */
export interface AdvertKey {
  readonly id: number;
  readonly secret: Buffer;
}

/** Where and how to reach a Redis server. */
export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
  /** `null` when the server needs no password. */
  readonly password: string | null;
  /** ACL user name (Redis 6+); `null` for the default user. */
  readonly username: string | null;
  readonly tls: boolean;
  /** Skip certificate verification (self-signed labs only). */
  readonly tlsInsecure: boolean;
}

export interface Config {
  /** The file this was loaded from, or `null` when built in code (tests). */
  readonly source: string | null;
  /** The timing profile (`profiles.ts`): the defaults of the timing keys. */
  readonly timing: {
    /** `default` (the shipped values), `fast` or `lan-fast`. */
    readonly profile: TimingProfile;
    /** The profile's keys set explicitly in the file or the environment (they win over the profile). */
    readonly overrides: readonly ProfileKey[];
  };
  readonly node: {
    /** Unique name of this node in the group; carried in adverts and the audit log. */
    readonly name: string;
    /** This node's own address: the source of adverts and the tie-break when priorities are equal. */
    readonly address: string;
    /** 1..254; higher wins an election (RFC 5798 §5.2.4, 255 is reserved for the address owner). */
    readonly priority: number;
    /** Take the master role back from a lower-priority master when healthy. */
    readonly preempt: boolean;
    /** With `preempt`, how long this node must be healthy and hear a lower master before it takes over. */
    readonly preemptDelayMs: number;
  };
  readonly group: {
    /** Group (virtual router) id, 1..255; adverts of other groups are ignored. */
    readonly id: number;
  };
  readonly peer: {
    /** The other node's address (unicast), or a multicast group address. */
    readonly address: string;
  };
  readonly advert: {
    /** UDP port adverts are sent to and received on. */
    readonly port: number;
    /** Interval between adverts; >= 20 ms. */
    readonly intervalMs: number;
    /** Path of the key file (`<id> <secret>` per line); the first key signs, all verify. */
    readonly keyFile: string;
    /** Keys loaded from `keyFile` (or `REDIS_HA_ADVERT_KEY`, id 1). Never empty. */
    readonly keys: readonly AdvertKey[];
    /** Interface to send multicast adverts on (only used when `peer.address` is multicast). */
    readonly multicastInterface: string | null;
  };
  /** The local Redis, as this daemon reaches it. */
  readonly redis: RedisEndpoint;
  /** The peer's Redis as seen from this host (also where the local Redis replicates from). */
  readonly peerRedis: RedisEndpoint;
  readonly health: {
    readonly intervalMs: number;
    readonly timeoutMs: number;
    /** Consecutive failed checks before FAULT. */
    readonly fall: number;
    /** Consecutive good checks before leaving FAULT. */
    readonly rise: number;
  };
  readonly vip: {
    /** The virtual address without prefix, e.g. `10.77.0.100` or `fd00::100`. */
    readonly address: string;
    readonly prefixLength: number;
    readonly family: 4 | 6;
    readonly interface: string;
    /** Gratuitous ARP / unsolicited NA packets sent on each claim. */
    readonly garpCount: number;
    readonly garpIntervalMs: number;
    /** Re-announce the VIP this often while master; 0 turns the refresh off. */
    readonly garpRefreshMs: number;
    /**
     * A master whose Redis refuses connections keeps the VIP this long, every connection to
     * it on `redis.port` refused with a TCP reset, until the peer holds it; 0: released at once.
     */
    readonly faultHoldMs: number;
  };
  readonly promotion: {
    /** Before `REPLICAOF NO ONE`, catch up with a still-reachable peer master. */
    readonly waitForSync: boolean;
    /** Upper bound on that catch-up; promotion goes ahead (and is audited) when it runs out. */
    readonly maxSyncWaitMs: number;
    /** Connect/command timeout for the peer's Redis during promotion. */
    readonly peerTimeoutMs: number;
    /** The classic recipe's blind `sleep 15` before promoting; 0 (off) by default. */
    readonly preDelayMs: number;
    /** The classic recipe's `sleep 10` between `REPLICAOF peer` and `REPLICAOF NO ONE`; 0 by default. */
    readonly syncDelayMs: number;
    /** An automatic takeover is held back when this replica lagged the master by more than this (Patroni's `maximum_lag_on_failover`). */
    readonly maxLagBytes: number;
    /** After an automatic takeover, no other automatic takeover in the pair for this long; 0 = off. */
    readonly recoveryBlockMs: number;
  };
  readonly demotion: {
    /** Pause between releasing the VIP and `REPLICAOF <master>`; 0 by default. */
    readonly delayMs: number;
  };
  readonly reconcile: {
    /** How often desired and actual VIP/Redis state are compared. */
    readonly intervalMs: number;
  };
  readonly control: {
    /** Unix socket of the CLI (`redis-ha status`, `switchover`, `maintenance`). */
    readonly socket: string;
    /** Group owning the socket whose members may change things; `null`: root and the daemon user only. */
    readonly group: string | null;
  };
  readonly switchover: {
    /** Default bound on the write pause and catch-up of a planned switchover. */
    readonly timeoutMs: number;
    /** `auto`: Redis FAILOVER on 6.2+, CLIENT PAUSE otherwise. */
    readonly method: SwitchoverMethod;
    /** Refusal bound on replication lag in bytes (unless forced). */
    readonly maxLagBytes: number;
    /** Refusal bound on the age of the replica's last acknowledgement, seconds (unless forced). */
    readonly maxAckAgeS: number;
  };
  readonly metrics: {
    /** Serve Prometheus metrics (off by default). */
    readonly enabled: boolean;
    /** Bind address; loopback by default. */
    readonly listen: string;
    readonly port: number;
  };
  readonly stall: {
    /** Event-loop stall after which timers that fired late are re-verified before acting. */
    readonly thresholdMs: number;
  };
  /** Who decides that a node may be master besides the pair itself (issue 11). */
  readonly quorum: {
    /** `none`: the pair alone (see `prefer`); `etcd`: only the holder of the leader key may be master. */
    readonly backend: QuorumBackend;
    /**
     * Without a quorum, what a partition costs: `safety`, an isolated master (or one that lost
     * its replica) refuses writes; `availability`, both sides may serve writes and one side's
     * are lost at the heal. Read with backend `none`; reported always.
     */
    readonly prefer: QuorumPreference;
    readonly etcd: {
      /** Client URLs, `http(s)://host:port`, all of one scheme; non-empty with backend `etcd`. */
      readonly endpoints: readonly string[];
      /** Key prefix, starting with `/`. */
      readonly prefix: string;
      /** This pair's name in etcd (`group-<group.id>` when the file leaves it empty). */
      readonly clusterName: string;
      /** etcd user; `null` for none. */
      readonly username: string | null;
      /** The user's password, read from `passwordFile` (with backend `etcd` only); `null` for none. */
      readonly password: string | null;
      /** File holding the password; `''` for none. */
      readonly passwordFile: string;
      /** PEM CA bundle for https:// endpoints; `''` for none. */
      readonly caFile: string;
      /** PEM client certificate; `''` for none (then `keyFile` is `''` too). */
      readonly certFile: string;
      /** PEM client key; `''` for none. */
      readonly keyFile: string;
      /** TTL of the leader key's lease, whole seconds. */
      readonly leaseTtlS: number;
      /** Time between lease renewals. */
      readonly renewIntervalMs: number;
      /** Deadline of each etcd call. */
      readonly callTimeoutMs: number;
      /** The etcd cluster's `--election-timeout`, for the timing rule (`checkQuorumTiming`). */
      readonly electionTimeoutMs: number;
    };
  };
  readonly audit: {
    /** Append-only JSON-lines audit log. */
    readonly path: string;
    /** Key file of the keyed (HMAC) audit chain; `''`: unkeyed. */
    readonly keyFile: string;
  };
  readonly state: {
    /** Small JSON file holding the promotion epoch across restarts. */
    readonly path: string;
  };
  readonly log: {
    readonly level: LogLevel;
  };
}
