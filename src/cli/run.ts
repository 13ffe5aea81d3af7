/**
 * `redis-ha run`: starts the daemon and turns fatal errors (bad configuration, missing
 * tools, unusable files) into one clear message on stderr and a non-zero exit status.
 */
import { runDaemon } from '../daemon/run.js';
import { ConfigError, FatalError } from '../errors.js';

/** Runs the daemon; resolves with the process exit status. */
export async function runCommand(configPath: string): Promise<number> {
  try {
    return await runDaemon(configPath);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof FatalError) {
      process.stderr.write(`redis-ha: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof Error && 'recoverable' in error && error.recoverable === false) {
      process.stderr.write(`redis-ha: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`redis-ha: unexpected error: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    return 1;
  }
}
