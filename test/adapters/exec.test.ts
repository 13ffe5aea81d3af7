/**
 * Running tools (`src/adapters/exec.ts`): a child sees PATH and the C locale and nothing
 * else of the daemon's environment, so the secrets the daemon may hold there
 * (`REDIS_HA_ADVERT_KEY`, the Redis passwords, `REDISCLI_AUTH`) and systemd's
 * `NOTIFY_SOCKET` never reach `ip`, `arping` or `ndptool`. Also: exit statuses are
 * results, a missing program names its package, a wedged child is killed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { childEnvironment, CommandError, DEFAULT_CHILD_PATH, ProgramMissingError, run } from '../../src/adapters/exec.js';

/** Variables a daemon may hold; none may reach a child. */
const SECRETS: Readonly<Record<string, string>> = {
  REDIS_HA_ADVERT_KEY: 'e3b0c44298fc1c149afbf4c8996fb924-advert',
  REDIS_HA_REDIS_PASSWORD: 'local-redis-password',
  REDIS_HA_PEER_REDIS_PASSWORD: 'peer-redis-password',
  REDISCLI_AUTH: 'redis-cli-password',
  NOTIFY_SOCKET: '/run/systemd/notify',
  LD_PRELOAD: '/tmp/not-for-children.so',
};

const saved = new Map<string, string | undefined>();
afterEach(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  saved.clear();
});

function setEnv(vars: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(vars)) {
    if (!saved.has(name)) saved.set(name, process.env[name]);
    process.env[name] = value;
  }
}

/** `env`'s output as a map. */
function parseEnv(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n').filter((l) => l !== '')) {
    const at = line.indexOf('=');
    vars[line.slice(0, at)] = line.slice(at + 1);
  }
  return vars;
}

describe('the environment of a child', () => {
  it('is PATH and the C locale only, whatever secrets the daemon holds', async () => {
    setEnv(SECRETS);
    const result = await run('env', []);
    expect(result.code).toBe(0);
    expect(parseEnv(result.stdout)).toEqual({ PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C' });
    for (const value of Object.values(SECRETS)) expect(result.stdout).not.toContain(value);
  });

  it('falls back to the system path when the daemon has none', () => {
    expect(childEnvironment({ REDIS_HA_ADVERT_KEY: 'x' })).toEqual({ PATH: DEFAULT_CHILD_PATH, LANG: 'C', LC_ALL: 'C' });
    expect(childEnvironment({ PATH: '' }).PATH).toBe(DEFAULT_CHILD_PATH);
    expect(childEnvironment({ PATH: '/opt/tools/bin:/usr/bin' }).PATH).toBe('/opt/tools/bin:/usr/bin');
  });
});

describe('run', () => {
  it('resolves with a non-zero exit status and the output', async () => {
    const result = await run('sh', ['-c', 'echo out; echo err >&2; exit 3']);
    expect(result).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('rejects a missing program with the package to install', async () => {
    const error = await run('arping-not-installed-here', []).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProgramMissingError);
  });

  it('kills a child that outlives its timeout', async () => {
    const error = await run('sleep', ['5'], { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).code).toBe('COMMAND_TIMEOUT');
  });
});
