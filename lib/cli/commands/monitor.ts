/**
 * `muxvisor monitor`: a live full-screen view of the supervisor (header and problems, open runs,
 * services with a selection, connections) that refreshes on an interval and at once on events,
 * and starts / stops / restarts the selected service from the keyboard. lib/cli/monitor/ holds
 * the parts: snapshot (what is asked), render (state to lines), keys, terminal, session (the loop).
 *
 * It needs a terminal on both stdin and stdout; scripts use `muxvisor status --json`. It never
 * starts a supervisor; when the supervisor goes away it stops with exit code 3.
 */
import { type Command, Option } from 'commander';
import { action } from '../context.js';
import { usageError, wholeNumber } from '../exit-codes.js';
import { KEYS_HELP } from '../monitor/render.js';
import { runMonitor } from '../monitor/session.js';

/** Below this, refreshing is all the supervisor would do. */
const MIN_INTERVAL_MS = 50;

export function registerMonitor(program: Command): void {
  program
    .command('monitor')
    .description('a live view of the supervisor: problems, runs, services (start / stop / restart them), connections')
    .addOption(new Option('--interval <ms>', 'time between refreshes (events refresh at once too)').default('1000'))
    .addHelpText('after', `
Keys: ${KEYS_HELP} (also k/j, Esc, ctrl+c; ctrl+l redraws).

Examples:
  $ muxvisor monitor
  $ muxvisor monitor --interval 250
  $ muxvisor status --json          the same facts for scripts`)
    .action(action(async (ctx, opts: { interval: string }) => {
      const intervalMs = wholeNumber(opts.interval, '--interval', { min: MIN_INTERVAL_MS, expected: `a whole number of milliseconds, at least ${MIN_INTERVAL_MS}` });
      if (ctx.json) throw usageError('monitor is a screen for people and has no --json; use `muxvisor status --json`');
      if (process.stdout.isTTY !== true || process.stdin.isTTY !== true) {
        throw usageError(`monitor needs a terminal (its ${process.stdout.isTTY === true ? 'input' : 'output'} is not one); for scripts use \`muxvisor status --json\``);
      }
      const client = await ctx.connect();
      // SIGINT / SIGTERM end the session cleanly (terminal restored, exit 0) instead of at once.
      const signal = ctx.handleInterrupts();
      return runMonitor(client, { intervalMs, timeoutMs: ctx.timeoutMs, c: ctx.c, signal });
    }));
}
