#!/usr/bin/env node
/**
 * The `muxvisor` command. A client like any other: it goes through lib/, never around it.
 * Each file of commands/ registers one group of commands; context.ts holds what they share;
 * exit-codes.ts the codes scripts branch on (CLI.md documents them and every `--json` shape).
 */
import { Command, CommanderError, Option } from 'commander';
import { VERSION } from '../../protocol/version.js';
import { registerBench } from './commands/bench.js';
import { registerDaemon } from './commands/daemon.js';
import { registerDemo } from './commands/demo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerEvents } from './commands/events.js';
import { registerLogs } from './commands/logs.js';
import { registerMonitor } from './commands/monitor.js';
import { registerPing } from './commands/ping.js';
import { registerRuns } from './commands/runs.js';
import { registerServices } from './commands/services.js';
import { registerStatus } from './commands/status.js';
import { ExitCode } from './exit-codes.js';

// `--json` among the CLI's own arguments (after `--` come a service's): then a usage error that
// commander finds is printed as JSON on stdout too, like every other error.
const ownArgs = process.argv.includes('--') ? process.argv.slice(2, process.argv.indexOf('--')) : process.argv.slice(2);
const json = ownArgs.includes('--json');

const program = new Command('muxvisor')
  .description('Local IPC and process supervision for experiment tooling: diagnostics, services, runs.')
  .version(VERSION, '-v, --version')
  .option('--home <dir>', 'the home to use (default: $MUXVISOR_HOME, else $XDG_STATE_HOME/muxvisor, else ~/.local/state/muxvisor)')
  .option('--json', 'print JSON (a document, or JSON lines for streams) instead of text')
  .option('--no-color', 'no colour (also: NO_COLOR=1, or output that is not a terminal)')
  .addOption(new Option('--timeout <ms>', 'deadline of connecting and of each request').default('10000'))
  .showHelpAfterError('(try `muxvisor --help` or `muxvisor <command> --help`)')
  .configureOutput({ writeErr: (text) => void (json ? undefined : process.stderr.write(text)) })
  .exitOverride()
  .addHelpText('after', `
Exit codes: 0 ok, 1 failure, 2 usage, 3 not running, 4 not found, 5 refused, 6 timeout,
7 unhealthy (doctor, runs verify), 8 service failed. See CLI.md.

Examples:
  $ muxvisor status                 what the supervisor is doing
  $ muxvisor services --json        every service as JSON
  $ muxvisor monitor                a live view; ctrl+s / ctrl+k start / stop a service`);

registerDaemon(program);
registerStatus(program);
registerRuns(program);
registerServices(program);
registerEvents(program);
registerLogs(program);
registerPing(program);
registerDoctor(program);
registerMonitor(program);
registerDemo(program);
registerBench(program);

try {
  await program.parseAsync();
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  // Help and version print and exit 0; every other parse error is a usage error.
  const ok = error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help';
  process.exitCode = ok ? ExitCode.Ok : ExitCode.Usage;
  if (!ok && json) {
    const message = error.message.replace(/^error: /, '');
    process.stdout.write(`${JSON.stringify({ error: { code: 'MUXVISOR_CLI_USAGE', message, exitCode: ExitCode.Usage, data: null } })}\n`);
  }
}
