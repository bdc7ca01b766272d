/**
 * The supervisor's structured log: pino, JSON lines appended to `<home>/logs/supervisor.log`.
 * Children carry bindings (`conn`, `run`, `worker`) instead of text built into messages.
 * Writes are synchronous: the log is never on the record path, and a crash must not eat its
 * last lines. Level: `MUXVISOR_LOG_LEVEL` (trace, debug, info, warn, error, fatal, silent).
 *
 * A log that cannot be written (the home's disk is full, an I/O error) never stops the caller:
 * the lines wait in memory, up to `MAX_PENDING_LOG_BYTES`, and are written with the next line
 * that gets through; lines beyond that are dropped and counted (`droppedLogLines`).
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVEL_ENV = 'MUXVISOR_LOG_LEVEL';
const levels = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

/** The level named by MUXVISOR_LOG_LEVEL, or `fallback` when it is unset or not a level. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env, fallback = 'info'): string {
  const wanted = env[LOG_LEVEL_ENV]?.toLowerCase();
  return wanted !== undefined && levels.has(wanted) ? wanted : fallback;
}

/** Log bytes kept in memory while the log file cannot be written; more are dropped. */
export const MAX_PENDING_LOG_BYTES = 1024 * 1024;

let dropped = 0;

/** Log lines dropped since the process started because the log file could not take them. */
export function droppedLogLines(): number {
  return dropped;
}

/** A logger appending to `path` (created 0600 if missing). `base` goes on every line. */
export function createLogger(path: string, level: string, base: Record<string, unknown>): Logger {
  const destination = pino.destination({ dest: path, sync: true, mkdir: true, mode: 0o600, maxLength: MAX_PENDING_LOG_BYTES });
  // Without a listener, a failed write (ENOSPC) is thrown out of whatever call logged: the
  // supervisor would die of its own log. The unwritten bytes stay queued; the next line retries.
  destination.on('error', () => undefined);
  destination.on('drop', () => dropped++);
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
