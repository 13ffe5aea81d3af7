#!/usr/bin/env node
/**
 * The `redis-ha` command line: `run` (the daemon, foreground), `check-config`
 * (validate like `keepalived -t`) and `keygen` (a new advert key line). Secrets are
 * never taken from the command line; see the configuration reference.
 */
import { Command } from 'commander';
import { checkConfigCommand } from './check-config.js';
import { keygenCommand } from './keygen.js';
import { runCommand } from './run.js';

/** Default configuration path, as in the systemd unit and the install script. */
export const DEFAULT_CONFIG = '/etc/redis-ha/redis-ha.yaml';

const program = new Command()
  .name('redis-ha')
  .description('Virtual-IP failover for a Redis master/replica pair')
  .showHelpAfterError();

program
  .command('run')
  .description('run the daemon in the foreground (SIGTERM: hand over; SIGUSR2: restart in place; SIGHUP: reopen the audit log)')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action(async (opts: { config: string }) => {
    process.exitCode = await runCommand(opts.config);
  });

program
  .command('check-config')
  .description('validate the configuration and print what the daemon would do; exit 78 on error')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action((opts: { config: string }) => {
    process.exitCode = checkConfigCommand(opts.config);
  });

program
  .command('keygen')
  .description('print a new advert key line ("<id> <secret>") for the key file')
  .option('--id <n>', 'key id (1-255), for rotation', '1')
  .action((opts: { id: string }) => {
    process.exitCode = keygenCommand(opts.id);
  });

await program.parseAsync(process.argv);
