/**
 * The `redis-ha audit` commands as commander sees them (`verify`, `tail`, their options):
 * what `--help` prints needs nothing more. The commands themselves (`audit.ts`: the chain
 * checker, gunzip, the tail reader, the configuration loader) are imported when one runs,
 * so the daemon and the other commands never load them.
 */
import type { Command } from 'commander';
import { DEFAULT_TAIL_LINES } from '../audit/tail.js';
import type { AuditCliIo, AuditTailOptions, AuditVerifyOptions } from './audit.js';

/** Adds `audit verify` and `audit tail` to `program`; `io` is for tests (default: stdout, stderr, `process.exitCode`). */
export function registerAuditCommands(program: Command, defaultConfigPath: string, io?: AuditCliIo): void {
  const audit = program
    .command('audit')
    .description('check and read the hash-chained audit log (the files themselves, not over the control socket: run as a user who can read them)');

  audit
    .command('verify')
    .description('check the audit chain (default: the configured log and its rotated files, oldest first); exit 0 intact, 1 problems, 2 unreadable')
    .argument('[files...]', 'audit files, oldest first (e.g. audit.jsonl.2.gz audit.jsonl.1 audit.jsonl)')
    .option('-c, --config <file>', 'configuration file (for audit.path)', defaultConfigPath)
    .option('--file <path>', 'the audit log itself, instead of audit.path from the configuration')
    .option('--key-file <file>', 'key of a keyed chain (audit.key_file); checks every keyed record (repeat across a key change)', collect, [])
    .option('--anchor <seq:hash>', 'a chain head from the daemon log ("audit chain head", field anchor): the record with that seq must have that hash')
    .action(async (files: string[], opts: AuditVerifyOptions) => {
      const { auditVerifyCommand } = await import('./audit.js');
      setExitCode(io, await auditVerifyCommand(files, opts, io));
    });

  audit
    .command('tail')
    .description('print the last audit records, one readable line each; exit 0, 2 unreadable, 64 a bad --lines')
    .option('-n, --lines <n>', 'how many records', String(DEFAULT_TAIL_LINES))
    .option('-f, --follow', 'keep printing records as they are appended (survives log rotation)')
    .option('--json', 'print the raw JSON lines')
    .option('-c, --config <file>', 'configuration file (for audit.path)', defaultConfigPath)
    .option('--file <path>', 'the audit log itself, instead of audit.path from the configuration')
    .action(async (opts: AuditTailOptions) => {
      const { auditTailCommand } = await import('./audit.js');
      setExitCode(io, await auditTailCommand(opts, io));
    });
}

/** Commander's way to take an option more than once. */
function collect(value: string, previous: readonly string[]): string[] {
  return [...previous, value];
}

function setExitCode(io: AuditCliIo | undefined, code: number): void {
  if (io?.setExitCode) io.setExitCode(code);
  else process.exitCode = code;
}
