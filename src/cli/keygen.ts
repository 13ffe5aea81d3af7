/**
 * `redis-ha keygen`: prints one key-file line (`<id> <64 hex chars>`, 256 random bits) to
 * stdout, to be written to the same key file on both nodes with mode 0600. The secret
 * always passes the loader's strength rule (`secretWeakness`, `src/config/keys.ts`).
 */
import { generateKeyLine } from '../config/keys.js';

/** Prints a new key line; returns the exit status (64 = EX_USAGE for a bad id). */
export function keygenCommand(idText: string): number {
  const id = Number(idText);
  if (!Number.isInteger(id) || id < 1 || id > 255) {
    process.stderr.write(`redis-ha keygen: --id: expected an integer from 1 to 255, got "${idText}"\n`);
    return 64;
  }
  process.stdout.write(`${generateKeyLine(id)}\n`);
  return 0;
}
