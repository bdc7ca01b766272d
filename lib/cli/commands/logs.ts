/**
 * `muxvisor logs [--follow]`: the supervisor's own log, human-readable (pino-pretty), read from
 * the home's file so it works when the supervisor is dead. `--json` passes the JSON lines through.
 */
import type { Command } from 'commander';
import { action } from '../context.js';
import { CliError, ExitCode, usageError, wholeNumber } from '../exit-codes.js';
import { followLines, lastLines, levelNumber, type LogLine, prettyPrinter } from '../supervisor-log.js';

export function registerLogs(program: Command): void {
  program
    .command('logs')
    .description("the supervisor's own log (works when it is not running); --follow prints new lines")
    .option('-n, --lines <n>', 'lines to show first', '50')
    .option('-f, --follow', 'keep printing lines as they are written (ctrl+c to stop)')
    .option('-l, --level <level>', 'only this level and above: trace, debug, info, warn, error, fatal')
    .addHelpText('after', '\nExamples:\n  $ muxvisor logs -n 200 --level warn\n  $ muxvisor logs --follow')
    .action(action(async (ctx, flags: { lines: string; follow?: boolean; level?: string }) => {
      const n = wholeNumber(flags.lines, '--lines');
      let min = 0;
      try {
        min = flags.level === undefined ? 0 : levelNumber(flags.level);
      } catch (error) {
        throw usageError(`--level: ${(error as Error).message}`);
      }
      const pretty = await prettyPrinter(ctx.c.isColorSupported);
      const keep = (l: LogLine) => min === 0 || (typeof l.entry?.level === 'number' && l.entry.level >= min);
      const print = (l: LogLine) => {
        if (keep(l)) ctx.out(ctx.json ? l.raw : pretty(l));
      };
      // Following, a last line still being written is left for followLines, which prints it whole.
      const { lines, end, size } = lastLines(ctx.layout.supervisorLog, n, { keep, partial: !flags.follow });
      if (size === 0 && !flags.follow) {
        throw new CliError(ExitCode.NotFound, 'MUXVISOR_NO_LOG', `no supervisor log at ${ctx.layout.supervisorLog}: no supervisor has run in this home yet`);
      }
      for (const l of lines) print(l);
      if (flags.follow) await followLines(ctx.layout.supervisorLog, end, print, ctx.handleInterrupts());
    }));
}
