/**
 * The one writer of a client socket. Frames queued during a turn of the event loop leave in one
 * `socket.write` at its end (or sooner, once 256 KiB have gathered), so a burst of answers costs
 * one system call, not one per frame.
 */
import type { Socket } from 'node:net';

const EAGER_FLUSH_BYTES = 256 * 1024;

const dirty = new Set<FrameWriter>();
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  for (const writer of dirty) writer.flush();
  dirty.clear();
}

export class FrameWriter {
  readonly #socket: Socket;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #ended = false;
  /** Bytes handed to the socket so far. */
  bytesWritten = 0;
  framesWritten = 0;

  /** Called once, when a write fails (the peer is gone), before Node destroys the socket. */
  readonly #onFailed: ((error: Error) => void) | null;
  readonly #afterWrite = (error?: Error | null) => {
    if (error == null || this.#ended) return;
    this.#ended = true;
    this.#chunks = [];
    this.#bytes = 0;
    this.#onFailed?.(error);
  };

  /**
   * `onFailed` runs when a write fails, while the socket is still open: Node destroys it right
   * after (stream contract: a write's callback comes before the error destroys the stream).
   */
  constructor(socket: Socket, onFailed: ((error: Error) => void) | null = null) {
    this.#socket = socket;
    this.#onFailed = onFailed;
  }

  /** Queues a frame. The caller must not change `frame`'s bytes afterwards (it is not copied). */
  write(frame: Buffer): void {
    if (this.#ended) return;
    this.#chunks.push(frame);
    this.#bytes += frame.length;
    this.framesWritten++;
    if (this.#bytes >= EAGER_FLUSH_BYTES) this.flush();
    else {
      dirty.add(this);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flushAll);
      }
    }
  }

  /** Bytes queued here or in the socket and not yet taken by the kernel. */
  get pendingBytes(): number {
    return this.#bytes + this.#socket.writableLength;
  }

  flush(): void {
    if (this.#bytes === 0 || this.#socket.destroyed) return;
    const out = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks, this.#bytes);
    this.#chunks = [];
    this.bytesWritten += this.#bytes;
    this.#bytes = 0;
    this.#socket.write(out, this.#afterWrite);
  }

  /** Flushes, then half-closes the socket once the kernel has everything; nothing more is written. */
  end(): void {
    if (this.#ended) return;
    this.flush();
    this.#ended = true;
    dirty.delete(this);
    if (!this.#socket.destroyed) this.#socket.end();
  }
}
