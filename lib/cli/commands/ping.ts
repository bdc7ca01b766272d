/**
 * `muxvisor ping [-n N]`: round trips to the supervisor, with latency percentiles from an HDR
 * histogram (hdr-histogram-js), so one slow round trip shows instead of vanishing in an average.
 */
import type { Command } from 'commander';
import { action, pause } from '../context.js';
import { usageError, wholeNumber } from '../exit-codes.js';

export function registerPing(program: Command): void {
  program
    .command('ping')
    .description('round-trip latency to the supervisor: min, p50, p90, p99, max')
    .option('-n, --count <n>', 'round trips', '100')
    .option('-i, --interval <ms>', 'pause between round trips', '0')
    .addHelpText('after', '\nExamples:\n  $ muxvisor ping\n  $ muxvisor ping -n 10000 --json')
    .action(action(async (ctx, flags: { count: string; interval: string }) => {
      const n = wholeNumber(flags.count, '--count', { min: 1, max: 10_000_000, expected: '1..10000000' });
      const interval = Number(flags.interval);
      if (!Number.isFinite(interval) || interval < 0) throw usageError(`--interval must be >= 0 ms, got \`${flags.interval}\``);
      const client = await ctx.connect();
      // ctrl+c ends the round trips early and still prints what was measured.
      const signal = ctx.handleInterrupts();
      const hdr = await import('hdr-histogram-js'); // loaded only by this command
      const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
      let sent = 0;
      try {
        for (; sent < n && !signal.aborted; sent++) {
          const ms = await client.ping({ timeoutMs: ctx.timeoutMs });
          histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
          if (interval > 0 && !signal.aborted) await pause(interval, signal);
        }
        // A percentile is the top of its bucket (3 significant digits), which can pass the exact
        // max recorded: clamp, so that min <= p50 <= ... <= max always holds in the report.
        const us = (p: number) => Math.min(histogram.getValueAtPercentile(p), histogram.maxValue);
        if (sent === 0) {
          // Interrupted before the first answer: nothing was measured, and nothing is made up.
          if (ctx.json) ctx.outJson({ count: 0, pid: client.server.pid, version: client.server.version, microseconds: null });
          else ctx.out(`no round trip completed (interrupted)`);
          return;
        }
        const result = {
          count: sent, pid: client.server.pid, version: client.server.version,
          microseconds: { min: histogram.minNonZeroValue, p50: us(50), p90: us(90), p99: us(99), p999: us(99.9), max: histogram.maxValue, mean: Math.round(histogram.mean) },
        };
        if (ctx.json) ctx.outJson(result);
        else {
          const m = result.microseconds;
          const f = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v} µs`);
          ctx.out(`${sent} round trips to supervisor pid ${result.pid}: min ${f(m.min)}  p50 ${f(m.p50)}  p90 ${f(m.p90)}  p99 ${f(m.p99)}  max ${f(m.max)}`);
        }
      } finally {
        histogram.destroy();
      }
    }));
}
