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
import { writeFileAtomic } from '../fs-atomic.js';
import type { FinishInfo, HandlerFactory, RunHandler } from '../handler-api.js';
import { DefaultHandler } from '../recorder/default-handler.js';
import { EntryType } from '../recorder/log-format.js';
import { readRunLog } from '../recorder/log-reader.js';
import { RunLogWriter } from '../recorder/log-writer.js';
import type { FinishOrder, OpenOrder } from './batch.js';
import type { RecoveryNote } from './messages.js';
import type { Outbox } from './outbox.js';

const FINISH_HANDLER_TIMEOUT_MS = 5_000;

interface Pending {
  controller: AbortController;
  timer: NodeJS.Timeout;
}

export class RunHost {
  readonly slot: number;
  readonly run: string;
  readonly dir: string;
  readonly logPath: string;
  readonly #order: OpenOrder;
  readonly #outbox: Outbox;
  readonly #writer: RunLogWriter;
  readonly #openedAt = Date.now();
  #handler: RunHandler | null = null;
  /** Calls waiting for the handler to load; null once it is ready. */
  #waiting: Array<() => void> | null = [];
  /** Records handed to the handler so far. */
  #delivered = 0;
  /** True for the built-in recorder, which reads the log itself and is handed no records. */
  #isDefault = false;
  #state: 'open' | 'finishing' | 'finished' = 'open';
  readonly #requests = new Map<number, Map<number, Pending>>();
  #finishWaiters: Array<{ conn: number; id: number }> = [];
  #syncWaiters: Array<{ conn: number; id: number }> = [];
  #handlerErrors = 0;

