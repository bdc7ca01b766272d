/**
 * How many clients the supervisor takes at once, from its limit of open files.
 *
 * Every client holds a file descriptor; so do run logs (one per open run), worker threads (about
 * four each), services (their pipes) and the supervisor's own files. When they run out, accept()
 * fails with EMFILE: libuv then accepts and closes the connection at once, and the client sees a
 * reset it cannot tell from a dead supervisor (it may even try to start another one), while runs
 * that need a descriptor fail. So the supervisor keeps a reserve of descriptors for everything but
 * clients, and answers a client beyond the cap with a typed refusal, MUXVISOR_OVERLOADED, before
 * closing it (PROTOCOL.md section 5).
 *
 * The limit is the soft RLIMIT_NOFILE as the process has it after Node raised it to the hard
 * limit at startup, read from /proc/self/limits. Where that cannot be read there is no cap, and
 * the behaviour is the OS's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { ErrorCode, MuxvisorError } from '../protocol/index.js';

export interface ConnectionBudget {
  /** The soft limit of open files, or null where it cannot be read: then there is no cap. */
  fileLimit: number | null;
  /** Descriptors open when the supervisor began to listen. */
  baseline: number;
  /**
   * Descriptors kept for run logs, worker threads, services and files: a quarter of the limit,
   * 64..1024. (A worker thread opens some 30 module files at once while it starts: a reserve of 32
   * saw workers die of EMFILE when two started together.)
   */
  reserve: number;
  /** Clients taken at once (at least 1), or null for no cap. */
  maxConnections: number | null;
}

/** The soft "Max open files" of /proc/self/limits (`text`), or null when absent or unlimited. */
export function openFileLimit(text: string | null = readLimits()): number | null {
  const match = text === null ? null : /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (match === null || match[1] === 'unlimited') return null;
  return Number(match[1]);
}

/** Open file descriptors of this process, or null where /proc is not there. */
export function openFileCount(): number | null {
  try {
    return readdirSync('/proc/self/fd').length - 1; // the directory being read holds one
  } catch {
    return null;
  }
}

/** The budget for a process with `fileLimit` descriptors, `baseline` of them in use already. */
export function connectionBudget(fileLimit: number | null = openFileLimit(), baseline: number = openFileCount() ?? 0): ConnectionBudget {
  const reserve = fileLimit === null ? 0 : Math.min(1024, Math.max(64, Math.ceil(fileLimit / 4)));
  const maxConnections = fileLimit === null ? null : Math.max(1, fileLimit - baseline - reserve);
  return { fileLimit, baseline, reserve, maxConnections };
}

/** What a client beyond the cap is told, with the numbers and what to do. */
export function tooManyConnections(open: number, budget: ConnectionBudget): MuxvisorError {
  const { fileLimit, reserve, maxConnections } = budget;
  return new MuxvisorError(
    ErrorCode.Overloaded,
    `too many connections: ${open} open, the supervisor takes ${maxConnections} (its limit of open files is ${fileLimit}, ${reserve} of them kept for runs and workers); close some clients, or restart the supervisor with a higher \`ulimit -n\``,
    { data: { connections: open, maxConnections, fileLimit, reserve } },
  );
}

function readLimits(): string | null {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return null;
  }
}
