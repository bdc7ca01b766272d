/**
 * `muxvisor start [--foreground]` and `muxvisor stop [--force]`: the daemon's life.
 * start: starts the home's supervisor in the background (as any client would) and says which
 * one runs; with --foreground it runs in this terminal, its log printed here, until ctrl+c drains
 * it. stop: asks for the drain (open runs end `interrupted`, services stop, clients are told) and
 * waits until the process is gone; --force skips the drain (services are killed at once).
 */
import type { Command } from 'commander';
import { ErrorCode, isMuxvisorError } from '../../../protocol/index.js';
import { processAlive, spawnDaemon, supervisorPid, waitForExit } from '../../daemon.js';
import { action, type Ctx, homeFlag } from '../context.js';
import { CliError, ExitCode, usageError, wholeNumber } from '../exit-codes.js';
import { duration } from '../format.js';
import { followLines, lastLines, type LogLine, prettyPrinter } from '../supervisor-log.js';

/** The levels the supervisor's logger (pino) knows. */
const LOG_LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

interface StartFlags {
  foreground?: boolean;
  idleTimeoutMs?: string;
  workers?: string;
  logLevel?: string;
}

export function registerDaemon(program: Command): void {
  program
    .command('start')
    .description('start the supervisor for this home (or say which one already runs)')
    .option('--foreground', 'run it in this terminal, printing its log; ctrl+c drains and stops it')
    .option('--idle-timeout-ms <ms>', 'exit after this long with no client, run or service (0: never; default 600000)')
    .option('--workers <n>', 'worker threads for run handlers (default 2)')
    .option('--log-level <level>', 'trace, debug, info, warn, error (default info)')
    .addHelpText('after', '\nExamples:\n  $ muxvisor start\n  $ muxvisor start --foreground --log-level debug')
    .action(action(async (ctx, flags: StartFlags) => (flags.foreground ? foreground(ctx, flags) : background(ctx, flags))));

  program
    .command('stop')
    .description('drain and stop the supervisor: open runs end `interrupted`, services stop, clients are told')
    .option('--force', 'no drain: services are killed at once, then the supervisor (SIGKILL if it hangs)')
    .option('--wait <ms>', 'how long to wait for it to be gone', '60000')
    .addHelpText('after', '\nExamples:\n  $ muxvisor stop\n  $ muxvisor stop --force    # when it does not answer')
    .action(action(async (ctx, flags: { force?: boolean; wait: string }) => stop(ctx, flags)));
}

function daemonArgs(flags: StartFlags): string[] {
  const args: string[] = [];
  const int = (name: string, value: string | undefined, flag: string) => {
    if (value === undefined) return;
    args.push(flag, String(wholeNumber(value, `--${name}`)));
  };
  int('idle-timeout-ms', flags.idleTimeoutMs, '--idle-timeout-ms');
  int('workers', flags.workers, '--workers');
  if (flags.logLevel !== undefined) {
    // Checked here: a supervisor given a level pino does not know fails to start (exit 1 or 3).
    if (!LOG_LEVELS.includes(flags.logLevel)) throw usageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got \`${flags.logLevel}\``);
    args.push('--log-level', flags.logLevel);
  }
  return args;
}

async function background(ctx: Ctx, flags: StartFlags): Promise<void> {
  const running = supervisorPid(ctx.layout);
  const client = running === null && daemonArgs(flags).length > 0
    ? await ctx.connect({ start: true, supervisor: supervisorOptions(flags) })
    : await ctx.connect({ start: true });
  const answer = { started: client.started, pid: client.server.pid, version: client.server.version, home: client.home, socket: ctx.layout.socketPath };
  if (ctx.json) return void ctx.outJson(answer);
  ctx.out(`${client.started ? 'started' : 'already running'}: supervisor pid ${answer.pid} (muxvisor ${answer.version})`);
  ctx.out(`  home    ${answer.home}\n  socket  ${answer.socket}`);
  if (!client.started && daemonArgs(flags).length > 0) ctx.warn('note: it was already running, so the options given were not applied; `muxvisor stop` first to change them');
}

function supervisorOptions(flags: StartFlags) {
  const s: { idleTimeoutMs?: number; workers?: number; logLevel?: string } = {};
  if (flags.idleTimeoutMs !== undefined) s.idleTimeoutMs = Number(flags.idleTimeoutMs);
  if (flags.workers !== undefined) s.workers = Number(flags.workers);
  if (flags.logLevel !== undefined) s.logLevel = flags.logLevel;
  return s;
}

