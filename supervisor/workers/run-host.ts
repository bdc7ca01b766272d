/**
 * One run on a worker thread: its log writer, its handler, and the requests in progress.
 *
 * Order of work for every record: append to the log first, then hand it to the handler. So the
 * log never depends on the handler, and a handler that is still loading (or restarting) catches
 * up by reading the log from where it stopped (`#delivered`), never from a queue in memory.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  decodeMessage, decodeValue, encodeValue, ErrorCode, Kind, MuxvisorError,
} from '../../protocol/index.js';
import type { FinishInfo, HandlerFactory, RunHandler } from '../handler-api.js';
import { DefaultHandler } from '../recorder/default-handler.js';
import { EntryType } from '../recorder/log-format.js';
import { readRunLog, type ResumePoint } from '../recorder/log-reader.js';
import { RunLogWriter } from '../recorder/log-writer.js';
import type { FinishOrder, OpenOrder } from './batch.js';
import type { RecoveryNote } from './messages.js';
import type { Busy } from './busy.js';
import type { Outbox } from './outbox.js';
import type { PendingRequest, PendingRequests } from './pending-requests.js';
import { RunLog } from './run-log.js';
import { errnoOf, MAX_UNWRITTEN_BYTES, recordedBefore, RETRY_MS, runStorageError } from './storage-trouble.js';

const FINISH_HANDLER_TIMEOUT_MS = 5_000;
/** Records handed to a handler catching up from the log in one slice, before the thread is given back. */
const CATCH_UP_SLICE = 20_000;

export class RunHost {
  readonly slot: number;
  readonly run: string;
  readonly dir: string;
  readonly logPath: string;
  readonly #order: OpenOrder;
  readonly #outbox: Outbox;
  /** The log and its writer (`#log.writer`: read it afresh, `#log.end` may replace it). */
  readonly #log: RunLog;
  readonly #openedAt = Date.now();
  #handler: RunHandler | null = null;
  /** Calls waiting for the handler to load; null once it is ready. */
  #waiting: Array<() => void> | null = [];
  /** Records handed to the handler so far. */
  #delivered = 0;
  /** True for the built-in recorder, which reads the log itself and is handed no records. */
  #isDefault = false;
  #state: 'open' | 'finishing' | 'finished' = 'open';
  /** The worker's requests in progress (shared by its runs). */
  readonly #requests: PendingRequests;
  #finishWaiters: Array<{ conn: number; id: number }> = [];
  #syncWaiters: Array<{ conn: number; id: number }> = [];
  #handlerErrors = 0;
  /** Why the handler could not start, once that is known; the run then fails. */
  #loadError: MuxvisorError | null = null;
  /** What FINISH answered, for a FINISH that comes after the run ended. */
  #result: { run: string; status: string; records: number; bytes: number; log: string } | null = null;
  readonly #busy: Busy;
  /** Set when the 'finished' event is sent (after meta.json says so). */
  #told = false;
  /** While the run's end waits for room on the disk: what its waiters are answered. */
  #stalled: MuxvisorError | null = null;
  /**
   * How the run ended, when its log already held a FINISH as this host resumed it: the worker
   * before wrote it and died before the main thread heard. Nothing is appended to such a log; the
   * FINISH the main thread sends again is answered with what the log says.
   */
  #ended: FinishOrder | null = null;
  /** Settles once the log file exists (RunLogWriter.created): when it rejects, nothing of the run was made. */
  readonly #made: Promise<void>;
  /** Settles once the log is durable and meta.json written as the run opens; rejects with MUXVISOR_STORAGE. */
  readonly #created: Promise<unknown>;

