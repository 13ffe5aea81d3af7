/**
 * `check-config`: a good file yields a summary without secrets, a bad one the full
 * list of problems; anything that is not a configuration problem propagates.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../../src/config/check.js';

const EXAMPLE = fileURLToPath(new URL('../../etc/redis-ha.example.yaml', import.meta.url));
const SECRET = 'check-config-secret-0123456789';
const PASSWORD = 'the-redis-password';
const dir = mkdtempSync(join(tmpdir(), 'redis-ha-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const keyFile = join(dir, 'advert.key');
writeFileSync(keyFile, `1 ${SECRET}\n`);
chmodSync(keyFile, 0o600);
const env = { REDIS_HA_ADVERT_KEY_FILE: keyFile, REDIS_HA_REDIS_PASSWORD: PASSWORD };

describe('checkConfig', () => {
  it('summarises node, peer, VIP, advert and health settings', () => {
    const result = checkConfig(EXAMPLE, env);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.node.name).toBe('redis-a');
    const text = result.lines.join('\n');
    expect(result.lines[0]).toBe(`config ${EXAMPLE}: OK`);
    expect(text).toContain('node redis-a at 192.0.2.11, priority 150, preempt off');
    expect(text).toContain('peer 192.0.2.12 (unicast), group 51');
    expect(text).toContain('vip 192.0.2.100/24 (IPv4) on eth0, 3 gratuitous ARPs 200 ms apart, refreshed every 10000 ms');
    expect(text).toContain('advert every 1000 ms on UDP port 5400, 1 key(s), key 1 signs');
    expect(text).toContain('health check every 500 ms, timeout 500 ms, FAULT after 2 failure(s), back after 2 success(es)');
    expect(text).toContain('redis 127.0.0.1:6379 (default user, password set, no TLS)');
    expect(text).toContain('peer redis 192.0.2.12:6379 (default user, same password as local, no TLS)');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(PASSWORD);
  });

  it('returns every problem of a bad configuration', () => {
    const result = checkConfig(EXAMPLE, { ...env, REDIS_HA_NODE_PRIORITY: '0', REDIS_HA_VIP_ADDRESS: '192.0.2.100' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(2);
    expect(result.problems[0]).toBe('node.priority: expected an integer from 1 to 254, got "0" (from REDIS_HA_NODE_PRIORITY)');
    expect(result.problems[1]).toMatch(/^vip\.address: .*got "192\.0\.2\.100" \(from REDIS_HA_VIP_ADDRESS\) \(the prefix length is missing\)$/);
  });

  it('reports a missing file as a problem', () => {
    const result = checkConfig(join(dir, 'absent.yaml'), env);
    expect(result).toEqual({ ok: false, problems: [`${join(dir, 'absent.yaml')}: expected a readable configuration file, got an error (no such file)`] });
  });
});
