/**
 * The daemon's entry point: `node dist/supervisor/main.js --home <dir> [options]`.
 * Clients start it detached, in its own session, with stdout and stderr going to the home's
 * `logs/daemon.out`; `muxvisor start --foreground` runs it in the terminal.
 *
 * Exit codes: 0 stopped cleanly; 1 failed (the reason is on stderr); 2 bad arguments;
 * 75 another supervisor already holds this home's lock (the caller should connect to that one).
 * With `--ready-fd N`, it writes `ready <pid>\n` (or `locked\n`) to fd N once it listens, then
 * closes it, so the process that started it needs no polling.
 *
 * `npm run build` bundles this entry and everything it imports into the one file
 * dist/supervisor/main.js (esbuild; package.json `build`): loading ~55 modules one by one cost
 * ~80 ms of every cold start, the bundle ~40 ms. The worker threads still load their own
 * modules (workers/run-worker.js), found from the package root.
 */
import { closeSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { defaultHome, isMuxvisorError } from '../protocol/index.js';
import { VERSION } from '../protocol/version.js';
import { logLevelFromEnv } from './log.js';
import { Supervisor } from './server.js';
import { makePrivate } from './umask.js';

export const EXIT_LOCKED = 75;

function fail(message: string, code: number): never {
  process.stderr.write(`muxvisor supervisor: ${message}\n`);
  process.exit(code);
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      home: { type: 'string' },
      'idle-timeout-ms': { type: 'string' },
      'parent-pid': { type: 'string' },
      workers: { type: 'string' },
      'watchdog-ms': { type: 'string' },
      'drain-timeout-ms': { type: 'string' },
      'sample-ms': { type: 'string' },
      'ready-fd': { type: 'string' },
      'log-level': { type: 'string' },
    },
    strict: true,
  }).values;
}
try {
  args = parse();
} catch (error) {
  fail(`${(error as Error).message}\nusage: main.js [--home DIR] [--idle-timeout-ms N] [--parent-pid PID] [--workers N] [--watchdog-ms N] [--drain-timeout-ms N] [--sample-ms N] [--ready-fd FD] [--log-level LEVEL]`, 2);
}

const number = (name: keyof typeof args) => {
  const value = args[name];
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) fail(`--${name} must be an integer, got \`${value}\``, 2);
  return n;
};

const readyFd = number('ready-fd');
const say = (line: string) => {
  if (readyFd === undefined) return;
  try {
    writeSync(readyFd, `${line}\n`);
    closeSync(readyFd);
  } catch {
    // the starter went away; nothing to tell
  }
};

makePrivate();

let supervisor: Supervisor | null;
try {
  supervisor = await Supervisor.start({
    home: args.home ?? defaultHome(),
    idleTimeoutMs: number('idle-timeout-ms'),
    parentPid: number('parent-pid'),
    workers: number('workers'),
    watchdogMs: number('watchdog-ms'),
    drainTimeoutMs: number('drain-timeout-ms'),
    serviceSampleMs: number('sample-ms'),
    logLevel: args['log-level'] ?? logLevelFromEnv(),
  }, VERSION);
} catch (error) {
  fail(isMuxvisorError(error) ? `${error.code}: ${error.message}` : (error as Error).stack ?? String(error), 1);
}

if (supervisor === null) {
  say('locked');
  process.stderr.write('muxvisor supervisor: another supervisor holds this home; exiting\n');
  process.exit(EXIT_LOCKED);
}

const running = supervisor;
let signals = 0;
const onSignal = (signal: NodeJS.Signals) => {
  signals++;
  if (signals > 1) {
    running.destroy(`second ${signal}: forced stop`);
    process.exit(1);
  }
  void running.close(`received ${signal}`);
};
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
process.on('SIGHUP', () => running.log.info('SIGHUP ignored'));
process.on('uncaughtException', (error) => {
  running.log.fatal({ err: error.stack ?? error.message }, 'uncaught exception; stopping');
  running.destroy('uncaught exception');
  process.exit(1);
});

say(`ready ${process.pid}`);
// The process ends when the drain ends, whatever started it (signal, idle, shutdown op, parent).
await running.stopped;
process.exit(0);
