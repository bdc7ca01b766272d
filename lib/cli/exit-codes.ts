/**
 * The CLI's exit codes: stable, documented in CLI.md, the same for every command. Scripts branch
 * on them; the messages are for people.
 */
import { ErrorCode, isMuxvisorError } from '../../protocol/index.js';

export const ExitCode = {
  /** Done, and (for reports) nothing is wrong enough to say otherwise. */
  Ok: 0,
  /** Something failed that has no code of its own (the message says what). */
  Failure: 1,
  /** The command line is wrong: unknown command or option, a bad value. */
  Usage: 2,
  /** No supervisor runs for this home (LSB's "program is not running"). */
  NotRunning: 3,
  /** The run, service or op named does not exist. */
  NotFound: 4,
  /** The supervisor refused: bad token, version mismatch, already exists, shutting down. */
  Refused: 5,
  /** A deadline passed before the answer came. */
  Timeout: 6,
  /** The check ran and found problems (`doctor`, `runs verify`). */
  Unhealthy: 7,
  /** A service failed to start or become ready. */
  ServiceFailed: 8,
  /** Ended by SIGINT or SIGTERM while it was not following anything (128 + SIGINT, as shells do). */
  Interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

const byErrorCode: Readonly<Record<string, ExitCode>> = {
  [ErrorCode.Unavailable]: ExitCode.NotRunning,
  [ErrorCode.ConnectionClosed]: ExitCode.NotRunning,
  [ErrorCode.UnknownRun]: ExitCode.NotFound,
  [ErrorCode.UnknownService]: ExitCode.NotFound,
  [ErrorCode.UnknownOp]: ExitCode.NotFound,
  [ErrorCode.BadToken]: ExitCode.Refused,
  [ErrorCode.VersionMismatch]: ExitCode.Refused,
  [ErrorCode.UnsupportedVersion]: ExitCode.Refused,
  [ErrorCode.RunExists]: ExitCode.Refused,
  [ErrorCode.ServiceExists]: ExitCode.Refused,
  [ErrorCode.ShuttingDown]: ExitCode.Refused,
  [ErrorCode.Overloaded]: ExitCode.Refused,
  [ErrorCode.InvalidArgument]: ExitCode.Usage,
  [ErrorCode.Timeout]: ExitCode.Timeout,
  [ErrorCode.ServiceFailed]: ExitCode.ServiceFailed,
};

/** The exit code for an error a command threw. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  if (isMuxvisorError(error)) return byErrorCode[error.code] ?? ExitCode.Failure;
  return ExitCode.Failure;
}

/** An error of the CLI itself (not of the supervisor), with its exit code and a fix to print. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly code: string;
  constructor(exitCode: ExitCode, code: string, message: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.code = code;
  }
}

/** A usage error (exit 2): the command line is wrong, and `message` says how. */
export function usageError(message: string): CliError {
  return new CliError(ExitCode.Usage, 'MUXVISOR_CLI_USAGE', message);
}

/**
 * The whole number a flag's `value` holds, within [min, max]; else a usage error
 * "`flag` must be `expected`, got `value`" (`expected` defaults to "a whole number", with the bounds).
 */
export function wholeNumber(value: string, flag: string, options: { min?: number; max?: number; expected?: string } = {}): number {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = options;
  const n = Number(value);
  if (/^\s*$/.test(value) || !Number.isInteger(n) || n < min || n > max) {
    const bounds = max < Number.MAX_SAFE_INTEGER ? ` ${min}..${max}` : min > 0 ? ` >= ${min}` : '';
    throw usageError(`${flag} must be ${options.expected ?? `a whole number${bounds}`}, got \`${value}\``);
  }
  return n;
}
