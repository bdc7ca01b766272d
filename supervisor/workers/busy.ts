/**
 * The slot whose handler code runs right now on a worker thread, in one shared Int32 that the
 * main thread's watchdog reads when the thread stops answering: a hang is then blamed on that run
 * alone, and the other runs on the thread are restarted without counting against them.
 */
export class Busy {
  readonly #cell: Int32Array;
  readonly #slot: number;

  constructor(cell: Int32Array, slot: number) {
    this.#cell = cell;
    this.#slot = slot;
  }

  enter(): void {
    Atomics.store(this.#cell, 0, this.#slot);
  }

  leave(): void {
    Atomics.store(this.#cell, 0, 0);
  }

  /** Runs the synchronous part of `work` marked busy. */
  around<T>(work: () => T): T {
    this.enter();
    try {
      return work();
    } finally {
      this.leave();
    }
  }
}
