/**
 * Many deadlines, one timer: items are kept in buckets of `granularityMs`, and a single timer
 * expires a bucket at a time. Adding and removing cost a Set operation each, where a Node timer
 * per request costs ~0.4 µs and an object for the GC. A deadline fires at its time or up to
 * `granularityMs` later, never earlier.
 *
 * Shared by the client library and the supervisor's workers; it lives in protocol/ because that
 * is the one layer both import. Single-threaded; the timer is unref'd (a pending deadline does
 * not keep a process alive by itself).
 */
/** An item carries its own bucket (0 when not waiting), which saves a map lookup per operation. */
export interface Expiring {
  deadlineBucket: number;
}

export class Deadlines<T extends Expiring> {
  readonly #granularity: number;
  readonly #onExpire: (item: T) => void;
  /** Bucket end time → items due by then. */
  readonly #buckets = new Map<number, Set<T>>();
  #size = 0;
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;

  constructor(onExpire: (item: T) => void, granularityMs = 10) {
    this.#onExpire = onExpire;
    this.#granularity = granularityMs;
  }

  get size(): number {
    return this.#size;
  }

  /** `onExpire(item)` runs `ms` from now (up to the granularity later) unless `delete(item)` first. */
  add(item: T, ms: number): void {
    const at = Math.ceil((Date.now() + ms) / this.#granularity) * this.#granularity;
    let bucket = this.#buckets.get(at);
    if (bucket === undefined) this.#buckets.set(at, (bucket = new Set()));
    if (item.deadlineBucket !== 0) this.delete(item);
    bucket.add(item);
    item.deadlineBucket = at;
    this.#size++;
    if (at < this.#timerAt) this.#arm(at);
  }

  /** Forgets `item`; true if it was waiting. */
  delete(item: T): boolean {
    const at = item.deadlineBucket;
    if (at === 0) return false;
    item.deadlineBucket = 0;
    this.#size--;
    const bucket = this.#buckets.get(at);
    bucket?.delete(item);
    if (bucket?.size === 0) this.#buckets.delete(at);
    return true;
  }

  #arm(at: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - Date.now()));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const [at, bucket] of this.#buckets) {
      if (at > now) {
        next = Math.min(next, at);
        continue;
      }
      this.#buckets.delete(at);
      for (const item of bucket) {
        item.deadlineBucket = 0;
        this.#size--;
        this.#onExpire(item);
      }
    }
    if (next !== Infinity && next < this.#timerAt) this.#arm(next);
  }
}
