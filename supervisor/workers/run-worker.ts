/**
 * A run worker thread: hosts the handlers of many runs. Takes batches of entries from the main
 * thread, applies them run by run in turn (each run's in order: lanes.ts) in slices of a few
 * milliseconds, puts the records of each slice into the OS (one write per log), then acknowledges
 * the batches it completed. Sends a heartbeat so the main thread can tell a worker
 * that is busy from one that hangs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeValue, ErrorCode, MuxvisorError } from '../../protocol/index.js';
import { forEachFramePayload, type FinishOrder, Op, type OpenOrder } from './batch.js';
import type { ToWorker } from './messages.js';
import { Outbox } from './outbox.js';
import { PendingRequests } from './pending-requests.js';
import { Busy } from './busy.js';
import { Lanes } from './lanes.js';
import { RunHost } from './run-host.js';

export interface WorkerOptions {
  heartbeatMs: number;
  fsyncIntervalMs: number;
  /** The shared memory batches arrive in (ring.ts). */
  ring: SharedArrayBuffer;
  /** One Int32: the slot whose handler code runs now, 0 when none (read by the watchdog to blame a hang). */
  busy: SharedArrayBuffer;
  /** The largest payload a client accepts: bigger answers are refused, not sent. */
  maxPayloadBytes: number;
}

const options = workerData as WorkerOptions;
const ring = Buffer.from(options.ring);
const busy = new Int32Array(options.busy);
const outbox = new Outbox(options.maxPayloadBytes);
const requests = new PendingRequests(outbox);
const hosts = new Map<number, RunHost>();
const touched = new Set<RunHost>();
/**
 * How long the thread applies entries before it answers, acknowledges and looks for new batches:
 * what a run waits at most for the other runs on its thread, beyond one entry of each.
 */
const SLICE_MS = 4;

/**
 * The payload of an entry, copied out of the ring. msgpackr must never read shared memory: its
 * native string reader misreads a SharedArrayBuffer (and can crash the process on it).
 */
function own(batch: Buffer, start: number, end: number): Buffer {
  return Buffer.from(batch.subarray(start, end));
}

/** Applies one entry. Whatever goes wrong costs that entry's run or request, never the thread. */
function apply(op: number, slot: number, conn: number, id: number, batch: Buffer, start: number, end: number): void {
  try {
    applyEntry(op, slot, conn, id, batch, start, end);
  } catch (error) {
    if (id !== 0 && conn !== 0 && op !== Op.Record && op !== Op.Records && op !== Op.Cancel) outbox.fail(conn, id, error);
    outbox.event({ type: 'entryFailed', slot, op, error: toWire(error) });
  }
}

function applyEntry(op: number, slot: number, conn: number, id: number, batch: Buffer, start: number, end: number): void {
  if (op === Op.Open) {
    const order = decodeValue(own(batch, start, end)) as OpenOrder & { answer?: { conn: number; id: number; channel: number } };
    try {
      hosts.set(slot, new RunHost(slot, order, outbox, requests, new Busy(busy, slot), order.answer ?? null));
    } catch (error) {
      if (order.answer) outbox.fail(order.answer.conn, order.answer.id, error);
      outbox.event({ type: 'openFailed', slot, run: order.run, error: toWire(error) });
      // Nothing of the run exists on this thread: it is over.
      outbox.event({ type: 'finished', slot, run: order.run, status: 'failed', reason: (error as Error).message, records: 0, bytes: 0 });
    }
    return;
  }
  if (op === Op.Cancel) {
    if (id === 0) requests.forgetConnection(conn);
    else requests.cancel(conn, id);
    return;
  }
  const host = hosts.get(slot);
  if (host === undefined) {
    // The run is gone from this thread (it failed to open, or finished): say so to whoever asks.
    if (id !== 0 && (op === Op.Request || op === Op.Sync || op === Op.Finish)) {
      outbox.fail(conn, id, new MuxvisorError(ErrorCode.UnknownRun, `the run on slot ${slot} is no longer hosted (it finished or failed to open)`));
    }
    return;
  }
  switch (op) {
    case Op.Record:
      host.record(batch, start, end, id);
      touched.add(host);
      return;
    case Op.Records: {
      let index = id;
      forEachFramePayload(batch, start, end, (source, s, e) => host.record(source, s, e, index++));
      touched.add(host);
      return;
    }
    case Op.Request: {
      const payload = own(batch, start, end);
      host.request(conn, id, payload, 0, payload.length);
      return;
    }
    case Op.Sync:
      host.flushLog();
      host.sync(conn, id);
      return;
    case Op.Finish:
      host.flushLog();
      host.finish(conn, id, decodeValue(own(batch, start, end)) as FinishOrder);
      return;
  }
}

