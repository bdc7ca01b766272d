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
export class Deadlines<T> {
  readonly #granularity: number;
  readonly #onExpire: (item: T) => void;
  /** Bucket end time → items due by then. */
  readonly #buckets = new Map<number, Set<T>>();
  readonly #bucketOf = new Map<T, number>();
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;

  constructor(onExpire: (item: T) => void, granularityMs = 10) {
    this.#onExpire = onExpire;
    this.#granularity = granularityMs;
  }

  get size(): number {
    return this.#bucketOf.size;
  }

  /** `onExpire(item)` runs `ms` from now (up to the granularity later) unless `delete(item)` first. */
  add(item: T, ms: number): void {
    const at = Math.ceil((Date.now() + ms) / this.#granularity) * this.#granularity;
    let bucket = this.#buckets.get(at);
    if (bucket === undefined) this.#buckets.set(at, (bucket = new Set()));
    bucket.add(item);
    this.#bucketOf.set(item, at);
    if (at < this.#timerAt) this.#arm(at);
  }

  /** Forgets `item`; true if it was waiting. */
  delete(item: T): boolean {
    const at = this.#bucketOf.get(item);
    if (at === undefined) return false;
    this.#bucketOf.delete(item);
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
        this.#bucketOf.delete(item);
        this.#onExpire(item);
      }
    }
    if (next !== Infinity && next < this.#timerAt) this.#arm(next);
  }
}