  /** Creates (or reopens, to resume) the run's log now; the handler loads in the background. */
  constructor(slot: number, order: OpenOrder, outbox: Outbox, requests: PendingRequests, busy: Busy, answer: { conn: number; id: number; channel: number } | null) {
    this.slot = slot;
    this.run = order.run;
    this.dir = order.dir;
    this.logPath = join(order.dir, 'run.mvlog');
    this.#order = order;
    this.#outbox = outbox;
    this.#requests = requests;
    this.#busy = busy;
    let recovered: RecoveryNote | null = null;
    let writer: RunLogWriter;
    if (order.resume && existsSync(this.logPath)) {
      let recovery;
      ({ writer, recovery } = RunLogWriter.reopen(this.logPath));
      recovered = { truncatedBytes: recovery.truncatedBytes, tornAt: recovery.torn?.offset ?? null, reason: recovery.torn?.reason ?? null };
      if (recovery.finish !== null) this.#ended = endedAs(recovery.finish);
      else writer.appendEntry(EntryType.Recovered, encodeValue({ time: Date.now(), reason: order.resumeReason ?? 'resumed', truncatedBytes: recovered.truncatedBytes, tornAt: recovered.tornAt, torn: recovered.reason }));
    } else {
      writer = RunLogWriter.create(this.logPath, encodeValue({
        run: order.run, time: this.#openedAt, handler: order.handler ?? null, config: order.config ?? null, client: order.client ?? null,
      }));
    }
    this.#log = new RunLog(writer, slot, this.run, (event) => outbox.event(event));
    // The disk's part of opening goes through the thread pool, so that the other runs on this
    // thread are not held for it: making the directory and the log, their first fsync, and
    // meta.json. A meta.json that cannot be written is reported and does not fail the run (its log
    // is the record).
    this.#made = writer.created;
    this.#created = this.#made.then(() => {
      const meta = this.#ended === null ? this.#log.writeMeta(this.#meta({ state: 'open' })) : null;
      return Promise.all([recovered === null ? this.#log.sync() : null, meta]);
    });
    this.#created.catch(() => undefined); // #load awaits it, after #made
    void this.#load(answer, recovered);
  }

  get records(): number {
    return this.#log.writer.records;
  }

  /** True once the main thread has been told the run finished: the host may be forgotten. */
  get finished(): boolean {
    return this.#told;
  }

