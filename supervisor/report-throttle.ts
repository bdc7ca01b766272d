/**
 * Counts occurrences of one kind of trouble and says when to report them: the first at once,
 * then at most one report per `everyMs`, carrying how many happened since the last one. For
 * log lines that must not flood the log when the same failure repeats thousands of times.
 */
export class ReportThrottle {
  readonly #everyMs: number;
  #since = 0;
  #last = -Infinity;

  constructor(everyMs: number) {
    this.#everyMs = everyMs;
  }

  /** Counts an occurrence; returns how many to report now (0: stay quiet). */
  hit(now = Date.now()): number {
    this.#since++;
    if (now - this.#last < this.#everyMs) return 0;
    this.#last = now;
    const n = this.#since;
    this.#since = 0;
    return n;
  }

  /** Forgets everything: the next occurrence is reported at once. */
  reset(): void {
    this.#since = 0;
    this.#last = -Infinity;
  }
}
