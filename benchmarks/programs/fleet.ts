/**
 * The client side of the many-process questions (fanin, headofline), written once and driven by
 * both the muxvisor client (fleet-client.js) and the raw baseline client (fleet-raw-client.js),
 * which differ only in the `Endpoint` they hand to `serveFleet`.
 *
 * Contract with the harness (harness/fleet.ts): a member connects once, then does rounds of the
 * same task until told `exit`. Each round it opens a run and warms up, prints `ready`, and waits
 * for `go` on stdin; the open-ended tasks (the floods) run until `stop`; it finishes the run and
 * prints the round's figures as one JSON line. On `exit` it finishes the run it holds, closes and
 * exits with 0. If its stdin ends (the harness has gone), it exits at once with code 3, so no
 * member outlives the harness. Members live across repetitions, as the processes they stand for
 * (training loops) do: the harness's warm-up repetition warms them.
 *
 * Times are microseconds of the monotonic clock (`process.hrtime`, CLOCK_MONOTONIC on Linux),
 * which every process on the machine shares: the harness compares its own `go` time with them.
 */
import { setPriority } from 'node:os';
import { setImmediate as yieldTurn } from 'node:timers/promises';
import { recordOf } from './spec.js';

export type FleetTask =
  /** Publishes `n` records, then finishes its run: the fanin question. */
  | { task: 'burst'; n: number; recordBytes: number }
  /** Publishes as fast as backpressure allows until `stop`, then finishes its run. */
  | { task: 'flood'; recordBytes: number }
  /** Keeps `window` requests to its run's handler in flight until `stop`. */
  | { task: 'flood-requests'; window: number }
  /**
   * One in flight, after `warmup` of each: `n` PINGs, then `n` REQUESTs to its own run's handler,
   * each timed; each loop stops early once it has run `budgetMs` (under a heavy flood at the same
   * priority a round trip can take 30 ms).
   */
  | { task: 'quiet'; n: number; warmup: number; budgetMs: number };

export type FleetSpec = FleetTask & {
  /** muxvisor client: the supervisor's home; raw client: the raw server's socket path. */
  home?: string;
  socket?: string;
  /** Niceness to run at (0 to 19): 19 takes only the CPU the others leave. @default 0 */
  nice?: number;
};

export interface BurstResult {
  /** Records the receiver counted (checked to be `n`). */
  records: number;
  /** When this member heard `go`, and when its finish was answered. */
  startUs: number;
  endUs: number;
}

export interface FloodResult {
  /** Records the receiver counted, or requests answered. */
  count: number;
  /** From `go` until finish was answered (records) or the last request came back. */
  seconds: number;
}

/** Latency of one-in-flight round trips, µs. */
export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  /** How many were timed: `n`, or fewer if the budget ran out. */
  count: number;
}

export interface QuietResult {
  ping: Latency;
  request: Latency;
}

/** What a member does its work through: one connection, and a run on it each round. */
export interface Endpoint {
  /** Opens the run this round's work goes to (the raw server has no runs: a no-op there). */
  open(): Promise<void>;
  /** False when the caller should `drain()` before publishing more. */
  publish(record: unknown): boolean;
  drain(): Promise<void>;
  /** Ends the round's run; resolves with the number of records the receiver got. */
  finish(): Promise<number>;
  ping(): Promise<unknown>;
  /** A small request to this round's run (`echo`). */
  request(): Promise<unknown>;
  close(): Promise<void>;
}

export const nowMicros = (): number => Number(process.hrtime.bigint() / 1000n);

/** Serves rounds of `spec`'s task through `endpoint` under the contract above, until `exit`. */
export async function serveFleet(spec: FleetSpec, endpoint: Endpoint): Promise<void> {
  const words = listen();
  if (spec.nice) setPriority(spec.nice);
  for (;;) {
    await endpoint.open();
    if (spec.task === 'quiet') {
      // Warm up (JIT, the run's handler) before `ready`: only the measured loops run under load.
      for (let i = 0; i < spec.warmup; i++) {
        await endpoint.ping();
        await endpoint.request();
      }
    }
    process.stdout.write('ready\n');
    const word = await words.next();
    if (word === 'exit') break;
    if (word !== 'go') throw new Error(`expected \`go\` or \`exit\`, got \`${word}\``);
    process.stdout.write(`${JSON.stringify(await round(spec, endpoint, words))}\n`);
  }
  await endpoint.finish();
  await endpoint.close();
  words.release();
}