  /**
   * Appends `source[start..end)` as record number `index` (low 32 bits); a replayed duplicate is
   * skipped. `source` may be shared memory: nothing here keeps it past the call.
   */
  record(source: Buffer, start: number, end: number, index: number): void {
    if (this.#state !== 'open' || this.#ended !== null) return;
    const expected = this.#log.writer.records;
    const behind = (expected - index) >>> 0;
    if (behind !== 0 && behind < 0x8000_0000) return; // the log already holds it (replay after a restart)
    this.#log.writer.appendRecordFrom(source, start, end);
    if (this.#waiting !== null) return; // the handler catches up from the log once it is ready
    this.#deliver(source, start, end, expected);
  }

  /**
   * Puts appended records into the OS. Called once per batch, also for a batch whose SYNC or
   * FINISH reaches a run whose finish is closing its log (the close writes everything itself, so
   * RunLog.flush does nothing then). Out of space, they stay buffered (storage-trouble.ts); past
   * MAX_UNWRITTEN_BYTES the run fails.
   */
  flushLog(): void {
    const error = this.#log.flush();
    if (error !== null && this.#state === 'open' && this.#log.overflowing) this.#failForSpace(error);
  }

  /** While the log's last flush is being written through the thread pool: when it is in the OS (never rejects). */
  get logWriting(): Promise<void> | null {
    return this.#state === 'finished' ? null : this.#log.writer.writing;
  }

  /** The fsync timer: makes the log durable if it holds anything not yet fsynced (a closing log does so itself). */
  syncIfDirty(): void {
    if (this.#state !== 'finished') this.#log.syncIfDirty();
  }

  request(conn: number, id: number, payload: Buffer, start: number, end: number): void {
    let op: string;
    let args: unknown;
    let timeoutMs: number | undefined;
    try {
      const body = payload.subarray(start, end);
      const m = decodeMessage({ kind: Kind.Request, flags: 0, id, channel: 1, payload: body, source: body, start: 0, end: body.length });
      if (m.kind !== Kind.Request) throw new Error('unreachable');
      ({ op, args, timeoutMs } = m);
    } catch (error) {
      this.#outbox.event({ type: 'badInput', conn, id, error: (error as MuxvisorError).toWire() });
      return;
    }
    const limit = this.#order.requestTimeoutMs;
    const pending = this.#requests.start(conn, id, op, this.run, Math.min(timeoutMs ?? limit, limit));
    if (this.#waiting === null) this.#answer(pending, args);
    else this.#waiting.push(() => this.#answer(pending, args));
  }

  sync(conn: number, id: number): void {
    if (this.#state !== 'open') {
      if (this.#stalled !== null) return this.#outbox.fail(conn, id, this.#stalled);
      if (this.#state === 'finished' && this.#result === null && this.#loadError !== null) return this.#outbox.fail(conn, id, this.#loadError);
      // Finishing: the finish fsyncs everything; answer with the final counts then.
      this.#syncWaiters.push({ conn, id });
      if (this.#state === 'finished') this.#answerSyncWaiters(null);
      return;
    }
    this.#log.sync().then(
      () => this.#outbox.respond(conn, id, { records: this.#log.writer.records, bytes: this.#log.writer.bytes }),
      (error) => this.#outbox.fail(conn, id, error),
    );
  }

  /** Finishes the run once; every FINISH (and the supervisor's own, with conn 0) gets the result. */
  finish(conn: number, id: number, order: FinishOrder): void {
    if (this.#state === 'finished') {
      // A late FINISH (another owner's, sent before it learnt the run had ended): the same result,
      // or, for a run that was never made, the reason.
      if (conn !== 0 && this.#result !== null) this.#outbox.respond(conn, id, this.#result);
      else if (conn !== 0 && this.#loadError !== null) this.#outbox.fail(conn, id, this.#loadError);
      return;
    }
    if (conn !== 0 && this.#stalled !== null) return this.#outbox.fail(conn, id, this.#stalled);
    if (conn !== 0) this.#finishWaiters.push({ conn, id });
    if (this.#state !== 'open') return;
    this.#state = 'finishing';
    this.#whenReady(() => void this.#finish(order));
  }

  async #finish(order: FinishOrder): Promise<void> {
    if (this.#loadError !== null) {
      // The handler never started: whatever the client said, the run failed.
      order = { ...order, status: 'failed', reason: `${this.#loadError.message}${order.reason ? `; ${order.reason}` : ''}` };
    }
    let failure: unknown = null;
    if (this.#ended !== null) {
      await this.#finishEnded();
      return;
    }
    const info: FinishInfo = { ...order, records: this.#log.writer.records };
    try {
      // The default recorder has nothing to do here: its summary is computed when asked for, so
      // finishing a run of millions of records does not decode them all.
      const handler = this.#handler;
      if (handler?.finish) await withTimeout(Promise.resolve(this.#busy.around(() => handler.finish?.(info))), FINISH_HANDLER_TIMEOUT_MS);
    } catch (error) {
      this.#handlerErrors++;
      order = { ...order, reason: `${order.reason ?? ''}${order.reason ? '; ' : ''}handler finish failed: ${(error as Error).message}` };
    }
    const since = Date.now();
    let delay: Record<string, number> = {};
    try {
      const retries = await this.#log.end(order, (error) => this.#stall(error, order));
      if (retries > 0) delay = { finishRetries: retries, finishDelayedMs: Date.now() - since };
    } catch (error) {
      failure = runStorageError(this.run, error, 'the run is recorded as failed');
      this.#log.failed(error);
      // The state must still say how the run ended, if the disk takes that much.
      order = { ...order, status: 'failed', reason: `${order.reason ? `${order.reason}; ` : ''}its log could not be completed: ${(error as Error).message}` };
    }
    await this.#settle(order, failure, delay);
  }

  /** The resumed log already ends with FINISH (`#ended`): close it as it is and report that end. */
  async #finishEnded(): Promise<void> {
    let failure: unknown = null;
    try {
      await this.#log.writer.close();
    } catch (error) {
      // Its FINISH is in the file; only the last fsync failed. Say so, and keep the status it holds.
      failure = runStorageError(this.run, error, 'the run had ended; its log could not be made durable');
      this.#log.failed(error);
    }
    await this.#settle(this.#ended as FinishOrder, failure, {});
  }

  /**
   * The run has ended as `order` says: writes meta.json, then answers its waiters and tells the
   * main thread, in the same turn (one message): a client whose FINISH is answered finds the run
   * ended everywhere (runs.*, meta.json, a new OPEN of the id), and its directory complete.
   */
  async #settle(order: FinishOrder, failure: unknown, delay: Record<string, number>): Promise<void> {
    this.#stalled = null;
    this.#state = 'finished';
    const result = { run: this.run, status: order.status, records: this.#log.writer.records, bytes: this.#log.writer.bytes, log: this.logPath };
    if (failure === null) this.#result = result;
    await this.#log.finalMeta(() => this.#meta({ state: 'finished', ...order, ...delay }));
    for (const { conn, id } of this.#finishWaiters) {
      if (failure === null) this.#outbox.respond(conn, id, result);
      else this.#outbox.fail(conn, id, failure);
    }
    this.#finishWaiters = [];
    this.#answerSyncWaiters(failure);
    const event = { type: 'finished' as const, slot: this.slot, run: this.run, status: order.status, records: result.records, bytes: result.bytes };
    this.#outbox.event(order.reason === undefined ? event : { ...event, reason: order.reason });
    this.#told = true;
  }

  #answerSyncWaiters(failure: unknown): void {
    for (const { conn, id } of this.#syncWaiters) {
      if (failure === null) this.#outbox.respond(conn, id, { records: this.#log.writer.records, bytes: this.#log.writer.bytes });
      else this.#outbox.fail(conn, id, failure, ErrorCode.Storage);
    }
    this.#syncWaiters = [];
  }

  /** The run's end cannot be written yet: FINISH and SYNC waiters hear it now, not when it is. */
  #stall(error: unknown, order: FinishOrder): void {
    const waiting = this.#log.writer.closed ? '' : ` (${this.#log.writer.bufferedBytes} bytes wait in memory)`;
    const end = order.status === 'failed' && order.reason ? `failed: ${order.reason}` : order.status;
    this.#stalled = runStorageError(this.run, error, `the run's end (${end}) is not written yet${waiting}: the supervisor tries again every ${RETRY_MS} ms until there is room for it`);
    for (const { conn, id } of this.#finishWaiters) this.#outbox.fail(conn, id, this.#stalled);
    for (const { conn, id } of this.#syncWaiters) this.#outbox.fail(conn, id, this.#stalled);
    this.#finishWaiters = [];
    this.#syncWaiters = [];
  }

  /**
   * More is waiting than a run may keep for a disk that stays full: drop it (it was never
   * acknowledged) and fail the run; its end is written once there is room.
   */
  #failForSpace(error: unknown): void {
    const bytes = this.#log.writer.bufferedBytes;
    const reason = `its log ${this.logPath} could not be written (${errnoOf(error) ?? (error as Error).message}) and ${bytes} bytes waited, more than the ${MAX_UNWRITTEN_BYTES} a run keeps in memory; they were dropped`;
    this.#log.drop(runStorageError(this.run, error, 'the run failed'));
    this.#outbox.event({ type: 'failing', slot: this.slot, run: this.run, reason });
    this.finish(0, 0, { status: 'failed', reason });
  }

  /** Flush and fsync now (supervisor stopping); a run's end still waiting for room gives up. */
  async close(): Promise<void> {
    if (this.#state !== 'finished') await this.#log.close();
  }

  async #load(answer: { conn: number; id: number; channel: number } | null, recovered: RecoveryNote | null): Promise<void> {
    try {
      await this.#made;
    } catch (error) {
      this.#neverMade(answer, error);
      return;
    }
    try {
      // The OPEN is answered once the run exists on disk; only then is a handler made (its
      // `finish` runs for every handler made, so none is made for a run that never existed).
      await this.#created;
      // A run that had ended gets no handler: nothing more reaches it but the FINISH sent again.
      this.#handler = this.#ended === null ? await this.#createHandler() : null;
      if (!this.#isDefault && this.#handler?.record) await this.#catchUp();
      this.#delivered = this.#log.writer.records;
    } catch (error) {
      const e = error instanceof MuxvisorError ? error : new MuxvisorError(ErrorCode.HandlerError, `handler of run ${this.run} failed to start: ${(error as Error).message}`, { cause: error });
      this.#loadError = e;
      this.#handler = null;
      if (answer) this.#outbox.fail(answer.conn, answer.id, e);
      this.#outbox.event({ type: 'openFailed', slot: this.slot, run: this.run, error: e.toWire() });
      // What waited for the handler runs now, and fails for want of one: queued requests get the
      // error, a queued FINISH finishes the run as failed. If nothing finishes it, this does.
      const waiting = this.#waiting ?? [];
      this.#waiting = null;
      if (this.#state === 'open') this.finish(0, 0, { status: 'failed', reason: e.message });
      for (const call of waiting) call();
      return;
    }
    const waiting = this.#waiting ?? [];
    this.#waiting = null;
    if (answer) this.#outbox.respond(answer.conn, answer.id, { run: this.run, channel: answer.channel, records: this.#log.writer.records });
    this.#outbox.event({ type: 'opened', slot: this.slot, run: this.run, records: this.#log.writer.records, recovered });
    for (const call of waiting) call();
  }

  /**
   * The log could not be made (the run id's log exists already, or the disk refused): nothing of
   * the run exists, and nothing is written for it, so a log that was there stays as it was. The
   * OPEN and whatever waited get the error; the main thread hears the run failed, with 0 records.
   */
  #neverMade(answer: { conn: number; id: number; channel: number } | null, error: unknown): void {
    const e = error instanceof MuxvisorError && error.code === ErrorCode.RunExists
      ? recordedBefore(this.run, this.dir)
      : runStorageError(this.run, error, 'the run could not be opened');
    this.#loadError = e;
    this.#state = 'finished';
    if (answer) this.#outbox.fail(answer.conn, answer.id, e);
    this.#outbox.event({ type: 'openFailed', slot: this.slot, run: this.run, error: e.toWire() });
    const waiting = this.#waiting ?? [];
    this.#waiting = null;
    for (const call of waiting) call();
    this.#answerSyncWaiters(e);
    for (const { conn, id } of this.#finishWaiters) this.#outbox.fail(conn, id, e);
    this.#finishWaiters = [];
    this.#outbox.event({ type: 'finished', slot: this.slot, run: this.run, status: 'failed', reason: e.message, records: 0, bytes: 0 });
    this.#told = true;
  }

  /**
   * Hands the handler every record logged while it loaded (or before a restart), a slice at a
   * time, giving the thread back between slices so that a long log does not look like a hang.
   */
  async #catchUp(): Promise<void> {
    let from: ResumePoint | undefined;
    while (this.#delivered < this.#log.writer.records) {
      this.flushLog();
      await this.#log.writer.writing;
      let read = 0;
      for (const entry of readRunLog(this.logPath, { fromRecord: this.#delivered, from, limit: CATCH_UP_SLICE })) {
        if (entry.type !== EntryType.Record) continue;
        this.#deliver(entry.payload, 0, entry.payload.length, entry.index);
        from = { offset: entry.end, index: entry.index + 1 };
        read++;
      }
      if (read === 0) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async #createHandler(): Promise<RunHandler> {
    const spec = this.#order.handler;
    if (spec === undefined) {
      this.#isDefault = true;
      return new DefaultHandler({
        path: this.logPath,
        flush: () => {
          this.#log.writer.flush();
          return this.#log.writer.writing;
        },
        records: () => this.#log.writer.records,
      });
    }
    const url = spec.startsWith('file:') ? spec : spec.startsWith('/') ? pathToFileURL(spec).href : null;
    if (url === null) {
      throw new MuxvisorError(ErrorCode.InvalidArgument, `handler \`${spec}\` must be an absolute path or a file: URL`, { data: { handler: spec } });
    }
    const module = (await import(url)) as { default?: unknown };
    if (typeof module.default !== 'function') {
      throw new MuxvisorError(ErrorCode.HandlerError, `handler module ${spec} has no default export function (a HandlerFactory)`, { data: { handler: spec } });
    }
    const factory = module.default as HandlerFactory;
    const context = { run: this.run, config: this.#order.config, dir: this.dir, resumed: this.#order.resume };
    return (await this.#busy.around(() => factory(context))) ?? {};
  }

  #deliver(source: Buffer, start: number, end: number, index: number): void {
    this.#delivered = index + 1;
    const handler = this.#handler;
    if (handler === null || !handler.record) return;
    this.#busy.enter();
    try {
      // A copy: `source` may be the shared ring, which msgpackr must not read (run-worker.ts).
      const result = handler.record(decodeValue(Buffer.from(source.subarray(start, end))), index);
      if (result instanceof Promise) result.catch(() => this.#handlerErrors++);
    } catch {
      this.#handlerErrors++;
    } finally {
      this.#busy.leave();
    }
  }

  /** Runs the op and answers, at once when the handler answers synchronously. */
  #answer(pending: PendingRequest, args: unknown): void {
    let result: unknown;
    try {
      if (pending.op === 'echo') {
        result = args;
      } else if (pending.op === 'info') {
        result = {
          run: this.run, state: this.#state, records: this.#log.writer.records, bytes: this.#log.writer.bytes, syncedBytes: this.#log.writer.syncedBytes,
          handler: this.#order.handler ?? 'default', handlerErrors: this.#handlerErrors, openedAt: this.#openedAt,
        };
      } else if (this.#loadError !== null) {
        throw this.#loadError;
      } else if (this.#handler?.request) {
        const handler = this.#handler;
        result = this.#busy.around(() => handler.request?.(pending.op, args, pending));
      } else {
        throw new MuxvisorError(ErrorCode.UnknownOp, `the handler of run ${this.run} answers no requests (op \`${pending.op}\`)`, { data: { op: pending.op, known: ['echo', 'info'] } });
      }
    } catch (error) {
      this.#requests.fail(pending, error);
      return;
    }
    if (result instanceof Promise) {
      result.then((value) => this.#requests.respond(pending, value), (error) => this.#requests.fail(pending, error));
    } else {
      this.#requests.respond(pending, result);
    }
  }

  #whenReady(call: () => void): void {
    if (this.#waiting === null) call();
    else this.#waiting.push(call);
  }

  /** meta.json's content: what the run is, with `fields` (its state) on top. */
  #meta(fields: Record<string, unknown>): Record<string, unknown> {
    return {
      run: this.run, handler: this.#order.handler ?? null, openedAt: this.#openedAt, records: this.#log.writer.records,
      bytes: this.#log.writer.bytes, client: this.#order.client ?? null, updatedAt: Date.now(), supervisorPid: process.pid, ...fields,
    };
  }
}

/** How a run ended, from its log's FINISH entry (written by this code: status and reason, maybe an exit code). */
function endedAs(finish: Uint8Array): FinishOrder {
  const f = decodeValue(finish) as { status?: unknown; reason?: unknown; exitCode?: unknown };
  const status = (['ok', 'failed', 'interrupted', 'crashed'] as const).find((s) => s === f.status) ?? 'crashed';
  const order: FinishOrder = { status };
  if (typeof f.reason === 'string') order.reason = f.reason;
  if (typeof f.exitCode === 'number') order.exitCode = f.exitCode;
  return order;
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
