/**
 * Running external programs (`ip`, `arping`, `ndptool`, ...) without a shell.
 *
 * Every effect that shells out goes through here so that three rules hold everywhere:
 * arguments are passed as an argv array (never interpolated into a shell line), every
 * run is bounded by a timeout that kills the child, and a non-zero exit is a *result*
 * (the caller decides what it means: `ip addr add` failing with "File exists" is a
 * success for an idempotent claim) while a missing program is an *error* that names
 * the Debian package to install. `startCommand` is the same thing with a handle, for
 * background work the caller may need to cancel (gratuitous ARP trains).
 *
 * A child gets a minimal environment ({@link childEnvironment}): PATH and the C locale,
 * nothing else. The daemon's own environment may hold secrets (`REDIS_HA_ADVERT_KEY`,
 * `REDIS_HA_REDIS_PASSWORD`, `REDISCLI_AUTH`, ...) and systemd's `NOTIFY_SOCKET`; `ip`,
 * `arping` and `ndptool` need none of them, and a tool that logs or dumps its
 * environment (or runs a helper that does) must not carry them further.
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { basename } from 'node:path';

import { FatalError, RedisHaError } from '../errors.js';

/** Default upper bound on one run; `ip` answers in milliseconds, so 5 s means "wedged". */
export const DEFAULT_TIMEOUT_MS = 5_000;

/** Per-stream cap on captured output, so a chatty or runaway child cannot grow the heap. */
export const MAX_OUTPUT_BYTES = 1024 * 1024;

/** Shell convention for "killed by signal N": exit status 128 + N. */
const SIGNAL_EXIT_BASE = 128;

/** sysexits.h EX_UNAVAILABLE: "a support program or file does not exist". */
export const EXIT_UNAVAILABLE = 69;

/**
 * Which Debian package ships each program we run, for the "install X" hint.
 * Anything not listed gets a generic hint.
 */
export const DEBIAN_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  ip: 'iproute2',
  arping: 'iputils-arping',
  ndptool: 'libndp-tools',
  sysctl: 'procps',
  nft: 'nftables',
  'redis-cli': 'redis-tools',
  'redis-server': 'redis-server',
});

/** The search path a child gets when the daemon has none: systemd's default for services. */
export const DEFAULT_CHILD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The whole environment of every child: the daemon's PATH (so a test or an operator can
 * point at other tools) and the C locale (callers match a few of ip's messages, "File
 * exists": keep them English). Nothing else is passed on.
 */
export function childEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const path = env.PATH;
  return { PATH: path === undefined || path === '' ? DEFAULT_CHILD_PATH : path, LANG: 'C', LC_ALL: 'C' };
}

/** Options of one run. */
export interface RunOptions {
  /** Kill the child (SIGKILL) and reject after this long; default {@link DEFAULT_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** Written to the child's stdin, which is then closed. Without it stdin is closed at once. */
  readonly input?: string;
}

/** How a finished run ended. `code` is the exit status, or 128 + signal number if it was killed. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Handle on a child started with {@link startCommand}. */
export interface RunningCommand {
  /** The child's pid (`undefined` if spawning failed). */
  readonly pid: number | undefined;
  /** Settles exactly like {@link run}; a cancelled child resolves with code 128 + SIGTERM. */
  readonly result: Promise<RunResult>;
  /** Sends SIGTERM if the child is still running; harmless afterwards. */
  cancel(): void;
}

/**
 * The program is not installed (spawn failed with ENOENT). Fatal: a missing capability
 * never fixes itself, so the daemon should stop with this message rather than retry.
 */
export class ProgramMissingError extends FatalError {
  /** The program as it was asked for (`arping`, `/usr/sbin/ip`). */
  readonly program: string;
  /** Debian package that provides it, or `null` if unknown. */
  readonly debianPackage: string | null;

  constructor(program: string, options: { cause?: unknown } = {}) {
    const pkg = DEBIAN_PACKAGES[basename(program)] ?? null;
    const hint = pkg
      ? `install it with: apt-get install -y ${pkg}`
      : 'install it or fix PATH';
    super('PROGRAM_MISSING', `required program "${program}" was not found; ${hint}`, EXIT_UNAVAILABLE, options);
    this.program = program;
    this.debianPackage = pkg;
  }
}

/** A run that did not finish on its own: timed out, or could not be spawned for a reason other than ENOENT. */
export class CommandError extends RedisHaError {
  constructor(code: 'COMMAND_TIMEOUT' | 'COMMAND_SPAWN_FAILED', message: string, options: { cause?: unknown } = {}) {
    super(code, message, { recoverable: true, ...options });
  }
}

/**
 * Runs `cmd args...` (no shell) and resolves with its exit status and output.
 *
 * Never rejects for a non-zero exit. Rejects with {@link ProgramMissingError} when
 * `cmd` does not exist and with {@link CommandError} on timeout (the child is killed).
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return startCommand(cmd, args, opts).result;
}

/**
 * Starts `cmd args...` (no shell) and returns at once with a cancel handle.
 *
 * The child is not detached: it stays in our process group and its stdio is piped,
 * so it cannot outlive its timeout or be orphaned holding a terminal.
 */
export function startCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): RunningCommand {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const child = spawn(cmd, args, {
    shell: false,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: childEnvironment(),
  });

  const result = new Promise<RunResult>((resolve, reject) => {
    const stdout = new OutputBuffer();
    const stderr = new OutputBuffer();
    let settled = false;
    let timedOut = false;

    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };

    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    // A child that exits without reading its input gives EPIPE here; its exit status says what happened.
    child.stdin.on('error', () => undefined);

    child.on('error', (err: NodeJS.ErrnoException) => {
      settle(() => {
        if (err.code === 'ENOENT') reject(new ProgramMissingError(cmd, { cause: err }));
        else reject(new CommandError('COMMAND_SPAWN_FAILED', `could not run ${cmd}: ${err.message}`, { cause: err }));
      });
    });

    // 'close' (not 'exit'): waits for the pipes to drain so stdout/stderr are complete.
    child.on('close', (code, signal) => {
      settle(() => {
        if (timedOut) {
          reject(
            new CommandError(
              'COMMAND_TIMEOUT',
              `${cmd} ${args.join(' ')} did not finish within ${timeoutMs} ms and was killed`,
            ),
          );
          return;
        }
        resolve({ code: exitStatus(code, signal), stdout: stdout.text(), stderr: stderr.text() });
      });
    });

    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });

  return {
    pid: child.pid,
    result,
    cancel(): void {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const signo = signal ? osConstants.signals[signal] : undefined;
  return SIGNAL_EXIT_BASE + (signo ?? 0);
}

/** Collects a stream's chunks up to {@link MAX_OUTPUT_BYTES}, dropping the rest. */
class OutputBuffer {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;

  push(chunk: Buffer): void {
    const room = MAX_OUTPUT_BYTES - this.bytes;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.bytes += kept.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
