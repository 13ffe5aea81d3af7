#!/usr/bin/env -S node --max-semi-space-size=1 --lite-mode --no-expose-wasm --v8-pool-size=1
/**
 * The `redis-ha` command line: `run` (the daemon, foreground), `check-config`
 * (validate like `keepalived -t`), `keygen` (a new advert key line), the operator
 * commands that talk to the running daemon (`status`, `switchover`, `maintenance`, `failover`),
 * `release-vip` (the systemd unit's ExecStopPost) and the audit log tools (`audit verify`, `audit tail`). Secrets are never taken
 * from the command line; see the configuration reference.
 *
 * Each command's module is imported when that command runs (README "Footprint"): the
 * daemon never loads the operator commands, and `status` (a monitoring check, run often)
 * never loads the daemon, Redis client or logger.
 */
import { Command } from 'commander';
import { registerAuditCommands } from './audit-commands.js';

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
    const { runCommand } = await import('./run.js');
    const code = await runCommand(opts.config);
    // A fatal error during start-up can leave connections opened before it (Redis, the
    // audit file) holding the event loop; the daemon must end, so systemd restarts it.
    process.exit(code);
  });

program
  .command('check-config')
  .description('validate the configuration and print what the daemon would do; exit 78 on error')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action(async (opts: { config: string }) => {
    const { checkConfigCommand } = await import('./check-config.js');
    // Its look at the two Redis servers can leave a closed client's timer behind (ioredis
    // waits 2 s for a refused socket to close): the check ends as soon as it is printed.
    process.exit(await checkConfigCommand(opts.config));
  });

program
  .command('keygen')
  .description('print a new advert key line ("<id> <secret>") for the key file')
  .option('--id <n>', 'key id (1-255), for rotation', '1')
  .action(async (opts: { id: string }) => {
    const { keygenCommand } = await import('./keygen.js');
    process.exitCode = keygenCommand(opts.id);
  });

const socketHelp = 'control socket (default: control.socket of the configuration)';

program
  .command('status')
  .description('show this node, its Redis and the peer; exit 0 ok, 1 warning, 2 critical, 3 unknown (a monitoring check)')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .option('-s, --socket <path>', socketHelp)
  .option('--json', 'print the status as JSON (stable field names)')
  .action(async (opts: { config: string; socket?: string; json?: boolean }) => {
    const { statusCommand } = await import('./control.js');
    process.exitCode = await statusCommand(opts);
  });

program
  .command('switchover')
  .description('hand the master role to the peer with no acknowledged write lost (run on either node)')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .option('-s, --socket <path>', socketHelp)
  .option('-t, --timeout <ms>', 'bound on the write pause and catch-up (default: switchover.timeout_ms)')
  .option('--force', 'go ahead although the replica lags or the maintenance flags disagree (audited as forced)')
  .option('--json', 'print the daemon\'s reply as JSON')
  .action(async (opts: { config: string; socket?: string; timeout?: string; force?: boolean; json?: boolean }) => {
    const { switchoverCommand } = await import('./control.js');
    process.exitCode = await switchoverCommand(opts);
  });

program
  .command('failover')
  .description('take the master role here past a held-back takeover (lag, recovery block, prefer safety, data guard); ' +
    'without --accept-data-loss only says what it would do; never past the leader key or a healthy master')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .option('-s, --socket <path>', socketHelp)
  .option('--accept-data-loss', 'take over now; writes the master had that this node lacks may be lost (audited as takeover-forced)')
  .option('--json', 'print the daemon\'s reply as JSON')
  .action(async (opts: { config: string; socket?: string; acceptDataLoss?: boolean; json?: boolean }) => {
    const { failoverCommand } = await import('./failover.js');
    process.exitCode = await failoverCommand(opts);
  });

program
  .command('maintenance')
  .description('on: freeze automatic failover on both nodes (switchover still works); off: resume it')
  .argument('<on|off>', 'on or off')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .option('-s, --socket <path>', socketHelp)
  .action(async (mode: string, opts: { config: string; socket?: string }) => {
    const { maintenanceCommand } = await import('./control.js');
    process.exitCode = await maintenanceCommand(mode, opts);
  });

program
  .command('release-vip')
  .description("remove the VIP from this host (the unit's ExecStopPost; kept only right after a restart in place)")
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action(async (opts: { config: string }) => {
    const { releaseVipCommand } = await import('./release-vip.js');
    process.exitCode = await releaseVipCommand(opts.config);
  });

registerAuditCommands(program, DEFAULT_CONFIG);

await program.parseAsync(process.argv);
