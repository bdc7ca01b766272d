/**
 * Batches from the main thread to one worker through a ring of shared memory. The main thread
 * writes entries (batch.ts layout) into the ring and posts only where a batch lies; the space is
 * free again when the worker acknowledges that batch. Until then the bytes stay where they are,
 * so a replacement worker can be handed them again (`retained`).
 *
 * An entry goes to a buffer of its own (shared memory too, "heap" below) instead when the ring has
 * no room for it or it is larger than a quarter of the ring; from then until the next `take()` every entry does, so order is kept:
 * a turn's batches are its ring segments, then its heap buffer.
 *
 * Single owner: the main thread's pool. Not thread-safe; the worker only reads what it was told.
 * Whoever reads entries must copy a payload out before msgpackr decodes it (run-worker.ts).
 */
import { BatchBuilder, type Op, writeEntry, ENTRY_HEADER_BYTES } from './batch.js';

/** A batch ready to post: a segment of the ring, or a buffer of shared memory of its own. */
export type Batch = { seq: number; ring: { start: number; length: number } } | { seq: number; heap: Buffer };

type Posted = { seq: number; start: number; length: number; cost: number } | { seq: number; heap: Buffer };

export class RingBatches {
  readonly shared: SharedArrayBuffer;
  readonly #ring: Buffer;
  readonly #size: number;
  /** Where the next entry goes. */
  #tail = 0;
  /** The segment being filled this turn: start, length, and the ring bytes it uses (padding included). */
  #open = { start: 0, length: 0, cost: 0 };
  /** Segments closed this turn (the ring wrapped) and not yet taken. */
  #closed: Array<{ start: number; length: number; cost: number }> = [];
  #heap: BatchBuilder | null = null;
  /** Ring bytes in use: posted and unacknowledged, closed, and open. */
  #used = 0;
  readonly #posted: Posted[] = [];
  #seq = 0;

  constructor(size: number) {
    this.shared = new SharedArrayBuffer(size);
    this.#ring = Buffer.from(this.shared);
    this.#size = size;
  }

  /** Bytes waiting to be taken or acknowledged. */
  get backlogBytes(): number {
    let heap = 0;
    for (const p of this.#posted) if ('heap' in p) heap += p.heap.length;
    return this.#used + heap + (this.#heap?.length ?? 0);
  }

  /** Entries added since the last take(). */
  pendingEntries = 0;

  /** Bytes added since the last take(). */
  get pendingBytes(): number {
    return this.#open.length + this.#closed.reduce((n, c) => n + c.length, 0) + (this.#heap?.length ?? 0);
  }

  add(op: Op, slot: number, conn: number, id: number, source: Buffer | null, start: number, end: number): void {
    this.pendingEntries++;
    const n = ENTRY_HEADER_BYTES + (end - start);
    if (this.#heap === null && n <= this.#size / 4) {
      const at = this.#reserve(n);
      if (at >= 0) {
        writeEntry(this.#ring, at, op, slot, conn, id, source, start, end);
        return;
      }
    }
    this.#heap ??= new BatchBuilder(Math.max(64 * 1024, n), true);
    this.#heap.add(op, slot, conn, id, source, start, end);
  }

  /** The batches added since the last take, in order, now counted as posted. */
  take(): Batch[] {
    this.pendingEntries = 0;
    const out: Batch[] = [];
    // Padding with no entry after it yet stays counted, carried by the next segment, until
    // everything before it is acknowledged.
    const carried = this.#open.length > 0 ? 0 : this.#open.cost;
    if (this.#open.length > 0) this.#closed.push(this.#open);
    this.#open = { start: this.#tail, length: 0, cost: carried };
    for (const segment of this.#closed) {
      const seq = this.#seq++;
      this.#posted.push({ seq, ...segment });
      out.push({ seq, ring: { start: segment.start, length: segment.length } });
    }
    this.#closed = [];
    if (this.#heap !== null && this.#heap.length > 0) {
      const seq = this.#seq++;
      // Shared memory that the worker only reads: posted and kept as it is until acknowledged.
      // (A copy of a 16 MiB record here cost this thread ~5 ms, and as much memory again.)
      const heap = this.#heap.take();
      this.#posted.push({ seq, heap });
      out.push({ seq, heap });
    }
    this.#heap = null;
    return out;
  }

  /** The worker processed every batch up to `seq`: their space is free. */
  acked(seq: number): void {
    while (this.#posted.length > 0 && (this.#posted[0] as Posted).seq <= seq) {
      const p = this.#posted.shift() as Posted;
      if (!('heap' in p)) this.#used -= p.cost;
    }
    if (this.#posted.length === 0 && this.#closed.length === 0 && this.#open.length === 0) {
      // Nothing outstanding: start again at the beginning, so the ring's first pages stay warm.
      this.#used = 0;
      this.#tail = 0;
      this.#open = { start: 0, length: 0, cost: 0 };
    }
  }

  /** Copies of every batch not yet acknowledged, in order, and a fresh start (the worker died). */
  retained(): Buffer[] {
    if (this.#open.length > 0) this.#closed.push(this.#open);
    const copies: Buffer[] = [];
    for (const p of this.#posted) copies.push('heap' in p ? p.heap : Buffer.from(this.#ring.subarray(p.start, p.start + p.length)));
    for (const c of this.#closed) copies.push(Buffer.from(this.#ring.subarray(c.start, c.start + c.length)));
    if (this.#heap !== null && this.#heap.length > 0) copies.push(this.#heap.take());
    this.#posted.length = 0;
    this.#closed = [];
    this.#heap = null;
    this.#used = 0;
    this.#tail = 0;
    this.#open = { start: 0, length: 0, cost: 0 };
    return copies;
  }

  /** Offset for `n` contiguous bytes, or -1 when the ring has no room for them now. */
  #reserve(n: number): number {
    const free = this.#size - this.#used;
    if (this.#tail + n <= this.#size) {
      if (n > free) return -1;
    } else {
      // Not enough room before the end: skip to the start, closing the open segment there.
      const pad = this.#size - this.#tail;
      if (pad + n > free) return -1;
      const carried = this.#open.length > 0 ? 0 : this.#open.cost;
      if (this.#open.length > 0) this.#closed.push(this.#open);
      this.#used += pad;
      this.#open = { start: 0, length: 0, cost: carried + pad };
      this.#tail = 0;
    }
    const at = this.#tail;
    this.#tail += n;
    this.#used += n;
    this.#open.length += n;
    this.#open.cost += n;
    return at;
  }
}
