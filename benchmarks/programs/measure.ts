/**
 * The workloads, written once and driven by both the muxvisor client and the raw baseline
 * client, so the two do exactly the same thing and differ only in what is underneath.
 */
import hdr from 'hdr-histogram-js';

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  /** Round trips per second over the whole loop. */
  perSec: number;
}

/** `n` calls one after the other; latency of each in microseconds (an HDR histogram). */
export async function roundTrips(n: number, call: () => Promise<unknown>, warmup = Math.min(1000, n)): Promise<Percentiles> {
  for (let i = 0; i < warmup; i++) await call();
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await call();
    histogram.recordValue(Math.max(1, Number(process.hrtime.bigint() - t) / 1000));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const result = {
    p50: histogram.getValueAtPercentile(50), p90: histogram.getValueAtPercentile(90),
    p99: histogram.getValueAtPercentile(99), p999: histogram.getValueAtPercentile(99.9), perSec: n / seconds,
  };
  histogram.destroy();
  return result;
}

/** `n` calls with `window` of them in flight at all times; calls per second. */
export async function pipelined(n: number, window: number, call: () => Promise<unknown>): Promise<{ perSec: number }> {
  let started = 0;
  const start = process.hrtime.bigint();
  const lane = async () => {
    while (started < n) {
      started++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
  return { perSec: n / (Number(process.hrtime.bigint() - start) / 1e9) };
}

/**
 * Publishes `n` copies of `record` (yielding to the event loop every `yieldEvery`, as a training
 * loop does between steps), then `done()` (finish, or the baseline's final round trip), which
 * must resolve with the number of records the receiver got. Records and MB per second.
 */
export async function publishMany(
  n: number, record: unknown, publish: (r: unknown) => boolean, drain: () => Promise<void>, done: () => Promise<number>, recordBytes: number, yieldEvery = 2000,
): Promise<{ perSec: number; mbPerSec: number }> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (!publish(record)) await drain();
    if (i % yieldEvery === yieldEvery - 1) await new Promise((r) => setImmediate(r));
  }
  const received = await done();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (received !== n) throw new Error(`the receiver got ${received} records, not ${n}`);
  return { perSec: n / seconds, mbPerSec: (n * recordBytes) / seconds / 1e6 };
}

/** `n` times `once()`, each timed; milliseconds. */
export async function timedLoop(n: number, once: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number; perSec: number }> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await once(i);
    histogram.recordValue(Math.max(1, Number(process.hrtime.bigint() - t) / 1000));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const result = { p50: histogram.getValueAtPercentile(50) / 1000, p99: histogram.getValueAtPercentile(99) / 1000, perSec: n / seconds };
  histogram.destroy();
  return result;
}
