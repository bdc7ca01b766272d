/**
 * A worker's way back to the main thread: answer frames for connections, events, and the
 * acknowledgement of batches, gathered during one turn of the worker's event loop and posted as
 * one message at its end.
 */
import { parentPort } from 'node:worker_threads';
import { encodeFrameScratch, encodeMessage, ErrorCode, HEADER_BYTES, Kind, MuxvisorError } from '../../protocol/index.js';
import { FrameBatchBuilder } from './batch.js';
import type { WorkerEvent, FromWorker } from './messages.js';

export class Outbox {
  /** Answers bigger than this are replaced by an error: the client would refuse the frame. */
  readonly #maxPayloadBytes: number;
  readonly #frames = new FrameBatchBuilder();
  /** The header of every RESPONSE; only its id changes. */
  readonly #response = { kind: Kind.Response as number, flags: 0, id: 0, channel: 0 };

  constructor(maxPayloadBytes: number) {
    this.#maxPayloadBytes = maxPayloadBytes;
  }
  #events: WorkerEvent[] = [];
  #acked = -1;
  #scheduled = false;

  /** A RESPONSE to request `id` of connection `conn`. */
  respond(conn: number, id: number, result: unknown): void {
    try {
      this.#response.id = id;
      const frame = encodeFrameScratch(this.#response, result);
      const size = frame.end - frame.start - HEADER_BYTES;
      if (size > this.#maxPayloadBytes) {
        this.fail(conn, id, new MuxvisorError(ErrorCode.InvalidArgument, `the answer to request ${id} is ${size} bytes, more than the ${this.#maxPayloadBytes}-byte limit of a frame: ask for less`, {
          data: { bytes: size, limit: this.#maxPayloadBytes },
        }));
        return;
      }
      this.#frames.add(conn, frame.buffer, frame.start, frame.end);
    } catch (error) {
      this.fail(conn, id, error);
      return;
    }
    this.#schedule();
  }

  /** An ERROR answering request `id` of `conn`; a non-MuxvisorError becomes `fallback`. */
  fail(conn: number, id: number, error: unknown, fallback: ErrorCode = ErrorCode.Internal): void {
    const e = error instanceof MuxvisorError ? error : new MuxvisorError(fallback, (error as Error)?.message ?? String(error), { cause: error });
    const frame = encodeMessage({ kind: Kind.Error, id, error: e.toWire(), fatal: false });
    this.#frames.add(conn, frame, 0, frame.length);
    this.#schedule();
  }

  event(event: WorkerEvent): void {
    this.#events.push(event);
    this.#schedule();
  }

  /** Every batch up to `seq` is processed and its records are in the OS (flushed). */
  ack(seq: number): void {
    this.#acked = seq;
    this.#schedule();
  }

  /** Posts what is pending now, without waiting for the end of the turn. */
  flush(): void {
    this.#scheduled = false;
    if (this.#frames.length === 0 && this.#events.length === 0 && this.#acked < 0) return;
    const message: FromWorker = { acked: this.#acked, events: this.#events, frames: null };
    const transfer: ArrayBuffer[] = [];
    if (this.#frames.length > 0) {
      const frames = this.#frames.take();
      message.frames = { buffer: frames.buffer as ArrayBuffer, length: frames.length };
      transfer.push(frames.buffer as ArrayBuffer);
    }
    this.#events = [];
    this.#acked = -1;
    parentPort?.postMessage(message, transfer);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }
}
