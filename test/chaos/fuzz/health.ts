/**
 * Watching the supervisor while it is fuzzed, and checking it afterwards: its resident memory
 * sampled from /proc, its own log scanned for what only a crash or a bug writes, and a fresh
 * client doing the whole life of a run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { type Client, connect } from '../../../lib/index.js';
import { rssBytes } from '../context.js';

export interface RssSampler {
  /** Stops sampling; the peak (and `during()` when it was seen), the number of samples and the longest gap between two. */
  stop(): { peakBytes: number; peakDuring: string; samples: number; longestGapMs: number };
}

/**
 * Samples the resident memory of `pid` every `everyMs` (a gap is longer when this thread is
 * busy); `during()` says what was going on, kept for the peak.
 */
export function sampleRss(pid: number, everyMs = 50, during: () => string = () => ''): RssSampler {
  let peak = rssBytes(pid) ?? 0;
  let peakDuring = '';
  let samples = 1;
  let last = Date.now();
  let longestGap = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
    const rss = rssBytes(pid);
    if (rss === null) return;
    if (rss > peak) {
      peak = rss;
      peakDuring = during();
    }
    samples++;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return { peakBytes: peak, peakDuring, samples, longestGapMs: longestGap };
    },
  };
}

/**
 * Lines of the supervisor's log (pino JSON lines) that only trouble writes: level error (50) or
 * fatal (60), or any line about an uncaught exception or unhandled rejection. Also every line of
 * its captured stdout/stderr that is not JSON (a stack trace printed by Node).
 */
export function troubleInLogs(supervisorLog: string, daemonOut: string): string[] {
  const found: string[] = [];
  if (existsSync(supervisorLog)) {
    for (const line of readFileSync(supervisorLog, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      let entry: { level?: number; msg?: string } = {};
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        found.push(`not JSON in supervisor.log: ${line.slice(0, 200)}`);
        continue;
      }
      if ((entry.level ?? 0) >= 50 || /uncaught|unhandled/i.test(line)) found.push(line.slice(0, 300));
    }
  }
  if (existsSync(daemonOut)) {
    for (const line of readFileSync(daemonOut, 'utf8').split('\n')) if (line.trim() !== '' && !line.startsWith('{')) found.push(`daemon.out: ${line.slice(0, 200)}`);
  }
  return found;
}

/**
 * A new client does what every user does: connect, open a run, publish, sync, finish. Returns
 * what went wrong, or null.
 */
export async function freshClientWorks(home: string, records: number): Promise<string | null> {
  try {
    const client = await connect({ home, start: false, name: 'chaos-fuzz-after', handleExit: false, exportEnv: false, timeoutMs: 10_000 });
    try {
      const run = await client.openRun(`fuzz-after-${process.pid}`);
      for (let i = 0; i < records; i++) run.publish({ step: i, loss: 1 / (i + 1) });
      const synced = await run.sync({ timeoutMs: 10_000 });
      if (synced.records !== records) return `a SYNC after ${records} records said ${synced.records}`;
      const finished = await run.finish({ timeoutMs: 10_000 });
      if (finished.records !== records || finished.status !== 'ok') return `FINISH said ${finished.records} records, status ${finished.status}; expected ${records}, ok`;
      return null;
    } finally {
      await client.close();
    }
  } catch (error) {
    return `${(error as { code?: string }).code ?? 'Error'}: ${(error as Error).message}`;
  }
}

export interface LoopDelaySampler {
  /** Stops sampling; the worst `lastSecondMaxMs` seen (ms), and when (ms after the start). */
  stop(): Promise<{ maxMs: number; atMs: number; samples: number }>;
}

/**
 * Asks the supervisor for its `eventLoopDelay` every `everyMs` (under its one-second window, so
 * no window is missed) over `client`, and keeps the worst last-second delay: how late its main
 * thread ran what was due while the cases ran, not counting its own start.
 */
export function sampleLoopDelay(client: Client, everyMs = 400): LoopDelaySampler {
  const started = Date.now();
  let worst = { maxMs: 0, atMs: 0, samples: 0 };
  let asking: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    asking = client.request('status', undefined, { timeoutMs: 5_000 }).then((s) => {
      const d = (s as { eventLoopDelay: { lastSecondMaxMs: number } }).eventLoopDelay;
      worst.samples++;
      if (d.lastSecondMaxMs > worst.maxMs) worst = { ...worst, maxMs: d.lastSecondMaxMs, atMs: Date.now() - started };
    }, () => {});
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await asking;
      return worst;
    },
  };
}
