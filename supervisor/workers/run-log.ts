/**
 * A run's files as its host uses them: the log's writer (recorder/log-writer.ts), meta.json, and
 * what happens when the disk refuses them (storage-trouble.ts): failures reported sparingly,
 * unwritten bytes kept up to a bound, the run's end tried again until there is room for it.
 *
 * Ownership: one per RunHost, on its worker thread. `writer` is replaced at most once, when a run
 * whose unwritten bytes were dropped has its end written (`end`): read it afresh, never keep it.
 */
import { dirname, join } from 'node:path';
import { encodeValue, type MuxvisorError } from '../../protocol/index.js';
import { replaceFile } from '../fs-atomic.js';
import { EntryType } from '../recorder/log-format.js';
import { RunLogWriter } from '../recorder/log-writer.js';
import type { FinishOrder } from './batch.js';
import type { WorkerEvent } from './messages.js';
import {
  FailureReports, isOutOfSpace, MAX_UNWRITTEN_BYTES, RETRY_MS, runStorageError, whileOutOfSpace,
} from './storage-trouble.js';

export class RunLog {
  readonly path: string;
  readonly #slot: number;
  readonly #run: string;
  readonly #event: (event: WorkerEvent) => void;
  readonly #reports = new FailureReports();
  #writer: RunLogWriter;
  /** Set by `close()` (the supervisor stops): the run's end is not tried again. */
  #stopping = false;
  /** The last meta.json write asked for; the next one starts when it has settled. */
  #metaWrites: Promise<unknown> = Promise.resolve();

  constructor(writer: RunLogWriter, slot: number, run: string, event: (event: WorkerEvent) => void) {
    this.path = writer.path;
    this.#writer = writer;
    this.#slot = slot;
    this.#run = run;
    this.#event = event;
  }

  get writer(): RunLogWriter {
    return this.#writer;
  }

  /** True when more waits unwritten than a run may keep: the run must fail (storage-trouble.ts). */
  get overflowing(): boolean {
    return !this.#writer.closed && this.#writer.bufferedBytes > MAX_UNWRITTEN_BYTES;
  }

  /** Puts what was appended into the OS. Returns the error (already reported) when it could not. */
  flush(): unknown {
    if (this.#writer.closed) return null;
    try {
      this.#writer.flush();
    } catch (error) {
      this.failed(error);
      return error;
    }
    // A flush handed to the thread pool has not written yet: only a writer with no failure left works again.
    if (this.#writer.failed === null) this.#writesAgain();
    return null;
  }

  /** The fsync timer: makes the log durable if it holds anything not yet fsynced. */
  syncIfDirty(): void {
    const w = this.#writer;
    if (w.closed || w.syncedBytes >= w.bytes) return;
    w.sync().then(() => this.#writesAgain(), (error) => this.failed(error));
  }

  /** Resolves once everything appended is durable; rejects with the MUXVISOR_STORAGE a client gets. */
  async sync(): Promise<void> {
    const w = this.#writer;
    try {
      await w.sync();
    } catch (error) {
      this.failed(error);
      throw runStorageError(this.#run, error, isOutOfSpace(error, w.fsyncFailed) && !w.closed ? whileOutOfSpace() : '');
    }
    this.#writesAgain();
  }

  /** Drops what is not written (it was never acknowledged) and closes the file. Returns the bytes dropped. */
  drop(error: MuxvisorError): number {
    const bytes = this.#writer.bufferedBytes;
    this.#writer.destroy(error);
    return bytes;
  }

  /**
   * Writes the FINISH entry for `order` and closes the log, durable. Out of space, it calls
   * `stalled` once (whoever waits hears it now) and tries again every RETRY_MS until there is room,
   * or the supervisor stops; a log whose unwritten bytes were dropped starts again from what its
   * file holds (reopening cuts off an entry the full disk tore). Returns how many attempts failed.
   * Throws the final storage error.
   */
  async end(order: FinishOrder, stalled: (error: unknown) => void): Promise<number> {
    let appendedTo: RunLogWriter | null = null;
    let failures = 0;
    for (;;) {
      try {
        if (this.#writer.closed) this.#writer = RunLogWriter.reopen(this.path).writer;
        if (appendedTo !== this.#writer) {
          this.#writer.appendEntry(EntryType.Finish, encodeValue({ ...order, time: Date.now(), records: this.#writer.records }));
          appendedTo = this.#writer;
        }
        this.#writer.flush();
        // A flush written through the thread pool says how it went at the next flush.
        while (this.#writer.writing !== null) {
          await this.#writer.writing;
          this.#writer.flush();
        }
        break;
      } catch (error) {
        if (this.#stopping || !isOutOfSpace(error, this.#writer.fsyncFailed)) throw error;
        this.failed(error);
        if (failures++ === 0) stalled(error);
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
    await this.#writer.close();
    this.#writesAgain();
    return failures;
  }

  /**
   * Replaces meta.json with `meta`, after every earlier call has settled (so the last one called
   * is the one that stays). Resolves with the error (already reported) when it could not, else null.
   */
  writeMeta(meta: Record<string, unknown>): Promise<unknown> {
    const path = join(dirname(this.path), 'meta.json');
    const text = `${JSON.stringify(meta, null, 2)}\n`;
    const written = this.#metaWrites.then(() => replaceFile(path, text)).then(
      () => null,
      (error: unknown) => {
        this.failed(error);
        return error;
      },
    );
    this.#metaWrites = written;
    return written;
  }

  /** The run's last meta.json, tried again every RETRY_MS while the disk is full (until the supervisor stops). */
  async finalMeta(meta: () => Record<string, unknown>): Promise<void> {
    for (;;) {
      const error = await this.writeMeta(meta());
      if (error === null || this.#stopping || !isOutOfSpace(error, false)) return;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  /** The supervisor stops: makes durable what it can; an end still waiting for room gives up. */
  async close(): Promise<void> {
    this.#stopping = true;
    if (!this.#writer.closed) await this.#writer.sync().catch((error) => this.failed(error));
    await this.#metaWrites;
  }

  /** Counts a storage failure; tells the main thread (which logs it) at most every few seconds. */
  failed(error: unknown): void {
    const repeats = this.#reports.failed(error);
    if (repeats === 0) return;
    const e = runStorageError(this.#run, error, '');
    this.#event({ type: 'storageFailed', slot: this.#slot, run: this.#run, error: e.toWire(), repeats });
  }

  /** A write or fsync went through: if the log had been failing, say that it works again. */
  #writesAgain(): void {
    if (this.#reports.failures === 0) return;
    const trouble = this.#reports.recovered();
    if (trouble !== null) this.#event({ type: 'storageRecovered', slot: this.#slot, run: this.#run, ...trouble });
  }
}
