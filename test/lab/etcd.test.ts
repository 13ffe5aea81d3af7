/**
 * The lab's etcd witness (`tools/lab/etcd.ts`) and its faults in the pair lab, no
 * quorum configured in the daemons (`etcdWitness: true`): the member runs in the client
 * namespace on the client's address, both nodes reach it, `isolateFromEtcd` cuts one
 * node off it and nothing else, `restoreEtcd` undoes that, freeze/thaw and kill/restart
 * work (a restart keeps the data) under a running pair without disturbing it, and
 * teardown leaves no process, namespace or directory. Root only (skipped loudly
 * otherwise; run it under the e2e lock); needs `npm run build` (the daemons).
 *
 * Without root: the pure parts (the `quorum` section the lab writes, `etcdctl` output
 * parsing).
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labEtcdEndpoint, LAB_ETCD_CLIENT_PORT, LAB_ETCD_ELECTION_MS, parseEtcdctlGet } from '../../tools/lab/etcd.js';
import { isRoot, pidAlive, pollUntil, run } from '../../tools/lab/netns.js';
import { daemonEntry, labNodeConfig, labQuorumSection, LAB_QUORUM_ETCD_TIMING, PairLab, PROFILES, startPair } from '../../tools/lab/pair.js';
import { LAB_REDIS_PORT } from '../../tools/lab/redis-proc.js';

const TAG = 'rhetc1';
const SUBNET = '10.77.231';
const ELECTION_TIMEOUT_MS = 30_000;
/** Longer than the default profile's master-down interval (3 × 1 s adverts + skew). */
const ETCD_DOWN_WATCH_MS = 5_000;
const RECOVER_TIMEOUT_MS = 10_000;
const STEP_TIMEOUT_MS = 60_000;

const root = isRoot();
if (!root) console.warn('SKIPPING the root part of test/lab/etcd.test.ts: the lab needs root (network namespaces)');
const describeRoot = root ? describe : describe.skip;

describe('lab quorum configuration and etcdctl parsing (pure)', () => {
  it('writes the design\'s quorum section: etcd dials the witness with the lab timings', () => {
    expect(labQuorumSection({ backend: 'etcd' }, 'http://10.77.9.12:2379')).toEqual({
      backend: 'etcd',
      etcd: {
        endpoints: 'http://10.77.9.12:2379',
        lease_ttl_s: 2,
        renew_interval_ms: 250,
        call_timeout_ms: 500,
        election_timeout_ms: LAB_ETCD_ELECTION_MS,
      },
    });
    expect(labQuorumSection({ backend: 'none', prefer: 'safety' }, null)).toEqual({ backend: 'none', prefer: 'safety' });
    expect(() => labQuorumSection({ backend: 'etcd' }, null)).toThrow(/endpoint/);
    expect(labEtcdEndpoint('10.77.9.12')).toBe(`http://10.77.9.12:${LAB_ETCD_CLIENT_PORT}`);
  });

  it('adds the quorum section to a node\'s file only when asked', () => {
    const params = { node: 'a', addresses: { a: '10.77.9.10', b: '10.77.9.11' }, vip: '10.77.9.100', dir: '/tmp/x', timing: PROFILES.default } as const;
    expect('quorum' in labNodeConfig(params)).toBe(false);
    const quorum = labQuorumSection({ backend: 'etcd' }, 'http://10.77.9.12:2379');
    expect((labNodeConfig({ ...params, quorum }) as Record<string, unknown>)['quorum']).toEqual(quorum);
  });

  it('keeps the lab timings inside the design\'s timing rule', () => {
    const t = LAB_QUORUM_ETCD_TIMING;
    // renew + call + election < lease TTL - (ceil(1 % of TTL) + the largest lab health timeout).
    const fenceLeadMs = Math.ceil(t.lease_ttl_s * 1000 * 0.01) + 400;
    expect(t.renew_interval_ms + t.call_timeout_ms + t.election_timeout_ms).toBeLessThan(t.lease_ttl_s * 1000 - fenceLeadMs);
  });

  it('parses etcdctl get -w json, keeping an int64 lease id exact', () => {
    const key = Buffer.from('/redis-ha/group-51/leader').toString('base64');
    const value = Buffer.from('{"format":"redis-ha-leader/1","node":"a","epoch":3}').toString('base64');
    const out =
      `{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2},` +
      `"kvs":[{"key":"${key}","create_revision":5,"mod_revision":6,"version":2,"value":"${value}","lease":7587876313442567000}],"count":1}`;
    expect(parseEtcdctlGet(out)).toEqual({
      key: '/redis-ha/group-51/leader',
      value: '{"format":"redis-ha-leader/1","node":"a","epoch":3}',
      lease: '7587876313442567000',
      modRevision: 6,
      createRevision: 5,
    });
    expect(parseEtcdctlGet('{"header":{"revision":7},"count":0}')).toBeNull();
  });
});

