/**
 * Long work on a thread that serves others, cut into slices of `ms`: between units of work ask
 * `due` (one clock read), and when it is true `await next()`, which gives the event loop back for
 * one turn, throws if `signal` was aborted meanwhile, and starts the next slice.
 */
export class TimeSlices {
  readonly #ms: number;
  readonly #signal: AbortSignal | undefined;
  #start = performance.now();

  constructor(ms: number, signal?: AbortSignal) {
    this.#ms = ms;
    this.#signal = signal;
  }

  /** True once this slice has used its time. */
  get due(): boolean {
    return performance.now() - this.#start > this.#ms;
  }

  async next(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    this.#signal?.throwIfAborted();
    this.#start = performance.now();
  }
}
