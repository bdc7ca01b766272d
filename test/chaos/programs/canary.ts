/**
 * The canary: a well-behaved client that keeps working beside whatever a chaos section does to
 * the supervisor, and reports every error and how long its calls took.
 *
 * Spec (argv[2], JSON): `{ home, intervalMs?: 10, windowMs?: 1000, timeoutMs?: 5000 }`.
 * It connects without starting a supervisor, opens the run `canary-<pid>` and prints
 * `{"event":"ready"}`. Then, every `intervalMs`, it makes one round: a PING, one published
 * record, and a request to its run (`echo`); every tenth round also a SYNC. Each call has a
 * deadline of `timeoutMs`. Its latency (ms) goes into the histogram of the current window.
 * On a `stop` line on stdin (or stdin's end) it finishes its run, checks that the run holds every
 * record it published, prints one JSON line (`CanaryResult`) and exits 0.
 */
import { createInterface } from 'node:readline';
import hdr from 'hdr-histogram-js';
import { connect } from '../../../lib/index.js';

export interface CanaryWindow {
  /** Start of the window, ms after ready. */
  atMs: number;
  calls: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface CanaryResult {
  calls: number;
  records: number;
  /** What the finished run said it holds (should equal `records`). */
  finishedRecords: number | null;
  errorCount: number;
  /** The first 20 errors: `code: message`. */
  errors: string[];
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The slowest call of each kind: a PING, a record published and a request to its run, a SYNC (which waits for fsync). */
  slowestMs: { ping: number; request: number; sync: number };
  /**
   * How late the canary's own thread was, at worst, while its slowest call of each kind waited
   * (a timer due every TICK_MS, late because the OS ran something else, or a GC of its own). Part
   * of that call's time is then the canary's, not the supervisor's: for telling the two apart.
   */
  ownLateMs: { ping: number; request: number; sync: number };
  /**
   * The slowest call of each kind less how late the canary's own thread was during that call:
   * the part of a call that the canary's own lateness cannot explain. The stall bound judges this.
   */
  beyondOwnMs: { ping: number; request: number; sync: number };
  /** The canary's own thread at its latest, over the whole run (same timer). */
  ownWorstLateMs: number;
  windows: CanaryWindow[];
}

const spec = JSON.parse(process.argv[2] ?? '{}') as { home: string; intervalMs?: number; windowMs?: number; timeoutMs?: number };
const intervalMs = spec.intervalMs ?? 10;
const windowMs = spec.windowMs ?? 1000;
const timeoutMs = spec.timeoutMs ?? 5000;

const newHistogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
const all = newHistogram();
let window = newHistogram();
let windowStart = 0;
const windows: CanaryWindow[] = [];
const errors: string[] = [];
let errorCount = 0;
let calls = 0;
let records = 0;
const slowestMs = { ping: 0, request: 0, sync: 0 };
const ownLateMs = { ping: 0, request: 0, sync: 0 };
const beyondOwnMs = { ping: 0, request: 0, sync: 0 };

/** The canary's own lateness: a timer due every TICK_MS; `lateMs` is its worst since `lateMs` was last zeroed. */
const TICK_MS = 5;
const own = { due: performance.now() + TICK_MS, lateMs: 0, worstMs: 0 };
const ticker = setInterval(() => {
  const now = performance.now();
  const late = Math.max(0, now - own.due);
  own.lateMs = Math.max(own.lateMs, late);
  own.worstMs = Math.max(own.worstMs, late);
  own.due = now + TICK_MS;
}, TICK_MS);

const client = await connect({ home: spec.home, name: 'chaos-canary', start: false, timeoutMs });
const run = await client.openRun(`canary-${process.pid}`);
const t0 = performance.now();
process.stdout.write(`${JSON.stringify({ event: 'ready', pid: process.pid })}\n`);

let stopping = false;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'stop') stopping = true;
}).on('close', () => (stopping = true));

function closeWindow(now: number) {
  if (window.totalCount > 0) {
    windows.push({ atMs: Math.round(windowStart), calls: window.totalCount, p50Ms: window.getValueAtPercentile(50) / 1000, p99Ms: window.getValueAtPercentile(99) / 1000, maxMs: window.maxValue / 1000 });
  }
  window.destroy();
  window = newHistogram();
  windowStart = now;
}

async function timed(kind: keyof typeof slowestMs, call: () => Promise<unknown>): Promise<void> {
  own.lateMs = 0;
  const start = performance.now();
  try {
    await call();
  } catch (error) {
    errorCount++;
    const e = error as { code?: string; message?: string };
    if (errors.length < 20) errors.push(`${e.code ?? 'Error'}: ${e.message ?? String(error)}`);
  }
  const micros = Math.max(1, Math.round((performance.now() - start) * 1000));
  calls++;
  // The timer due last may not have run yet: what it is late by now counts too.
  const late = Math.round(Math.max(own.lateMs, performance.now() - own.due) * 1000) / 1000;
  if (micros / 1000 > slowestMs[kind]) {
    slowestMs[kind] = micros / 1000;
    ownLateMs[kind] = late;
  }
  beyondOwnMs[kind] = Math.max(beyondOwnMs[kind], Math.round(Math.max(0, micros / 1000 - late) * 1000) / 1000);
  all.recordValue(micros);
  window.recordValue(micros);
}

for (let round = 0; !stopping; round++) {
  const started = performance.now();
  if (started - t0 - windowStart >= windowMs) closeWindow(started - t0);
  await timed('ping', () => client.ping({ timeoutMs }));
  await timed('request', async () => {
    run.publish({ canary: round });
    records++;
    await run.request('echo', round, { timeoutMs });
  });
  if (round % 10 === 9) await timed('sync', () => run.sync({ timeoutMs }));
  const rest = intervalMs - (performance.now() - started);
  if (rest > 0) await new Promise((r) => setTimeout(r, rest));
}
closeWindow(performance.now() - t0);
clearInterval(ticker);

let finishedRecords: number | null = null;
try {
  finishedRecords = (await run.finish({ timeoutMs })).records;
} catch (error) {
  errorCount++;
  errors.push(`finish: ${(error as Error).message}`);
}
await client.close();
const result: CanaryResult = {
  calls, records, finishedRecords, errorCount, errors,
  p50Ms: all.getValueAtPercentile(50) / 1000, p99Ms: all.getValueAtPercentile(99) / 1000, maxMs: all.maxValue / 1000, slowestMs, ownLateMs,
  beyondOwnMs, ownWorstLateMs: Math.round(own.worstMs * 1000) / 1000, windows,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