describeRoot('lab etcd witness on the client host', () => {
  let lab: PairLab;

  beforeAll(async () => {
    if (!existsSync(daemonEntry())) throw new Error(`${daemonEntry()} is missing: run npm run build`);
    lab = await startPair({ tag: TAG, subnet: SUBNET, etcdWitness: true });
  });

  afterAll(async () => {
    await lab?.teardown();
  });

  it('runs in c\'s namespace, on c\'s address, with its data in the lab directory', async () => {
    const etcd = lab.etcd();
    const pid = etcd.pid;
    expect(pid).not.toBeNull();
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('etcd');
    expect((await run(['ip', 'netns', 'identify', String(pid)])).stdout.trim()).toBe(`${TAG}-c`);
    expect(etcd.endpoint()).toBe(`http://${lab.address('c')}:${LAB_ETCD_CLIENT_PORT}`);
    expect(etcd.dataDir.startsWith(`${lab.dir}/`)).toBe(true);
    expect(existsSync(`${etcd.dataDir}/member`)).toBe(true);
    expect(await etcd.healthy()).toBe(true);
    // The daemons were not configured for it: nobody holds the group's key.
    expect(await etcd.leader()).toBeNull();
  });

  it('is reached from a and b: a put from a is read from b', async () => {
    const etcd = lab.etcd();
    const put = await etcd.etcdctl('a', ['put', '/lab-test/from-a', 'hello']);
    expect(put.code, put.stderr).toBe(0);
    const got = await etcd.etcdctl('b', ['get', '/lab-test/from-a', '--print-value-only']);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout.trim()).toBe('hello');
    expect((await etcd.get('/lab-test/from-a'))?.value).toBe('hello');
    expect(await etcd.reachableFrom('a')).toBe(true);
    expect(await etcd.reachableFrom('b')).toBe(true);
  });

  it('isolateFromEtcd(a) cuts a off the witness and nothing else; restoreEtcd undoes it', { timeout: STEP_TIMEOUT_MS }, async () => {
    const etcd = lab.etcd();
    await lab.isolateFromEtcd('a');
    await lab.isolateFromEtcd('a'); // idempotent
    try {
      expect(await etcd.reachableFrom('a')).toBe(false);
      expect(await etcd.reachableFrom('b')).toBe(true);
      expect(await etcd.reachableFrom('c')).toBe(true);
      // The peer's Redis and the client are untouched.
      const ping = await lab.net.exec('a', ['redis-cli', '--no-auth-warning', '-h', lab.address('b'), '-p', String(LAB_REDIS_PORT), 'PING'], {
        env: { REDISCLI_AUTH: lab.password },
      });
      expect(ping.stdout.trim()).toBe('PONG');
      const fromClient = await lab.net.exec('c', ['redis-cli', '--no-auth-warning', '-h', lab.address('a'), '-p', String(LAB_REDIS_PORT), 'PING'], {
        env: { REDISCLI_AUTH: lab.password },
      });
      expect(fromClient.stdout.trim()).toBe('PONG');
    } finally {
      await lab.restoreEtcd('a');
    }
    await lab.restoreEtcd('a'); // a table already gone is fine
    expect(await pollUntil(() => etcd.reachableFrom('a'), RECOVER_TIMEOUT_MS, 200)).toBe(true);
  });

  it('freeze makes it silent to both nodes; thaw brings it back', { timeout: STEP_TIMEOUT_MS }, async () => {
    const etcd = lab.etcd();
    const pid = etcd.pid;
    etcd.freeze();
    try {
      expect(etcd.isFrozen).toBe(true);
      expect(etcd.running).toBe(true);
      expect(await etcd.reachableFrom('a')).toBe(false);
    } finally {
      etcd.thaw();
    }
    expect(etcd.isFrozen).toBe(false);
    expect(await pollUntil(() => etcd.reachableFrom('a'), RECOVER_TIMEOUT_MS, 200)).toBe(true);
    expect(etcd.pid).toBe(pid);
  });

  it('SIGKILL and restart under a running pair: the pair is undisturbed, the data kept', { timeout: STEP_TIMEOUT_MS }, async () => {
    const etcd = lab.etcd();
    await lab.waitFor('A settled as master', () => lab.isSettledMaster('a'), ELECTION_TIMEOUT_MS);
    const before = etcd.pid;
    expect(before).not.toBeNull();
    await etcd.kill();
    expect(etcd.running).toBe(false);
    expect(before !== null && pidAlive(before)).toBe(false);
    expect(await etcd.reachableFrom('a')).toBe(false);
    const until = Date.now() + ETCD_DOWN_WATCH_MS;
    while (Date.now() < until) {
      expect(await lab.isSettledMaster('a')).toBe(true);
      await sleep(250);
    }
    await etcd.start();
    expect(etcd.pid).not.toBe(before);
    expect((await etcd.get('/lab-test/from-a'))?.value).toBe('hello');
    const killedPid = etcd.pid;
    await etcd.restart();
    expect(etcd.pid).not.toBe(killedPid);
    expect(await etcd.reachableFrom('b')).toBe(true);
    expect((await etcd.get('/lab-test/from-a'))?.value).toBe('hello');
    expect(await lab.isSettledMaster('a')).toBe(true);
  });

  it('teardown leaves no etcd process, no namespace and no directory', { timeout: STEP_TIMEOUT_MS }, async () => {
    const pid = lab.etcd().pid;
    expect(pid).not.toBeNull();
    await lab.teardown();
    expect(pid !== null && pidAlive(pid)).toBe(false);
    expect(await lab.net.namespaces()).toEqual([]);
    expect(await lab.net.links()).toEqual([]);
    expect(existsSync(lab.dir)).toBe(false);
  });
});
