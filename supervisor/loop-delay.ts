/**
 * How late the supervisor's main thread runs what is due: every client waits that long on top of
 * the work it asked for, so this is the figure to look at when a client says the supervisor
 * stalls. Node samples it (perf_hooks.monitorEventLoopDelay, every 10 ms); `status` reports the
 * worst and the 99th percentile since the supervisor started, and the worst of the last second.
 *
 * Ownership: one per Supervisor, on its main thread. `tick()` is called once a second, `stop()`
 * when it stops.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopDelayReport {
  /** The longest delay seen since start, in ms. */
  maxMs: number;
  /** The 99th percentile since start, in ms. */
  p99Ms: number;
  /** The longest delay seen in the last whole second, in ms. */
  lastSecondMaxMs: number;
}

const NS_PER_MS = 1e6;
/** How often Node samples. What it records is the time between samples: this much more than the delay. */
const RESOLUTION_MS = 10;

export class LoopDelay {
  readonly #sinceStart: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  readonly #window: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  #lastSecondMaxNs = 0;

  constructor() {
    this.#sinceStart.enable();
    this.#window.enable();
  }

  /** Closes the current one-second window. */
  tick(): void {
    this.#lastSecondMaxNs = this.#window.count > 0 ? this.#window.max : 0;
    this.#window.reset();
  }

  report(): LoopDelayReport {
    const h = this.#sinceStart;
    const ms = (ns: number) => Math.max(0, Math.round((ns / NS_PER_MS - RESOLUTION_MS) * 10) / 10);
    return h.count === 0
      ? { maxMs: 0, p99Ms: 0, lastSecondMaxMs: 0 }
      : { maxMs: ms(h.max), p99Ms: ms(h.percentile(99)), lastSecondMaxMs: ms(this.#lastSecondMaxNs) };
  }

  stop(): void {
    this.#sinceStart.disable();
    this.#window.disable();
  }
}