/** The acks still waiting for pool writes (the last in the chain), or null: acks go in order. */
let ackTail: Promise<void> | null = null;

/**
 * Acknowledges batch `seq` once its records are in the OS: at once, unless a log's flush is being
 * written through the thread pool (`writing`) or an earlier ack still waits; then when those are
 * done. Until then the main thread keeps the batch, to replay it should this thread die.
 */
function ackWhenWritten(seq: number, writing: Array<Promise<void>>): void {
  if (writing.length === 0 && ackTail === null) {
    outbox.ack(seq);
    return;
  }
  const tail: Promise<void> = (ackTail ?? Promise.resolve()).then(() => Promise.all(writing)).then(() => {
    outbox.ack(seq);
    if (ackTail === tail) ackTail = null;
  });
  ackTail = tail;
}

function toWire(error: unknown) {
  const e = error as { code?: string; message?: string; data?: unknown };
  return { code: e.code ?? 'MUXVISOR_INTERNAL', message: e.message ?? String(error), data: e.data };
}

/** Entries received and not yet applied, run by run in turn (lanes.ts). */
const lanes = new Lanes();
/**
 * Pool writes of the flushes since the last ack: a batch completed in a later slice may have had
 * records flushed in an earlier one, and its ack waits for those too.
 */
let writing: Array<Promise<void>> = [];
/** Set while a slice of work is scheduled. */
let sliceScheduled = false;

/**
 * Applies queued entries for up to SLICE_MS, then puts the records of the runs it touched into the
 * OS, acknowledges the batches now complete, and sends the answers. If entries remain, the next
 * slice comes after the event loop has taken in the batches that arrived meanwhile: their runs get
 * their turn in the next round, however much one busy run still has queued.
 */
function slice(untilEmpty = false): void {
  sliceScheduled = false;
  const stopAt = untilEmpty ? Infinity : performance.now() + SLICE_MS;
  lanes.run(apply, () => performance.now() < stopAt);
  for (const host of touched) {
    host.flushLog();
    const w = host.logWriting;
    if (w !== null) writing.push(w);
  }
  touched.clear();
  const done = lanes.done();
  if (done >= 0) {
    ackWhenWritten(done, writing);
    writing = [];
  }
  // Answer now rather than at the end of the turn: the main thread can already pass these
  // answers on while this thread works on what is left.
  outbox.flush();
  if (lanes.pending) scheduleSlice();
}

function scheduleSlice(): void {
  if (sliceScheduled) return;
  sliceScheduled = true;
  setImmediate(slice);
}

parentPort?.on('message', (message: ToWorker) => {
  if (message.type === 'batch') {
    // The entries are views of the batch: each is used (copied, decoded) before the batch's ack;
    // after it the bytes may change.
    lanes.add(message.seq, message.buffer === null ? ring.subarray(message.start, message.start + message.length) : Buffer.from(message.buffer, message.start, message.length));
    // Not applied here: every batch already waiting in this thread's queue is taken in first
    // (one uv callback delivers them all), so that the first slice serves every run in turn.
    scheduleSlice();
    return;
  }
  if (message.type === 'stop') {
    slice(true);
    void Promise.all([...hosts.values()].map((h) => h.close())).then(() => {
      outbox.event({ type: 'stopped' });
      outbox.flush();
    });
  }
});

// Forget finished runs so their slots' memory goes; the main thread reuses no slot numbers.
const forget = setInterval(() => {
  for (const [slot, host] of hosts) if (host.finished) hosts.delete(slot);
}, 1_000);
forget.unref();

const heartbeat = setInterval(() => outbox.event({ type: 'heartbeat' }), options.heartbeatMs);
heartbeat.unref();

const fsyncTimer = setInterval(() => {
  for (const host of hosts.values()) host.syncIfDirty();
}, options.fsyncIntervalMs);
fsyncTimer.unref();
