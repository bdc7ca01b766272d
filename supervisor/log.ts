/**
 * The supervisor's structured log: pino, JSON lines appended to `<home>/logs/supervisor.log`.
 * Children carry bindings (`conn`, `run`, `worker`) instead of text built into messages.
 * Writes are synchronous: the log is never on the record path, and a crash must not eat its
 * last lines. Level: `MUXVISOR_LOG_LEVEL` (trace, debug, info, warn, error, fatal, silent).
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

/** A logger appending to `path` (created 0600 if missing). `base` goes on every line. */
export function createLogger(path: string, level: string, base: Record<string, unknown>): Logger {
  const destination = pino.destination({ dest: path, sync: true, mkdir: true, mode: 0o600 });
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
