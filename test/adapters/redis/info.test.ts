/**
 * `INFO replication` parsing, on verbatim Redis 7.0 output (CRLF line ends, as on
 * the wire) and on the garbage the parser must refuse rather than half-read.
 */
import { describe, expect, it } from 'vitest';
import { INFO_PARSE_FAILED, parseInfoFields, parseReplicaEntries, parseReplicationInfo } from '../../../src/adapters/redis/info.js';
import { RedisControlError } from '../../../src/errors.js';

const crlf = (lines: string[]): string => `${lines.join('\r\n')}\r\n`;

const MASTER = crlf([
  '# Replication',
  'role:master',
  'connected_slaves:1',
  'slave0:ip=127.0.0.1,port=17002,state=online,offset=4242,lag=0',
  'master_failover_state:no-failover',
  'master_replid:28aba07e3ee6454d6c6888370d45ac3957ab1e5d',
  'master_replid2:0000000000000000000000000000000000000000',
  'master_repl_offset:4242',
  'second_repl_offset:-1',
  'repl_backlog_active:1',
  'repl_backlog_size:1048576',
  'repl_backlog_first_byte_offset:1',
  'repl_backlog_histlen:4242',
]);

const REPLICA = crlf([
  '# Replication',
  'role:slave',
  'master_host:10.77.0.1',
  'master_port:6379',
  'master_link_status:up',
  'master_last_io_seconds_ago:1',
  'master_sync_in_progress:0',
  'slave_read_repl_offset:4300',
  'slave_repl_offset:4300',
  'slave_priority:100',
  'slave_read_only:1',
  'replica_announced:1',
  'connected_slaves:0',
  'master_failover_state:no-failover',
  'master_replid:28aba07e3ee6454d6c6888370d45ac3957ab1e5d',
  'master_replid2:1f03f7698bda7ce1594ea2775d39c36d8e7b3030',
  'master_repl_offset:4290',
  'second_repl_offset:1001',
  'repl_backlog_active:1',
]);

describe('parseReplicationInfo', () => {
  it('reads a master', () => {
    expect(parseReplicationInfo(MASTER)).toEqual({
      role: 'master',
      replId: '28aba07e3ee6454d6c6888370d45ac3957ab1e5d',
      replId2: '0000000000000000000000000000000000000000',
      offset: 4242,
      secondOffset: -1,
      masterHost: null,
      masterPort: null,
      linkUp: false,
      syncInProgress: false,
      connectedReplicas: 1,
      goodReplicas: 1,
    });
  });

  it('counts as good only replicas online that acknowledged within the fence bound less a second', () => {
    const stale = MASTER.replace(/lag=\d+/, 'lag=2');
    expect(parseReplicationInfo(stale)).toMatchObject({ connectedReplicas: 1, goodReplicas: 0 });
    const syncing = MASTER.replace(/state=online/, 'state=wait_bgsave');
    expect(parseReplicationInfo(syncing)).toMatchObject({ goodReplicas: 0 });
  });

  it('reads a replica, preferring slave_repl_offset', () => {
    expect(parseReplicationInfo(REPLICA)).toEqual({
      role: 'replica',
      replId: '28aba07e3ee6454d6c6888370d45ac3957ab1e5d',
      replId2: '1f03f7698bda7ce1594ea2775d39c36d8e7b3030',
      offset: 4300,
      secondOffset: 1001,
      masterHost: '10.77.0.1',
      masterPort: 6379,
      linkUp: true,
      syncInProgress: false,
      connectedReplicas: 0,
    });
  });

  it('falls back to master_repl_offset without slave_repl_offset', () => {
    const text = REPLICA.replace(/slave_repl_offset:4300\r\n/, '');
    expect(parseReplicationInfo(text).offset).toBe(4290);
  });

  it('reads a replica whose link is down during a full sync, with an IPv6 master', () => {
    const text = REPLICA.replace('master_host:10.77.0.1', 'master_host:fd00::1')
      .replace('master_link_status:up', 'master_link_status:down')
      .replace('master_sync_in_progress:0', 'master_sync_in_progress:1');
    const snapshot = parseReplicationInfo(text);
    expect(snapshot.masterHost).toBe('fd00::1');
    expect(snapshot.linkUp).toBe(false);
    expect(snapshot.syncInProgress).toBe(true);
  });

  it('accepts LF line ends', () => {
    expect(parseReplicationInfo(MASTER.replace(/\r\n/g, '\n')).offset).toBe(4242);
  });

  it.each([
    ['empty text', ''],
    ['an error reply', '-NOAUTH Authentication required.'],
    ['no role', MASTER.replace('role:master\r\n', '')],
    ['an unknown role', MASTER.replace('role:master', 'role:sentinel')],
    ['a non-numeric offset', MASTER.replace('master_repl_offset:4242', 'master_repl_offset:lots')],
    ['no offset', MASTER.replace('master_repl_offset:4242\r\n', '')],
    ['a replica without master_host', REPLICA.replace('master_host:10.77.0.1\r\n', '')],
  ])('refuses %s with a typed error', (_label, text) => {
    let caught: unknown;
    try {
      parseReplicationInfo(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RedisControlError);
    expect((caught as RedisControlError).code).toBe(INFO_PARSE_FAILED);
  });
});

describe('parseInfoFields', () => {
  it('splits on the first colon only and skips headers', () => {
    const fields = parseInfoFields('# Server\r\nrun_id:abc\r\nexecutable:/usr/bin/redis-server\r\nx:a:b\r\n');
    expect(fields.get('run_id')).toBe('abc');
    expect(fields.get('x')).toBe('a:b');
    expect(fields.has('# Server')).toBe(false);
  });
});

describe('parseReplicaEntries', () => {
  it('reads every slaveN line in index order, IPv6 included', () => {
    const info = crlf([
      '# Replication',
      'role:master',
      'connected_slaves:2',
      'slave1:ip=::1,port=6380,state=wait_bgsave,offset=0,lag=0',
      'slave0:ip=10.0.0.2,port=6379,state=online,offset=4242,lag=1',
      'master_failover_state:no-failover',
      'master_repl_offset:4300',
    ]);
    expect(parseReplicaEntries(info)).toEqual([
      { index: 0, ip: '10.0.0.2', port: 6379, state: 'online', offset: 4242, lagS: 1 },
      { index: 1, ip: '::1', port: 6380, state: 'wait_bgsave', offset: 0, lagS: 0 },
    ]);
  });

  it('gives an empty list for a master without replicas and for a replica', () => {
    expect(parseReplicaEntries('role:master\nconnected_slaves:0\nmaster_repl_offset:0\n')).toEqual([]);
    expect(parseReplicaEntries('role:slave\nmaster_host:10.0.0.1\nslave_read_only:1\nslave_repl_offset:7\n')).toEqual([]);
  });

  it('refuses a slaveN line with a missing or non-numeric field', () => {
    for (const line of [
      'slave0:ip=10.0.0.2,port=6379,state=online,offset=4242',
      'slave0:ip=10.0.0.2,port=x,state=online,offset=1,lag=0',
      'slave0:10.0.0.2,6379,online',
    ]) {
      expect(() => parseReplicaEntries(`role:master\n${line}\n`), line).toThrow(RedisControlError);
      try {
        parseReplicaEntries(`role:master\n${line}\n`);
      } catch (err) {
        expect((err as RedisControlError).code).toBe(INFO_PARSE_FAILED);
      }
    }
  });
});
