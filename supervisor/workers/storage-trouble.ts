/**
 * What a run does when its log cannot be written (the disk is full, a quota is reached, an I/O
 * error): which failures end by themselves, how much a run keeps in memory meanwhile, how the
 * errors read to a client, and how often they are reported (a publisher at full speed meets the
 * failure at every batch; the supervisor log must not get a line for each).
 *
 * The policy (what RELIABILITY.md promises about a full disk):
 * - Out of space (ENOSPC, EDQUOT) on a write: the bytes stay buffered in the run's worker and each
 *   later flush tries again, so a run continues, losing nothing, once space is freed. SYNC and
 *   FINISH are answered MUXVISOR_STORAGE meanwhile.
 * - More than `MAX_UNWRITTEN_BYTES` waiting: the run fails. What is not written is dropped (it
 *   was never acknowledged) and the run's end, `failed` with the reason, is written as soon as
 *   there is room for it.
 * - A FINISH that cannot be written is kept and tried again every `RETRY_MS` until it can be
 *   (or the supervisor stops; the next one then recovers the run as crashed).
 * - Any other failure, and a failed fsync, is final (log-writer.ts says why).
 */
import { ErrorCode, MuxvisorError } from '../../protocol/index.js';
import { ReportThrottle } from '../report-throttle.js';

/** Bytes a run keeps buffered while its log cannot be written; past this the run fails. */
export const MAX_UNWRITTEN_BYTES = 32 * 1024 * 1024;
/** How often a run's end that could not be written is tried again. */
export const RETRY_MS = 250;
/** A run reports its storage failures to the main thread at most this often (the first at once). */
export const REPORT_EVERY_MS = 5_000;

const OUT_OF_SPACE: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

/** The errno of a log writer's error (`data.errno`) or of a Node error (`code`), or null. */
export function errnoOf(error: unknown): string | null {
  const e = error as { data?: { errno?: unknown }; code?: unknown } | null;
  if (typeof e?.data?.errno === 'string') return e.data.errno;
  return typeof e?.code === 'string' && e.code.startsWith('E') && !e.code.startsWith('MUXVISOR') ? e.code : null;
}

/** True for a failed write that freeing space ends (not a failed fsync: that is final). */
export function isOutOfSpace(error: unknown, fsyncFailed: boolean): boolean {
  const errno = errnoOf(error);
  return !fsyncFailed && errno !== null && OUT_OF_SPACE.has(errno);
}

/**
 * The error a client gets: MUXVISOR_STORAGE naming the run, the cause, and what happens next.
 * `next` is the sentence about what the supervisor does now.
 */
export function runStorageError(run: string, error: unknown, next: string): MuxvisorError {
  const e = error instanceof MuxvisorError ? error : null;
  const message = e?.message ?? (error as Error)?.message ?? String(error);
  const data = { ...(typeof e?.data === 'object' && e.data !== null ? e.data : {}), run };
  return new MuxvisorError(ErrorCode.Storage, `run ${run}: ${message}${next ? `; ${next}` : ''}`, { cause: error, data });
}

/** MUXVISOR_RUN_EXISTS for an id whose log is in `dir` already: run ids are never reused. */
export function recordedBefore(run: string, dir: string): MuxvisorError {
  return new MuxvisorError(ErrorCode.RunExists, `run ${run} was recorded before, in ${dir}: choose another id`, { data: { run, open: false, dir } });
}

/** What a client is told while out of space with the run still open. */
export function whileOutOfSpace(): string {
  return `the disk is full: they are written once space is freed (a run keeps up to ${MAX_UNWRITTEN_BYTES} unwritten bytes; beyond that it fails)`;
}

/**
 * Counts a run's storage failures and says which to report: the first one, then at most one per
 * `REPORT_EVERY_MS` carrying how many happened since the last report.
 */
export class FailureReports {
  #failures = 0;
  #firstAt = 0;
  #firstError: string | null = null;
  readonly #reports = new ReportThrottle(REPORT_EVERY_MS);

  /** Failures since the log last wrote everything it was given. */
  get failures(): number {
    return this.#failures;
  }

  /** The first error of the current trouble, for the run's final record. */
  get firstError(): string | null {
    return this.#firstError;
  }

  /** Counts a failure; returns how many it stands for when it should be reported now, else 0. */
  failed(error: unknown, now = Date.now()): number {
    if (this.#failures === 0) {
      this.#firstAt = now;
      this.#firstError = (error as Error)?.message ?? String(error);
    }
    this.#failures++;
    return this.#reports.hit(now);
  }

  /** The log writes again: returns what the trouble was (null if there was none) and forgets it. */
  recovered(now = Date.now()): { failures: number; ms: number } | null {
    if (this.#failures === 0) return null;
    const trouble = { failures: this.#failures, ms: now - this.#firstAt };
    this.#failures = 0;
    this.#reports.reset();
    this.#firstError = null;
    return trouble;
  }
}
