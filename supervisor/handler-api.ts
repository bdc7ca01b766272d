/**
 * The interface of a run handler: what a module named in `openRun(id, { handler })` exports.
 *
 * A handler module's default export is a factory. The supervisor calls it once when the run
 * starts, on a worker thread, and again (with `resumed: true`) if the run is restarted on a new
 * worker, in which case every record already in the run's log is replayed to it first.
 *
 * ```ts
 * // my-handler.js
 * export default function create(ctx) {
 *   let best = Infinity;
 *   return {
 *     record(r) { if (typeof r.loss === 'number') best = Math.min(best, r.loss); },
 *     request(op) { if (op === 'best') return best; throw new Error(`unknown op ${op}`); },
 *   };
 * }
 * ```
 *
 * Contracts:
 * - Records are logged durably by the supervisor before the handler sees them, whatever the
 *   handler does with them; the handler never needs to store them to keep them.
 * - `record` is called synchronously, once per record, in order. A promise it returns is not
 *   awaited; if it rejects, the rejection is logged. If it throws, the error is logged and
 *   counted, and the next record is delivered as usual.
 * - `request` answers one REQUEST on the run's channel. Its return value (or what its promise
 *   resolves to) is the result; a throw becomes MUXVISOR_HANDLER_ERROR (a MuxvisorError keeps its
 *   code). `signal` aborts when the caller cancels or the deadline passes; after that the result
 *   is dropped.
 * - `finish` runs once, after the last record, before the run's log is closed.
 * - A handler that blocks its thread (an endless loop) is detected by the worker watchdog: the
 *   worker is replaced and the runs on it restarted from their logs, up to 3 times per run.
 */

export interface HandlerContext {
  /** The run id. */
  run: string;
  /** The `config` given to OPEN, as the client sent it. */
  config: unknown;
  /** The run's own directory; a handler may keep files of its own there. */
  dir: string;
  /** True when the run is being restarted (its logged records are replayed before new ones). */
  resumed: boolean;
}

export interface RequestContext {
  /** Aborts when the request is cancelled or its deadline passes. */
  signal: AbortSignal;
  /** Milliseconds since the epoch after which the answer is no longer wanted. */
  deadline: number;
}

export interface FinishInfo {
  status: 'ok' | 'failed' | 'interrupted' | 'crashed';
  reason?: string;
  exitCode?: number;
  records: number;
}

export interface RunHandler {
  record?(record: unknown, index: number): unknown;
  request?(op: string, args: unknown, context: RequestContext): unknown;
  finish?(info: FinishInfo): unknown;
}

export type HandlerFactory = (context: HandlerContext) => RunHandler | Promise<RunHandler>;
