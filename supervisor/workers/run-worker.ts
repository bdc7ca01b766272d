/**
 * A run worker thread: hosts the handlers of many runs. Takes batches of entries from the main
 * thread in order, applies each to its run, puts every record of the batch into the OS (one write
 * per log), then acknowledges the batch. Sends a heartbeat so the main thread can tell a worker
 * that is busy from one that hangs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeValue } from '../../protocol/index.js';
import { forEachEntry, type FinishOrder, Op, type OpenOrder } from './batch.js';
import type { ToWorker } from './messages.js';
import { Outbox } from './outbox.js';
import { RunHost } from './run-host.js';

export interface WorkerOptions {
  heartbeatMs: number;
  fsyncIntervalMs: number;
}

const options = workerData as WorkerOptions;
const outbox = new Outbox();
const hosts = new Map<number, RunHost>();
const touched = new Set<RunHost>();

function apply(op: number, slot: number, conn: number, id: number, batch: Buffer, start: number, end: number): void {
  if (op === Op.Open) {
    const order = decodeValue(batch.subarray(start, end)) as OpenOrder & { answer?: { conn: number; id: number; channel: number } };
    try {
      hosts.set(slot, new RunHost(slot, order, outbox, order.answer ?? null));
    } catch (error) {
      if (order.answer) outbox.fail(order.answer.conn, order.answer.id, error);
      outbox.event({ type: 'openFailed', slot, run: order.run, error: toWire(error) });
    }
    return;
  }
  const host = hosts.get(slot);
  if (host === undefined) return; // the run failed to open: its OPEN was answered with the reason
  switch (op) {
    case Op.Record:
      host.record(batch, start, end, id);
      touched.add(host);
      return;
    case Op.Request:
      host.request(conn, id, batch, start, end);
      return;
    case Op.Sync:
      host.flushLog();
      host.sync(conn, id);
      return;
    case Op.Finish:
      host.flushLog();
      host.finish(conn, id, decodeValue(batch.subarray(start, end)) as FinishOrder);
      return;
    case Op.Cancel:
      if (id === 0) host.forgetConnection(conn);
      else host.cancel(conn, id);
      return;
  }
}

function toWire(error: unknown) {
  const e = error as { code?: string; message?: string; data?: unknown };
  return { code: e.code ?? 'MUXVISOR_INTERNAL', message: e.message ?? String(error), data: e.data };
}

parentPort?.on('message', (message: ToWorker) => {
  if (message.type === 'batch') {
    forEachEntry(Buffer.from(message.buffer, 0, message.length), apply);
    for (const host of touched) host.flushLog();
    touched.clear();
    outbox.ack(message.seq);
    return;
  }
  if (message.type === 'stop') {
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
