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
 * never loads the daemon, Redis client or logger; `--version` loads `version.ts` and the
 * advert format's module only.
 *
 * Bad arguments (an unknown command or option, a missing value) exit 64 (EX_USAGE), as
 * the commands do for a malformed value; `--help` and `--version` exit 0. README
 * "Command reference" lists every command, flag and exit status; test/cli/commands.test.ts
 * checks this file against it.
 */
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { EXIT_USAGE } from '../errors.js';
import { registerAuditCommands } from './audit-commands.js';

/** Default configuration path, as in the systemd unit and the install script. */
export const DEFAULT_CONFIG = '/etc/redis-ha/redis-ha.yaml';

/** The code of the error the `--version` listener ends parsing with; the version is printed after. */
const VERSION_REQUESTED = 'redis-ha.version';

/** Help text width, as commander's own when stdout is not a terminal. */
const HELP_WIDTH = 80;

/** `text` broken at spaces into lines of at most HELP_WIDTH characters. */
function wrap(text: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  return [...lines, line].join('\n');
}

const program = new Command()
  .name('redis-ha')
  .description('Virtual-IP failover for a Redis master/replica pair')
  .showHelpAfterError()
  // Inherited by every command added below: a usage error throws instead of exiting 1.
  .exitOverride()
  .option('-V, --version', 'print the version and the advert wire format, then exit')
  .on('option:version', () => {
    throw new CommanderError(0, VERSION_REQUESTED, '--version');
  })
  .addHelpText('after', () => `
${wrap('Exit status: 0 success (status: OK); 1 the command failed (status: WARNING); 2 status: CRITICAL, ' +
  'audit: a file could not be read; 3 status: UNKNOWN (no daemon answering); 64 bad arguments; ' +
  '69 run: a program it needs is missing; 73 keygen --out: the file exists or cannot be written; ' +
  '78 the configuration is invalid. "redis-ha COMMAND --help" says which apply to a command.')}

${wrap('Environment: REDIS_HA_CONTROL_SOCKET is the control socket of status, switchover, failover and ' +
  'maintenance when -s is not given; REDIS_HA_<SECTION>_<KEY> overrides a configuration key ' +
  '(README "Configuration reference").')}`);

/** Adds the command's exit statuses to the end of its `--help`. */
function exits(command: Command, text: string): Command {
  return command.addHelpText('after', `\n${wrap(`Exit status: ${text}`)}`);
}

exits(program
  .command('run')
  .description('run the daemon in the foreground (SIGTERM: hand over; SIGUSR2: restart in place; SIGHUP: reopen the audit log)')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action(async (opts: { config: string }) => {
    const { runCommand } = await import('./run.js');
    const code = await runCommand(opts.config);
    // A fatal error during start-up can leave connections opened before it (Redis, the
    // audit file) holding the event loop; the daemon must end, so systemd restarts it.
    process.exit(code);
  }), '0 stopped (SIGTERM, SIGINT, or SIGUSR2 for a restart in place); 1 a fatal error; ' +
  '69 a program it runs (ip, arping, ndptool, nft) is missing; 78 the configuration is invalid.');

exits(program
  .command('check-config')
  .description('validate the configuration and print what the daemon would do (like keepalived -t)')
  .argument('[file]', 'configuration file, instead of --config')
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action(async (file: string | undefined, opts: { config: string }, command: Command) => {
    const given = command.getOptionValueSource('config') === 'cli';
    if (file !== undefined && given && resolve(file) !== resolve(opts.config)) {
      process.stderr.write(`redis-ha check-config: two configuration files given, ${JSON.stringify(file)} and --config ${JSON.stringify(opts.config)}: give one\n`);
      process.exitCode = EXIT_USAGE;
      return;
    }
    const { checkConfigCommand } = await import('./check-config.js');
    // Its look at the two Redis servers can leave a closed client's timer behind (ioredis
    // waits 2 s for a refused socket to close): the check ends as soon as it is printed.
    process.exit(await checkConfigCommand(file ?? opts.config));
  }), '0 valid (warnings are printed as "warning:"); 64 a file given both as an argument and, different, with --config; ' +
  '78 invalid (each problem on its own line, a Redis Cluster node too), or a timing rule broken ("error:").');

