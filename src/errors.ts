/**
 * Typed errors. Adapters throw subclasses of `RedisHaError` with a stable `code`;
 * the runtime turns recoverable ones into events for the core. Only a `FatalError`
 * (bad configuration, a missing capability) ends the process.
 */

/** Base of every error redis-ha raises on purpose. */
export class RedisHaError extends Error {
  /** Stable machine-readable code, e.g. `VIP_ADD_FAILED`. */
  readonly code: string;
  /** Whether the daemon can carry on (and retry) after this error. */
  readonly recoverable: boolean;

  constructor(code: string, message: string, options: { recoverable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.recoverable = options.recoverable ?? true;
  }
}

/** Ends the process with a clear message and a non-zero exit status. */
export class FatalError extends RedisHaError {
  /** Exit status to use (78 = EX_CONFIG for configuration problems). */
  readonly exitCode: number;

  constructor(code: string, message: string, exitCode = 1, options: { cause?: unknown } = {}) {
    super(code, message, { recoverable: false, ...options });
    this.exitCode = exitCode;
  }
}

/** EX_CONFIG from sysexits.h: what `check-config` and `run` exit with on a bad configuration. */
export const EXIT_CONFIG = 78;

/** EX_USAGE from sysexits.h: every command's exit status for bad arguments (unknown command or option, missing or malformed value). */
export const EXIT_USAGE = 64;

/** EX_CANTCREAT from sysexits.h: an output file cannot be created (`keygen --out` onto an existing file without `--force`). */
export const EXIT_CANT_CREATE = 73;

/** One or more configuration problems; each message names the key, the expected form and the value given. */
export class ConfigError extends FatalError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], source: string | null) {
    super(
      'CONFIG_INVALID',
      `invalid configuration${source ? ` in ${source}` : ''}:\n  ${problems.join('\n  ')}`,
      EXIT_CONFIG,
    );
    this.problems = problems;
  }
}

/** A Redis command or role change failed. */
export class RedisControlError extends RedisHaError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { recoverable: true, ...options });
  }
}

/** Adding, removing or announcing the VIP failed. */
export class VipError extends RedisHaError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { recoverable: true, ...options });
  }
}

/** The message of anything thrown (an `Error`'s message, anything else as text). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
