/** The structured messages between the main thread and a run worker (batches carry the bytes). */
import type { WireError } from '../../protocol/index.js';

/** Main thread to worker. */
export type ToWorker =
  /**
   * Entries (batch.ts) numbered by `seq`, counting up per worker: `length` bytes at `start` of
   * the shared ring (workerData.ring), or of `buffer`, shared memory of the batch's own. The worker
   * only reads either, and not after it acknowledged the batch.
   */
  | { type: 'batch'; seq: number; start: number; length: number; buffer: SharedArrayBuffer | null }
  /** Flush and fsync every run log, then answer `{type: 'stopped'}` as an event. */
  | { type: 'stop' };

/** Worker to main thread: one per turn of the worker's event loop. */
export interface FromWorker {
  /** Highest batch seq fully processed with its records in the OS; -1 for none this turn. */
  acked: number;
  events: WorkerEvent[];
  /** Answer frames for connections (batch.ts frame entries). */
  frames: { buffer: ArrayBuffer; length: number } | null;
}

export type WorkerEvent =
  | { type: 'heartbeat' }
  /** The run's handler is ready; `records` were already in its log (resume). */
  | { type: 'opened'; slot: number; run: string; records: number; recovered: RecoveryNote | null }
  /** The run could not start (handler failed to load, log unusable); it is gone from the worker. */
  | { type: 'openFailed'; slot: number; run: string; error: WireError }
  /** The run's log is complete and fsynced; the slot is free. */
  | { type: 'finished'; slot: number; run: string; status: string; reason?: string; records: number; bytes: number }
  /** A connection sent a malformed request: answer it with this error, fatal, and close it. */
  | { type: 'badInput'; conn: number; id: number; error: WireError }
  /** Applying one entry failed (the entry's request, if any, was answered with the error). */
  | { type: 'entryFailed'; slot: number; op: number; error: WireError }
  /**
   * Writing a run's log failed; answers to its sync and finish carry the same error. Reported at
   * most every few seconds per run: `repeats` is how many failures this report stands for.
   */
  | { type: 'storageFailed'; slot: number; run: string; error: WireError; repeats: number }
  /** The run's log takes writes again after `failures` failures over `ms` milliseconds. */
  | { type: 'storageRecovered'; slot: number; run: string; failures: number; ms: number }
  /** The run fails on its own (its log cannot be written): it is finishing now, with `reason`. */
  | { type: 'failing'; slot: number; run: string; reason: string }
  | { type: 'stopped' };

export interface RecoveryNote {
  truncatedBytes: number;
  tornAt: number | null;
  reason: string | null;
}