/** One round, from `go` until the run is finished. */
async function round(spec: FleetTask, endpoint: Endpoint, words: Words): Promise<BurstResult | FloodResult | QuietResult> {
  const startUs = nowMicros();
  switch (spec.task) {
    case 'burst': {
      await publishWhile(endpoint, recordOf(spec.recordBytes), (i) => i < spec.n);
      const records = await endpoint.finish();
      const endUs = nowMicros();
      if (records !== spec.n) throw new Error(`the receiver got ${records} records, not ${spec.n}`);
      return { records, startUs, endUs };
    }
    case 'flood': {
      const stop = stopSignal(words);
      await publishWhile(endpoint, recordOf(spec.recordBytes), () => !stop.stopped);
      return { count: await endpoint.finish(), seconds: (nowMicros() - startUs) / 1e6 };
    }
    case 'flood-requests': {
      const stop = stopSignal(words);
      let answered = 0;
      const lane = async () => {
        while (!stop.stopped) {
          await endpoint.request();
          answered++;
        }
      };
      await Promise.all(Array.from({ length: spec.window }, lane));
      const seconds = (nowMicros() - startUs) / 1e6;
      await endpoint.finish();
      return { count: answered, seconds };
    }
    case 'quiet': {
      const ping = await timeEach(spec.n, spec.budgetMs, () => endpoint.ping());
      const request = await timeEach(spec.n, spec.budgetMs, () => endpoint.request());
      await endpoint.finish();
      return { ping, request };
    }
  }
}

/**
 * Publishes `record` while `more(i)` holds, waiting on backpressure and yielding to the event loop
 * every 2,000 records, as a training loop does between steps (and as measure.ts's publishMany).
 */
async function publishWhile(endpoint: Endpoint, record: unknown, more: (i: number) => boolean, yieldEvery = 2000): Promise<void> {
  for (let i = 0; more(i); i++) {
    if (!endpoint.publish(record)) await endpoint.drain();
    if (i % yieldEvery === yieldEvery - 1) await yieldTurn();
  }
}

/** Up to `n` calls one after the other, for at most `budgetMs`; each timed into an HDR histogram (as measure.ts). */
async function timeEach(n: number, budgetMs: number, call: () => Promise<unknown>): Promise<Latency> {
  // Loaded here, not at the top: it costs 0.1 s of CPU, times a hundred members that never use it.
  const { default: hdr } = await import('hdr-histogram-js');
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const endUs = nowMicros() + budgetMs * 1000;
  let count = 0;
  for (let t = nowMicros(); count < n && t < endUs; count++) {
    await call();
    const now = nowMicros();
    histogram.recordValue(Math.max(1, now - t));
    t = now;
  }
  const result = { p50: histogram.getValueAtPercentile(50), p90: histogram.getValueAtPercentile(90), p99: histogram.getValueAtPercentile(99), count };
  histogram.destroy();
  return result;
}

/** `stopped` turns true once the harness's next word (which must be `stop`) arrives. */
function stopSignal(words: Words): { stopped: boolean } {
  const signal = { stopped: false };
  void words.next().then((word) => {
    if (word !== 'stop') throw new Error(`expected \`stop\`, got \`${word}\``);
    signal.stopped = true;
  });
  return signal;
}

interface Words {
  /** The harness's next line on stdin. */
  next(): Promise<string>;
  /** Lets stdin go so the process can end by itself. */
  release(): void;
}

function listen(): Words {
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let buffered = '';
  const onData = (chunk: string) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      const line = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      const waiter = waiting.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  };
  const onEnd = () => process.exit(3);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', onData);
  process.stdin.on('end', onEnd);
  return {
    next: () => {
      const line = lines.shift();
      return line === undefined ? new Promise((resolve) => waiting.push(resolve)) : Promise.resolve(line);
    },
    release() {
      process.stdin.off('data', onData);
      process.stdin.off('end', onEnd);
      process.stdin.destroy();
    },
  };
}