  /** Creates (or reopens, to resume) the run's log now; the handler loads in the background. */
  constructor(slot: number, order: OpenOrder, outbox: Outbox, answer: { conn: number; id: number; channel: number } | null) {
    this.slot = slot;
    this.run = order.run;
    this.dir = order.dir;
    this.logPath = join(order.dir, 'run.mvlog');
    this.#order = order;
    this.#outbox = outbox;
    let recovered: RecoveryNote | null = null;
    if (order.resume && existsSync(this.logPath)) {
      const { writer, recovery } = RunLogWriter.reopen(this.logPath);
      this.#writer = writer;
      recovered = { truncatedBytes: recovery.truncatedBytes, tornAt: recovery.torn?.offset ?? null, reason: recovery.torn?.reason ?? null };
      writer.appendEntry(EntryType.Recovered, encodeValue({ time: Date.now(), reason: order.resumeReason ?? 'resumed', truncatedBytes: recovered.truncatedBytes, tornAt: recovered.tornAt, torn: recovered.reason }));
    } else {
      this.#writer = RunLogWriter.create(this.logPath, encodeValue({
        run: order.run, time: this.#openedAt, handler: order.handler ?? null, config: order.config ?? null, client: order.client ?? null,
      }));
    }
    this.#writeMeta({ state: 'open' });
    void this.#load(answer, recovered);
  }

  get records(): number {
    return this.#writer.records;
  }

  get finished(): boolean {
    return this.#state === 'finished';
  }

  /** Appends `source[start..end)` as record number `index` (low 32 bits); a replayed duplicate is skipped. */
  record(source: Buffer, start: number, end: number, index: number): void {
    if (this.#state !== 'open') return;
    const expected = this.#writer.records;
    const behind = (expected - index) >>> 0;
    if (behind !== 0 && behind < 0x8000_0000) return; // the log already holds it (replay after a restart)
    this.#writer.appendRecordFrom(source, start, end);
    if (this.#waiting !== null) return; // the handler catches up from the log once it is ready
    this.#deliver(source, start, end, expected);
  }

  /** Puts appended records into the OS. Called once per batch. */
  flushLog(): void {
    try {
      this.#writer.flush();
    } catch (error) {
      this.#storageFailed(error);
    }
  }

  /** The fsync timer: makes the log durable if it holds anything not yet fsynced. */
  syncIfDirty(): void {
    if (this.#state === 'finished' || this.#writer.syncedBytes >= this.#writer.bytes) return;
    this.#writer.sync().catch((error) => this.#storageFailed(error));
  }

  request(conn: number, id: number, payload: Buffer, start: number, end: number): void {
    let op: string;
    let args: unknown;
    let timeoutMs: number | undefined;
    try {
      const m = decodeMessage({ kind: Kind.Request, flags: 0, id, channel: 1, payload: payload.subarray(start, end) });
      if (m.kind !== Kind.Request) throw new Error('unreachable');
      ({ op, args, timeoutMs } = m);
    } catch (error) {
      this.#outbox.event({ type: 'badInput', conn, id, error: (error as MuxvisorError).toWire() });
      return;
    }
    const limit = this.#order.requestTimeoutMs;
    const ms = Math.min(timeoutMs ?? limit, limit);
    const controller = new AbortController();
    const timer = setTimeout(() => {
      if (this.#take(conn, id)) this.#outbox.fail(conn, id, new MuxvisorError(ErrorCode.Timeout, `request \`${op}\` on run ${this.run} timed out after ${ms} ms`, { data: { op, run: this.run, timeoutMs: ms } }));
      controller.abort(new MuxvisorError(ErrorCode.Timeout, `deadline of ${ms} ms passed`));
    }, ms);
    let forConn = this.#requests.get(conn);
    if (forConn === undefined) this.#requests.set(conn, (forConn = new Map()));
    forConn.set(id, { controller, timer });
    const deadline = Date.now() + ms;
    this.#whenReady(() => this.#answer(conn, id, op, args, controller.signal, deadline));
  }

  cancel(conn: number, id: number): void {
    const pending = this.#take(conn, id);
    if (pending === null) return; // already answered: that answer is the one
    pending.controller.abort(new MuxvisorError(ErrorCode.Cancelled, 'cancelled by the client'));
    this.#outbox.fail(conn, id, new MuxvisorError(ErrorCode.Cancelled, `request ${id} on run ${this.run} was cancelled`));
  }

  sync(conn: number, id: number): void {
    if (this.#state !== 'open') {
      // Finishing: the finish fsyncs everything; answer with the final counts then.
      this.#syncWaiters.push({ conn, id });
      if (this.#state === 'finished') this.#answerSyncWaiters(null);
      return;
    }
    this.#writer.sync().then(
      () => this.#outbox.respond(conn, id, { records: this.#writer.records, bytes: this.#writer.bytes }),
      (error) => {
        this.#storageFailed(error);
        this.#outbox.fail(conn, id, error, ErrorCode.Storage);
      },
    );
  }

  /** Finishes the run once; every FINISH (and the supervisor's own, with conn 0) gets the result. */
  finish(conn: number, id: number, order: FinishOrder): void {
    if (conn !== 0) this.#finishWaiters.push({ conn, id });
    if (this.#state !== 'open') return;
    this.#state = 'finishing';
    this.#whenReady(() => void this.#finish(order));
  }

  async #finish(order: FinishOrder): Promise<void> {
    const info: FinishInfo = { ...order, records: this.#writer.records };
    let failure: unknown = null;
    try {
      if (this.#handler instanceof DefaultHandler) {
        writeFileAtomic(join(this.dir, 'summary.json'), `${JSON.stringify(this.#handler.summary(), jsonSafe, 2)}\n`);
      } else if (this.#handler?.finish) {
        await withTimeout(Promise.resolve(this.#handler.finish(info)), FINISH_HANDLER_TIMEOUT_MS);
      }
    } catch (error) {
      this.#handlerErrors++;
      order = { ...order, reason: `${order.reason ?? ''}${order.reason ? '; ' : ''}handler finish failed: ${(error as Error).message}` };
    }
    try {
      this.#writer.appendEntry(EntryType.Finish, encodeValue({ ...order, time: Date.now(), records: this.#writer.records }));
      await this.#writer.close();
      this.#writeMeta({ state: 'finished', ...order });
    } catch (error) {
      failure = error;
      this.#storageFailed(error);
    }
    this.#state = 'finished';
    const result = { run: this.run, status: order.status, records: this.#writer.records, bytes: this.#writer.bytes, log: this.logPath };
    for (const { conn, id } of this.#finishWaiters) {
      if (failure === null) this.#outbox.respond(conn, id, result);
      else this.#outbox.fail(conn, id, failure, ErrorCode.Storage);
    }
    this.#finishWaiters = [];
    this.#answerSyncWaiters(failure);
    const event = { type: 'finished' as const, slot: this.slot, run: this.run, status: order.status, records: result.records, bytes: result.bytes };
    this.#outbox.event(order.reason === undefined ? event : { ...event, reason: order.reason });
  }

  #answerSyncWaiters(failure: unknown): void {
    for (const { conn, id } of this.#syncWaiters) {
      if (failure === null) this.#outbox.respond(conn, id, { records: this.#writer.records, bytes: this.#writer.bytes });
      else this.#outbox.fail(conn, id, failure, ErrorCode.Storage);
    }
    this.#syncWaiters = [];
  }

  /** Flush and fsync now (supervisor stopping). */
  async close(): Promise<void> {
    if (this.#state !== 'finished') await this.#writer.sync().catch((error) => this.#storageFailed(error));
  }

  async #load(answer: { conn: number; id: number; channel: number } | null, recovered: RecoveryNote | null): Promise<void> {
    try {
      this.#handler = await this.#createHandler();
      // Catch up with every record logged while the handler loaded (or before a restart).
      if (!this.#isDefault && this.#handler.record) {
        this.flushLog();
        for (const entry of readRunLog(this.logPath, { fromRecord: this.#delivered })) {
          if (entry.type === EntryType.Record) this.#deliver(entry.payload, 0, entry.payload.length, entry.index);
        }
      }
      this.#delivered = this.#writer.records;
    } catch (error) {
      const e = error instanceof MuxvisorError ? error : new MuxvisorError(ErrorCode.HandlerError, `handler of run ${this.run} failed to start: ${(error as Error).message}`, { cause: error });
      if (answer) this.#outbox.fail(answer.conn, answer.id, e);
      this.#outbox.event({ type: 'openFailed', slot: this.slot, run: this.run, error: e.toWire() });
      this.#waiting = null;
      this.finish(0, 0, { status: 'failed', reason: e.message });
      return;
    }
    const waiting = this.#waiting ?? [];
    this.#waiting = null;
    if (answer) this.#outbox.respond(answer.conn, answer.id, { run: this.run, channel: answer.channel, records: this.#writer.records });
    this.#outbox.event({ type: 'opened', slot: this.slot, run: this.run, records: this.#writer.records, recovered });
    for (const call of waiting) call();
  }

  async #createHandler(): Promise<RunHandler> {
    const spec = this.#order.handler;
    if (spec === undefined) {
      this.#isDefault = true;
      return new DefaultHandler({ path: this.logPath, flush: () => this.#writer.flush(), records: () => this.#writer.records });
    }
    const url = spec.startsWith('file:') ? spec : spec.startsWith('/') ? pathToFileURL(spec).href : null;
    if (url === null) {
      throw new MuxvisorError(ErrorCode.InvalidArgument, `handler \`${spec}\` must be an absolute path or a file: URL`, { data: { handler: spec } });
    }
    const module = (await import(url)) as { default?: unknown };
    if (typeof module.default !== 'function') {
      throw new MuxvisorError(ErrorCode.HandlerError, `handler module ${spec} has no default export function (a HandlerFactory)`, { data: { handler: spec } });
    }
    return (await (module.default as HandlerFactory)({ run: this.run, config: this.#order.config, dir: this.dir, resumed: this.#order.resume })) ?? {};
  }

  #deliver(source: Buffer, start: number, end: number, index: number): void {
    this.#delivered = index + 1;
    const handler = this.#handler;
    if (handler === null || !handler.record) return;
    try {
      const result = handler.record(decodeValue(source.subarray(start, end)), index);
      if (result instanceof Promise) result.catch(() => this.#handlerErrors++);
    } catch {
      this.#handlerErrors++;
    }
  }

  async #answer(conn: number, id: number, op: string, args: unknown, signal: AbortSignal, deadline: number): Promise<void> {
    let result: unknown;
    try {
      if (op === 'info') {
        result = {
          run: this.run, state: this.#state, records: this.#writer.records, bytes: this.#writer.bytes, syncedBytes: this.#writer.syncedBytes,
          handler: this.#order.handler ?? 'default', handlerErrors: this.#handlerErrors, openedAt: this.#openedAt,
        };
      } else if (this.#handler?.request) {
        result = await this.#handler.request(op, args, { signal, deadline });
      } else {
        throw new MuxvisorError(ErrorCode.UnknownOp, `the handler of run ${this.run} answers no requests (op \`${op}\`)`, { data: { op, known: ['info'] } });
      }
    } catch (error) {
      if (this.#take(conn, id)) this.#outbox.fail(conn, id, error, ErrorCode.HandlerError);
      return;
    }
    if (this.#take(conn, id)) this.#outbox.respond(conn, id, result);
  }

  /** Removes a pending request; null if it was already answered (then nothing more is sent). */
  #take(conn: number, id: number): Pending | null {
    const forConn = this.#requests.get(conn);
    const pending = forConn?.get(id);
    if (forConn === undefined || pending === undefined) return null;
    forConn.delete(id);
    if (forConn.size === 0) this.#requests.delete(conn);
    clearTimeout(pending.timer);
    return pending;
  }

  /** A connection went away: its requests need no answers; abort their work. */
  forgetConnection(conn: number): void {
    const forConn = this.#requests.get(conn);
    if (forConn === undefined) return;
    this.#requests.delete(conn);
    for (const pending of forConn.values()) {
      clearTimeout(pending.timer);
      pending.controller.abort(new MuxvisorError(ErrorCode.Cancelled, 'the client disconnected'));
    }
  }

  #whenReady(call: () => void): void {
    if (this.#waiting === null) call();
    else this.#waiting.push(call);
  }

  #storageFailed(error: unknown): void {
    const e = error instanceof MuxvisorError ? error : new MuxvisorError(ErrorCode.Storage, `run ${this.run}: ${(error as Error).message}`, { cause: error });
    this.#outbox.event({ type: 'storageFailed', slot: this.slot, run: this.run, error: e.toWire() });
  }

  #writeMeta(fields: Record<string, unknown>): void {
    const meta = {
      run: this.run, handler: this.#order.handler ?? null, openedAt: this.#openedAt, records: this.#writer.records,
      bytes: this.#writer.bytes, client: this.#order.client ?? null, updatedAt: Date.now(), supervisorPid: process.pid, ...fields,
    };
    try {
      writeFileAtomic(join(this.dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    } catch (error) {
      this.#storageFailed(error);
    }
  }
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** JSON for summary.json: bigint as string, binary as base64. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer') return Buffer.from((value as { data: number[] }).data).toString('base64');
  return value;
}
