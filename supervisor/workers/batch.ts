/**
 * The byte format between the supervisor's main thread and a run worker. The main thread copies
 * each record's payload bytes into a batch without decoding them; the batches of one turn of the
 * event loop reach the worker as places in shared memory (ring.ts). Answers come back as a
 * transferred ArrayBuffer of frames.
 *
 * ```
 * to a worker, per entry:   u8 op | 3 × u8 0 | u32 slot | u32 conn | u32 id | u32 length | payload
 * from a worker, per frame: u32 conn | u32 length | frame (header and payload, ready to write)
 * ```
 * All integers little-endian. `slot` names a run within its worker; `conn` a client connection;
 * `id` is a request id, or for RECORD the run's record index (low 32 bits) so that a replay after a
 * worker restart can skip what the log already holds.
 */
import { copyBytes } from '../../protocol/index.js';

export const ENTRY_HEADER_BYTES = 20;
export const FRAME_ENTRY_HEADER_BYTES = 8;

export const Op = {
  /** payload: the record's msgpack bytes as the client sent them. */
  Record: 1,
  /** payload: the REQUEST frame's payload (op, args, timeoutMs). */
  Request: 2,
  /** no payload; answered when the records before it are fsynced. */
  Sync: 3,
  /** payload: msgpack FinishOrder. id 0 when the supervisor finishes the run itself. */
  Finish: 4,
  /** no payload; the request `id` of `conn` is no longer wanted. With id 0: `conn` is gone. */
  Cancel: 5,
  /** payload: msgpack OpenOrder. */
  Open: 6,
  /**
   * payload: consecutive PUBLISH frames for one run, exactly as they arrived (16-byte header and
   * payload each); id is the run's record index of the first. One copy for many records.
   */
  Records: 7,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

/** What a worker needs to start hosting a run. */
export interface OpenOrder {
  run: string;
  /** The run's directory: the log and the handler's own files live there. */
  dir: string;
  /** Absolute path or package name of a handler module; absent for the default recorder. */
  handler?: string;
  config?: unknown;
  /** Reopen the log if it exists (worker restart, a run left open by a dead supervisor); else create it. */
  resume: boolean;
  /** Why it resumes, written into the log's RECOVERED note. */
  resumeReason?: string;
  /** Who opened it, for the log's OPEN entry. */
  client?: { pid: number; name: string };
  requestTimeoutMs: number;
  fsyncIntervalMs: number;
}

/** How a run ends: as the client said (ok, failed, interrupted), or crashed. */
export interface FinishOrder {
  status: 'ok' | 'failed' | 'interrupted' | 'crashed';
  reason?: string;
  exitCode?: number;
}

/**
 * A growable buffer of entries for one worker. Single owner: the main thread's pool. With `shared`
 * its memory is a SharedArrayBuffer: a batch can then be posted to the worker and kept for a replay
 * without a copy (the worker only reads it).
 */
export class BatchBuilder {
  readonly #initialBytes: number;
  readonly #shared: boolean;
  #buffer: Buffer = EMPTY;
  #length = 0;

  constructor(initialBytes = 256 * 1024, shared = false) {
    this.#initialBytes = initialBytes;
    this.#shared = shared;
  }

  get length(): number {
    return this.#length;
  }

  /** Appends one entry whose payload is `source[start..end)`. */
  add(op: Op, slot: number, conn: number, id: number, source: Buffer | null, start = 0, end = 0): void {
    const size = ENTRY_HEADER_BYTES + (end - start);
    if (this.#length + size > this.#buffer.length) this.#grow(size);
    writeEntry(this.#buffer, this.#length, op, slot, conn, id, source, start, end);
    this.#length += size;
  }

  /**
   * Hands over the bytes built so far, alone in their (Shared)ArrayBuffer, and starts afresh:
   * the next `add` allocates anew, so what was handed over is never written again.
   */
  take(): Buffer {
    const out = this.#buffer.subarray(0, this.#length);
    this.#buffer = EMPTY;
    this.#length = 0;
    return out;
  }

  #grow(need: number): void {
    const size = Math.max(this.#initialBytes, this.#buffer.length * 2, this.#length + need);
    const next = this.#shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafeSlow(size);
    this.#buffer.copy(next, 0, 0, this.#length);
    this.#buffer = next;
  }
}

const EMPTY = Buffer.alloc(0);

/** Writes one entry at `at` of `target`; the caller made room for its header and payload. */
export function writeEntry(target: Buffer, at: number, op: Op, slot: number, conn: number, id: number, source: Buffer | null, start: number, end: number): void {
  target.writeUInt32LE(op, at); // op in the low byte, three zero bytes after it
  target.writeUInt32LE(slot, at + 4);
  target.writeUInt32LE(conn, at + 8);
  target.writeUInt32LE(id >>> 0, at + 12);
  target.writeUInt32LE(end - start, at + 16);
  if (source !== null && end > start) copyBytes(source, start, end, target, at + ENTRY_HEADER_BYTES);
}

/** Calls `visit` for the payload of every frame in `source[start..end)` (an Op.Records payload). */
export function forEachFramePayload(source: Buffer, start: number, end: number, visit: (source: Buffer, start: number, end: number) => void): void {
  for (let at = start; at < end; ) {
    const payloadStart = at + 16;
    const payloadEnd = payloadStart + source.readUInt32LE(at + 4);
    visit(source, payloadStart, payloadEnd);
    at = payloadEnd;
  }
}

/** Calls `visit` for every entry of a batch, in order. `payload` is a view: copy it to keep it. */
export function forEachEntry(
  batch: Buffer,
  visit: (op: number, slot: number, conn: number, id: number, batch: Buffer, start: number, end: number) => void,
): void {
  let at = 0;
  while (at < batch.length) {
    const length = batch.readUInt32LE(at + 16);
    const start = at + ENTRY_HEADER_BYTES;
    visit(batch[at] as number, batch.readUInt32LE(at + 4), batch.readUInt32LE(at + 8), batch.readUInt32LE(at + 12), batch, start, start + length);
    at = start + length;
  }
}

/** Frames from a worker, addressed to connections. Single owner: the worker's outbox. */
export class FrameBatchBuilder {
  #buffer = Buffer.allocUnsafeSlow(64 * 1024);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Appends the frame in `source[start..end)` for connection `conn` (copied). */
  add(conn: number, source: Uint8Array, start: number, end: number): void {
    const size = FRAME_ENTRY_HEADER_BYTES + (end - start);
    if (this.#length + size > this.#buffer.length) {
      const next = Buffer.allocUnsafeSlow(Math.max(this.#buffer.length * 2, this.#length + size));
      this.#buffer.copy(next, 0, 0, this.#length);
      this.#buffer = next;
    }
    this.#buffer.writeUInt32LE(conn, this.#length);
    this.#buffer.writeUInt32LE(end - start, this.#length + 4);
    copyBytes(source, start, end, this.#buffer, this.#length + FRAME_ENTRY_HEADER_BYTES);
    this.#length += size;
  }

  take(): Buffer {
    const out = this.#buffer.subarray(0, this.#length);
    this.#buffer = Buffer.allocUnsafeSlow(64 * 1024);
    this.#length = 0;
    return out;
  }
}

export function forEachFrame(batch: Buffer, visit: (conn: number, frame: Buffer) => void): void {
  let at = 0;
  while (at < batch.length) {
    const length = batch.readUInt32LE(at + 4);
    const start = at + FRAME_ENTRY_HEADER_BYTES;
    visit(batch.readUInt32LE(at), batch.subarray(start, start + length));
    at = start + length;
  }
}