async function foreground(ctx: Ctx, flags: StartFlags): Promise<ExitCode> {
  const running = supervisorPid(ctx.layout);
  if (running !== null) throw new CliError(ExitCode.Refused, 'MUXVISOR_ALREADY_RUNNING', `a supervisor already runs for ${ctx.home} (pid ${running}); stop it first: \`muxvisor stop${homeFlag(ctx.layout)}\``);
  ctx.handleInterrupts(); // passed on to the daemon below
  const { end } = lastLines(ctx.layout.supervisorLog, 0);
  const { child, ready, exited } = spawnDaemon(ctx.layout, daemonArgs(flags));
  const follow = new AbortController();
  const print = await prettyPrinter(!ctx.json && ctx.c.isColorSupported);
  const following = followLines(ctx.layout.supervisorLog, end, (line) => (ctx.json ? ctx.out(line.raw) : ctx.out(print(line))), follow.signal, 100);
  // ctrl+c or SIGTERM here is passed on once per signal: the first drains, a second forces.
  const forward = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.pid !== undefined) child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    const said = await ready.catch((error: Error) => error);
    if (said === 'locked') throw new CliError(ExitCode.Refused, 'MUXVISOR_ALREADY_RUNNING', `another supervisor took the home ${ctx.home} first`);
    if (said instanceof Error) {
      await exited;
      throw new CliError(ExitCode.Failure, 'MUXVISOR_START_FAILED', `${said.message}; its log: ${ctx.layout.supervisorLog}`);
    }
    if (!ctx.json) ctx.warn(`supervisor running in the foreground: pid ${child.pid}, home ${ctx.home}; ctrl+c drains and stops it`);
    const { code, signal } = await exited;
    await new Promise((r) => setTimeout(r, 150)); // the last log lines
    if (!ctx.json) ctx.warn(`supervisor stopped (${signal ?? `exit code ${code}`})`);
    return code === 0 ? ExitCode.Ok : ExitCode.Failure;
  } finally {
    follow.abort();
    await following;
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}

/** True when supervisor `pid` has logged that it is draining (its newest such line in the log). */
function draining(ctx: Ctx, pid: number): boolean {
  const mark = (l: LogLine) => l.entry?.pid === pid && (l.entry.msg === 'draining' || l.entry.msg === 'supervisor listening');
  return lastLines(ctx.layout.supervisorLog, 1, { keep: mark }).lines[0]?.entry?.msg === 'draining';
}

async function stop(ctx: Ctx, flags: { force?: boolean; wait: string }): Promise<ExitCode> {
  const waitMs = wholeNumber(flags.wait, '--wait', { min: 1, expected: 'a positive number of milliseconds' });
  const started = Date.now();
  const pid = supervisorPid(ctx.layout);
  if (pid === null) {
    if (ctx.json) ctx.outJson({ stopped: false, running: false, home: ctx.home });
    else ctx.out(`no supervisor is running for home ${ctx.home}: nothing to stop`);
    return ExitCode.Ok;
  }
  let how: 'drained' | 'destroyed' | 'killed';
  if (!flags.force) {
    try {
      const client = await ctx.connect();
      await client.shutdown({ timeoutMs: ctx.timeoutMs });
    } catch (error) {
      if (isMuxvisorError(error) && error.code === ErrorCode.ConnectionClosed) {
        // it went away while we asked: fine
      } else if (((error instanceof CliError && error.exitCode === ExitCode.NotRunning) || (isMuxvisorError(error) && error.code === ErrorCode.ShuttingDown)) && draining(ctx, pid)) {
        // another stop (or its idle timeout) began the drain, which closed the socket: wait for it too
      } else if (isMuxvisorError(error) && error.code === ErrorCode.BadToken) {
        throw new CliError(ExitCode.Refused, ErrorCode.BadToken, `the supervisor (pid ${pid}) refuses the token in ${ctx.layout.tokenPath} (${error.message}); \`muxvisor stop --force${homeFlag(ctx.layout)}\` stops it without asking, and \`muxvisor doctor${homeFlag(ctx.layout)}\` says how to repair the token`);
      } else if (error instanceof CliError && error.exitCode === ExitCode.NotRunning) {
        throw new CliError(ExitCode.Refused, 'MUXVISOR_NOT_ANSWERING', `the supervisor (pid ${pid}) does not answer on its socket ${ctx.layout.socketPath}; \`muxvisor stop --force${homeFlag(ctx.layout)}\` stops it without a drain`);
      } else {
        throw error;
      }
    }
    if (!ctx.json) ctx.warn(`draining supervisor pid ${pid}...`);
    if (!(await waitForExit(pid, waitMs))) {
      throw new CliError(ExitCode.Timeout, ErrorCode.Timeout, `the supervisor (pid ${pid}) is still draining after ${waitMs} ms; wait longer (--wait) or \`muxvisor stop --force${homeFlag(ctx.layout)}\``);
    }
    how = 'drained';
  } else {
    // Two signals: the first starts a drain, the second turns it into an immediate stop that
    // SIGKILLs every service's processes (supervisor/main.ts).
    process.kill(pid, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
    if (processAlive(pid)) process.kill(pid, 'SIGTERM');
    how = 'destroyed';
    if (!(await waitForExit(pid, Math.min(waitMs, 5_000)))) {
      process.kill(pid, 'SIGKILL');
      how = 'killed';
      if (!(await waitForExit(pid, 5_000))) throw new CliError(ExitCode.Failure, 'MUXVISOR_STOP_FAILED', `the supervisor (pid ${pid}) survived SIGKILL`);
    }
  }
  const ms = Date.now() - started;
  if (ctx.json) ctx.outJson({ stopped: true, pid, how, ms, home: ctx.home });
  else ctx.out(`stopped supervisor pid ${pid} (${how}, ${duration(ms)})${how === 'killed' ? '; the next supervisor kills whatever services it left behind' : ''}`);
  return ExitCode.Ok;
}