exits(program
  .command('keygen')
  .description('make a new advert key line ("<id> <secret>", 256 random bits): to stdout, or the key file itself with --out')
  .option('--id <n>', 'key id (1-255), for rotation', '1')
  .option('--out <file>', 'write the key file itself instead of printing the line: mode 0600, atomically, never over an existing file')
  .option('--force', 'with --out: replace an existing file')
  .option('--owner <user[:group]>', 'with --out: give the file to this user (the daemon\'s, e.g. redis-ha; needs root)')
  .action(async (opts: { id: string; out?: string; force?: boolean; owner?: string }) => {
    const { keygenCommand } = await import('./keygen.js');
    process.exitCode = await keygenCommand(opts);
  }), '0 written; 64 a bad --id or --owner, or --force/--owner without --out; 73 the --out file exists (no --force) or cannot be written.');

const configHelp = 'configuration file (only control.socket is read from it)';
const socketHelp = 'control socket (default: $REDIS_HA_CONTROL_SOCKET, else control.socket of the configuration, else /run/redis-ha/control.sock)';
const controlExits = '1 refused, failed, or no daemon answering on the socket; 64 bad arguments.';

exits(program
  .command('status')
  .description('show this node, its Redis and the peer, with a verdict line first: a Nagios/NRPE monitoring check')
  .option('-c, --config <file>', configHelp, DEFAULT_CONFIG)
  .option('-s, --socket <path>', socketHelp)
  .option('--json', 'print the status as JSON (stable field names; the same fields, null, when UNKNOWN)')
  .action(async (opts: { config: string; socket?: string; json?: boolean }) => {
    const { statusCommand } = await import('./control.js');
    process.exitCode = await statusCommand(opts);
  }), '0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (no daemon answering); the verdict line is on stdout in every case; 64 bad arguments.');

exits(program
  .command('switchover')
  .description('hand the master role to the peer with no acknowledged write lost (run on either node)')
  .option('-c, --config <file>', configHelp, DEFAULT_CONFIG)
  .option('-s, --socket <path>', socketHelp)
  .option('-t, --timeout <ms>', 'bound on the write pause and catch-up (default: switchover.timeout_ms)')
  .option('--force', 'go ahead although the replica lags or the maintenance flags disagree (audited as forced)')
  .option('--json', 'print the daemon\'s reply as JSON')
  .action(async (opts: { config: string; socket?: string; timeout?: string; force?: boolean; json?: boolean }) => {
    const { switchoverCommand } = await import('./control.js');
    process.exitCode = await switchoverCommand(opts);
  }), `0 the peer is master now; ${controlExits}`);

exits(program
  .command('failover')
  .description('take the master role here past a held-back takeover (lag, recovery block, prefer safety, data guard); ' +
    'without --accept-data-loss only says what it would do; never past the leader key or a healthy master')
  .option('-c, --config <file>', configHelp, DEFAULT_CONFIG)
  .option('-s, --socket <path>', socketHelp)
  .option('--accept-data-loss', 'take over now; writes the master had that this node lacks may be lost (audited as takeover-forced)')
  .option('--json', 'print the daemon\'s reply as JSON')
  .action(async (opts: { config: string; socket?: string; acceptDataLoss?: boolean; json?: boolean }) => {
    const { failoverCommand } = await import('./failover.js');
    process.exitCode = await failoverCommand(opts);
  }), '0 this node took over; 1 not run (no --accept-data-loss: nothing changed), refused, failed, or no daemon answering; 64 bad arguments.');

exits(program
  .command('maintenance')
  .description('on: freeze automatic failover on both nodes (switchover still works); off: resume it')
  .argument('<on|off>', 'on or off')
  .option('-c, --config <file>', configHelp, DEFAULT_CONFIG)
  .option('-s, --socket <path>', socketHelp)
  .action(async (mode: string, opts: { config: string; socket?: string }) => {
    const { maintenanceCommand } = await import('./control.js');
    process.exitCode = await maintenanceCommand(mode, opts);
  }), `0 set on this node (the peer's confirmation is waited for, up to 5 s); ${controlExits}`);

exits(program
  .command('release-vip')
  .description("remove the VIP from this host (the unit's ExecStopPost; kept only right after a restart in place)")
  .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
  .action(async (opts: { config: string }) => {
    const { releaseVipCommand } = await import('./release-vip.js');
    process.exitCode = await releaseVipCommand(opts.config);
  }), '0 removed, not present, or kept for a restart in place; 1 ip failed; 78 the configuration is invalid.');

registerAuditCommands(program, DEFAULT_CONFIG);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  if (error.code === VERSION_REQUESTED) {
    const { versionLine } = await import('./version.js');
    const { line, error: why } = versionLine();
    process.stdout.write(`${line}\n`);
    if (why !== null) process.stderr.write(`redis-ha: ${why}\n`);
    process.exitCode = why === null ? 0 : 1;
  } else {
    // Commander has printed the message (and the help); --help itself exits 0.
    process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
}
