/**
 * The library's only contact with node:net: one Unix socket, frames in, frames out.
 *
 * Writes: frames sent during a turn of the event loop are copied into a batch buffer and leave in
 * one write at the end of the turn. At most one write is handed to the socket at a time, so at
 * any moment the bytes that have not reached the kernel are known exactly: the unsent tail of the
 * write in flight (libuv's write queue) plus the batches queued behind it. `flushSync()` writes
 * exactly those with blocking semantics; it is what makes `process.exit()` lose nothing.
 */
import { writeSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { copyBytes, ErrorCode, type Frame, FrameDecoder, MuxvisorError } from '../protocol/index.js';
import { aborted, throwIfAborted } from './abort.js';

const BATCH_BYTES = 64 * 1024;

export interface TransportHandlers {
  onFrame(frame: Frame): void;
  /** Called once, when the socket is gone; `error` says why when it was not a clean close. */
  onClose(error: MuxvisorError | null): void;
}

/** Connects to a Unix socket; rejects with the errno code in `data.errno` (ENOENT, ECONNREFUSED...). */
export function openSocket(path: string, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    throwIfAborted(signal, `connecting to ${path}`);
    const socket = netConnect(path);
    const done = (error: MuxvisorError | null) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      if (error === null) resolve(socket);
      else {
        socket.destroy();
        reject(error);
      }
    };
    const onConnect = () => done(null);
    const onError = (error: NodeJS.ErrnoException) =>
      done(new MuxvisorError(ErrorCode.ConnectionClosed, `cannot connect to ${path}: ${error.code ?? error.message}`, { cause: error, data: { errno: error.code, path } }));
    const onAbort = () => done(aborted(signal, `connecting to ${path}`));
    const timer = setTimeout(() => done(new MuxvisorError(ErrorCode.Timeout, `connecting to ${path} took longer than ${timeoutMs} ms`, { data: { path, timeoutMs } })), timeoutMs);
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class Transport {
  readonly #socket: Socket;
  readonly #handlers: TransportHandlers;
  readonly #decoder: FrameDecoder;
  /** The batch being filled this turn. */
  #batch = Buffer.allocUnsafeSlow(BATCH_BYTES);
  #batchLength = 0;
  /** Full batches waiting behind the write in flight. */
  #queue: Buffer[] = [];
  /** The buffers handed to the socket and not yet confirmed written. */
  #inflight: Buffer[] | null = null;
  #flushScheduled = false;
  #closed = false;
  #reported = false;
  /** Bytes given to send() that have not been confirmed written. Drives backpressure. */
  #unconfirmed = 0;
  /** Callers of drained(): each resolves once unconfirmed bytes are at most its `below`. */
  #drainWaiters: Array<{ below: number; resolve: () => void }> = [];
  bytesSent = 0;
  bytesReceived = 0;

  /**
   * With `reuseFrames`, `onFrame` gets one frame object changed in place (FrameDecoder's option):
   * for a handler that is done with each frame when it returns.
   */
  constructor(socket: Socket, handlers: TransportHandlers, options: { maxPayloadBytes?: number; reuseFrames?: boolean } = {}) {
    this.#socket = socket;
    this.#handlers = handlers;
    this.#decoder = new FrameDecoder((f) => handlers.onFrame(f), options);
    socket.on('data', (chunk: Buffer) => {
      this.bytesReceived += chunk.length;
      try {
        this.#decoder.push(chunk);
      } catch (error) {
        this.destroy(error instanceof MuxvisorError ? error : new MuxvisorError(ErrorCode.Internal, (error as Error).message, { cause: error }));
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => this.#gone(new MuxvisorError(ErrorCode.ConnectionClosed, `the connection to the supervisor failed: ${error.code ?? error.message}`, { cause: error })));
    socket.on('close', () => this.#gone(null));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes accepted by send() and not yet confirmed in the kernel. */
  get unconfirmedBytes(): number {
    return this.#unconfirmed;
  }

  /** Queues a frame; it leaves at the end of this turn. The bytes are copied. */
  send(frame: Uint8Array): void {
    this.sendRange(frame as Buffer, 0, frame.length);
  }

  /** Queues the frame in `source[start..end)`; the bytes are copied before this returns. */
  sendRange(source: Uint8Array, start: number, end: number): void {
    if (this.#closed) throw new MuxvisorError(ErrorCode.ConnectionClosed, 'the connection to the supervisor is closed');
    const length = end - start;
    if (this.#batchLength + length > this.#batch.length) this.#rotate(length);
    copyBytes(source, start, end, this.#batch, this.#batchLength);
    this.#batchLength += length;
    this.#unconfirmed += length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Hands what is queued to the socket, unless a write is already in flight (it follows then). */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#inflight !== null || this.#closed) return;
    if (this.#batchLength > 0) this.#rotate(0);
    if (this.#queue.length === 0) return;
    const buffers = this.#queue;
    this.#queue = [];
    this.#inflight = buffers;
    let bytes = 0;
    for (const b of buffers) bytes += b.length;
    const done = (error?: Error | null) => {
      if (error) return; // 'error' and 'close' follow; #gone reports it
      this.#inflight = null;
      this.bytesSent += bytes;
      this.#unconfirmed -= bytes;
      this.#wakeDrainWaiters();
      if (this.#queue.length > 0 || this.#batchLength > 0) this.flush();
    };
    // Corked, the buffers leave in one writev; the last one's callback confirms them all.
    this.#socket.cork();
    buffers.forEach((b, i) => this.#socket.write(b, i === buffers.length - 1 ? done : undefined));
    this.#socket.uncork();
  }

  /**
   * Resolves once at most `belowBytes` of what was sent are not yet in the kernel (by default:
   * everything sent so far is), or the transport closed.
   */
  drained(belowBytes = 0): Promise<void> {
    if (this.#unconfirmed <= belowBytes || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push({ below: belowBytes, resolve }));
  }

  #wakeDrainWaiters(): void {
    if (this.#drainWaiters.length === 0) return;
    const still: Array<{ below: number; resolve: () => void }> = [];
    for (const w of this.#drainWaiters) {
      if (this.#unconfirmed <= w.below || this.#closed) w.resolve();
      else still.push(w);
    }
    this.#drainWaiters = still;
  }

  /**
   * Writes every byte not yet in the kernel, now, blocking this thread (up to `timeoutMs`) while
   * the supervisor reads. For exit paths, where the event loop will not run again.
   * Returns the bytes written.
   */
  flushSync(timeoutMs = 5_000): number {
    if (this.#closed) return 0;
    const handle = (this.#socket as unknown as { _handle?: { fd?: number; writeQueueSize?: number } })._handle;
    const fd = handle?.fd;
    if (fd === undefined || fd < 0) return 0;
    const parts: Buffer[] = [];
    if (this.#inflight !== null) {
      const inflight = Buffer.concat(this.#inflight);
      // libuv has written all but the last `writeQueueSize` bytes of the write in flight.
      const unsent = Math.min(inflight.length, handle?.writeQueueSize ?? inflight.length);
      if (unsent > 0) parts.push(inflight.subarray(inflight.length - unsent));
    }
    parts.push(...this.#queue);
    if (this.#batchLength > 0) parts.push(this.#batch.subarray(0, this.#batchLength));
    const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    const deadline = Date.now() + timeoutMs;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    let at = 0;
    while (at < bytes.length && Date.now() < deadline) {
      try {
        at += writeSync(fd, bytes, at, bytes.length - at);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') break; // EPIPE: the supervisor is gone
        Atomics.wait(pause, 0, 0, 1);
      }
    }
    // The bytes now belong to the kernel; nothing may send them a second time.
    this.#inflight = null;
    this.#queue = [];
    this.#batchLength = 0;
    this.#closed = true;
    return at;
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }

  /**
   * Flushes what is queued, then half-closes; resolves when the socket is closed, or destroys it
   * after `timeoutMs` (a supervisor that neither reads nor closes cannot hold the caller).
   */
  async end(timeoutMs = 5_000): Promise<void> {
    if (this.#closed) return;
    this.#socket.ref(); // the caller is waiting on this close: keep the process alive for it
    const closed = new Promise<void>((resolve) => this.#socket.once('close', () => resolve()));
    const timer = setTimeout(() => this.destroy(new MuxvisorError(ErrorCode.Timeout, `closing the connection took longer than ${timeoutMs} ms`)), timeoutMs);
    try {
      this.flush();
      await this.drained();
      if (!this.#socket.destroyed) this.#socket.end();
      await closed;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes now; queued bytes are dropped. */
  destroy(error: MuxvisorError | null = null): void {
    this.#gone(error);
    this.#socket.destroy();
  }

  #rotate(need: number): void {
    if (this.#batchLength > 0) this.#queue.push(this.#batch.subarray(0, this.#batchLength));
    this.#batch = Buffer.allocUnsafeSlow(Math.max(BATCH_BYTES, need));
    this.#batchLength = 0;
  }

  #gone(error: MuxvisorError | null): void {
    this.#closed = true;
    this.#wakeDrainWaiters();
    if (this.#reported) return;
    this.#reported = true;
    this.#handlers.onClose(error);
  }
}
