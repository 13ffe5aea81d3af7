/**
 * `etc/redis-ha.example.yaml` made runnable on the machine running the tests: its paths
 * (key file, Redis password file, audit log, state file, control socket) moved into a
 * temporary directory and the VIP's interface set to `lo`, which every host has. Nothing
 * else changes, so what `check-config` says of the copy it says of the example.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The example configuration, as shipped. */
export const EXAMPLE_CONFIG = join(import.meta.dirname, '../../etc/redis-ha.example.yaml');

/** The machine-specific paths of an adapted copy. */
export interface AdaptedExample {
  /** The adapted configuration file. */
  readonly path: string;
  /** Where its advert.key_file points (not created here). */
  readonly keyFile: string;
}

/** Each path of the example and the file name it gets in the temporary directory. */
const MOVED: readonly (readonly [string, string])[] = [
  ['/etc/redis-ha/advert.key', 'advert.key'],
  ['/etc/redis-ha/redis.password', 'redis.password'],
  ['/var/log/redis-ha/audit.jsonl', 'audit.jsonl'],
  ['/var/lib/redis-ha/state.json', 'state.json'],
  ['/run/redis-ha/control.sock', 'control.sock'],
];

/** `text` with each path of the example that it names moved into `dir`. */
export function movePaths(text: string, dir: string): string {
  let out = text;
  for (const [from, name] of MOVED) out = out.replaceAll(from, join(dir, name));
  return out;
}

/** The example with every line that names a moved path rewritten, and the VIP on lo; no other line changes. */
export function adaptExampleText(text: string, dir: string): string {
  for (const [from] of MOVED) {
    if (!text.includes(from)) throw new Error(`the example no longer names ${from}: update test/helpers/example-config.ts`);
  }
  const out = movePaths(text, dir);
  const iface = /^  interface: eth0$/m;
  if (!iface.test(out)) throw new Error('the example no longer has "  interface: eth0" under vip: update test/helpers/example-config.ts');
  return out.replace(iface, '  interface: lo');
}

/**
 * Writes the adapted example as `dir/redis-ha.yaml` and the Redis password file it names
 * (mode 0600); the advert key file is left to the caller (`keygen --out`).
 */
export async function adaptExample(dir: string): Promise<AdaptedExample> {
  const path = join(dir, 'redis-ha.yaml');
  await writeFile(path, adaptExampleText(await readFile(EXAMPLE_CONFIG, 'utf8'), dir));
  const password = join(dir, 'redis.password');
  await writeFile(password, 'the-requirepass-value\n', { mode: 0o600 });
  await chmod(password, 0o600);
  return { path, keyFile: join(dir, 'advert.key') };
}
