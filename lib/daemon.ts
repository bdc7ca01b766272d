/**
 * The daemon's life from outside, for tools such as the CLI: which process it is (the home's pid
 * file, checked against the live process), and spawning it: in the background by `connect()`
 * (start.ts), in the foreground by `muxvisor start --foreground`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCode, type HomeLayout, MuxvisorError } from '../protocol/index.js';
import { PACKAGE_ROOT } from '../protocol/version.js';

/** The daemon's entry point: `node <this> --home <dir> [options]` (supervisor/main.ts). */
export const DAEMON_ENTRY = join(PACKAGE_ROOT, 'dist', 'supervisor', 'main.js');

/** The pid the home's pid file names, whether or not that process still runs; null without one. */
export function pidFileValue(layout: HomeLayout): number | null {
  try {
    const pid = Number(readFileSync(layout.pidPath, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** True while `pid` runs (a zombie counts as gone; a process of another user counts as running). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A dead process not yet reaped by its parent still answers kill(0); /proc tells the truth. A
  // stat that cannot be read where /proc exists means it was reaped in between: gone. Without
  // /proc, kill(0) is all there is.
  const state = processState(pid);
  return state === null ? !HAS_PROC : state !== 'Z' && state !== 'X';
}

const HAS_PROC = existsSync('/proc/self/stat');

/** The state letter /proc gives `pid` (R, S, T, Z, ...), or null when it cannot be read. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) || null;
  } catch {
    return null;
  }
}

/**
 * What `pid`'s command line says: its arguments, whether it runs the daemon's entry point, and
 * the home it was given (null without `--home`); null when /proc cannot be read.
 */
export function daemonCommand(pid: number): { argv: string[]; supervisor: boolean; home: string | null } | null {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a.length > 0);
  } catch {
    return null;
  }
  const supervisor = argv.some((a) => a.endsWith(join('supervisor', 'main.js')));
  const at = argv.indexOf('--home');
  return { argv, supervisor, home: supervisor && at >= 0 && argv[at + 1] !== undefined ? resolve(argv[at + 1] as string) : null };
}

/**
 * True when `pid` runs the daemon's entry point for `home` (its command line says so), false when
 * it runs something else (the pid was reused), null when that cannot be read (no /proc).
 */
export function isSupervisorOf(pid: number, home: string): boolean | null {
  const command = daemonCommand(pid);
  if (command === null) return null;
  return command.supervisor && (command.home === null || command.home === home);
}

/**
 * The running supervisor's pid per the pid file, or null when none runs. A pid file that names a
 * live process which is not this home's supervisor (the pid was reused) counts as none: nothing
 * may be signalled on its say-so.
 */
export function supervisorPid(layout: HomeLayout): number | null {
  const pid = pidFileValue(layout);
  return pid !== null && processAlive(pid) && isSupervisorOf(pid, layout.home) !== false ? pid : null;
}

/** Resolves true once `pid` is gone, false when `ms` passes first. Polls every 20 ms. */
export async function waitForExit(pid: number, ms: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !signal?.aborted) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !processAlive(pid);
}

/** Exit code of a daemon that found the home locked by another (supervisor/main.ts). */
export const EXIT_LOCKED = 75;

/**
 * Node's own flags for the daemon, from MUXVISOR_DAEMON_NODE_ARGS (split at whitespace), for
 * looking into it: `--cpu-prof --cpu-prof-dir=/tmp/prof` profiles it and each of its worker threads
 * until it stops (NODE_OPTIONS refuses --cpu-prof). Each must start with `--`; anything else is
 * refused with MUXVISOR_INVALID_ARGUMENT, so a typo does not start a daemon that is not what was asked.
 */
export function daemonNodeArgs(env: NodeJS.ProcessEnv): string[] {
  const text = env.MUXVISOR_DAEMON_NODE_ARGS?.trim() ?? '';
  if (text === '') return [];
  const args = text.split(/\s+/);
  const bad = args.find((a) => !a.startsWith('--'));
  if (bad !== undefined) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, `MUXVISOR_DAEMON_NODE_ARGS must hold node flags starting with \`--\`, got \`${bad}\` in \`${text}\``, {
      data: { value: text },
    });
  }
  return args;
}

/** The glibc mmap threshold the daemon is started with (see spawnDaemon). */
export const DAEMON_MMAP_THRESHOLD_BYTES = 128 * 1024;

export interface SpawnDaemonOptions {
  /** Where its stdout and stderr go: a file descriptor (the caller closes its copy), or this process's. @default 'inherit' */
  output?: number | 'inherit';
  cwd?: string;
}

/**
 * Spawns the daemon, in its own session and process group (so a terminal's ctrl+c reaches only
 * the caller, which may pass it on), and reads what it says on its ready pipe. `ready` resolves
 * `ready` or `locked` (another supervisor holds the home), or rejects MUXVISOR_UNAVAILABLE when the
 * daemon exits first (`data: {code, signal}`) or cannot be spawned. `exited` is made at once, so
 * an exit during the caller's next await is not missed. The caller decides how long to wait, and
 * whether to `unref()` the child.
 */
export function spawnDaemon(layout: HomeLayout, args: readonly string[] = [], options: SpawnDaemonOptions = {}): {
  child: ChildProcess; ready: Promise<'ready' | 'locked'>; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
} {
  const env = { ...process.env };
  delete env.MUXVISOR_SERVICE;
  // A supervisor started from inside a service must not carry that service's process marker:
  // the marker's owner would kill it as a leftover of its service.
  delete env.MUXVISOR_SUPERVISED;
  // glibc serves a large allocation with mmap until the first such block is freed, then raises
  // its threshold and serves the next ones from its heaps, which keep the memory once freed. The
  // supervisor allocates and frees megabyte buffers all day (run logs, batches): with the fixed
  // threshold its RSS under 100 clients publishing levels off near 230 MB instead of 350 MB, at
  // the same throughput (RELIABILITY.md section 5). A value the user set is kept; other libcs ignore it.
  env.MALLOC_MMAP_THRESHOLD_ ??= String(DAEMON_MMAP_THRESHOLD_BYTES);
  const output = options.output ?? 'inherit';
  const child = spawn(process.execPath, [...daemonNodeArgs(env), DAEMON_ENTRY, '--home', layout.home, '--ready-fd', '3', ...args], {
    detached: true, stdio: ['ignore', output, output, 'pipe'], env, ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const pipe = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
  const ready = new Promise<'ready' | 'locked'>((resolve, reject) => {
    let said = '';
    pipe.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes('\n')) resolve(said.startsWith('ready') ? 'ready' : 'locked');
    });
    pipe.on('error', () => undefined);
    child.once('exit', (code, signal) => {
      if (code === EXIT_LOCKED || said.startsWith('ready') || said.startsWith('locked')) resolve(said.startsWith('ready') ? 'ready' : 'locked');
      else reject(new MuxvisorError(ErrorCode.Unavailable, `the supervisor exited during start-up (${signal ?? `code ${code}`})`, { data: { code, signal } }));
    });
    child.once('error', (error) => reject(new MuxvisorError(ErrorCode.Unavailable, `cannot start the supervisor: ${error.message}`, { cause: error })));
  });
  void ready.finally(() => pipe.destroy()).catch(() => undefined);
  return { child, ready, exited };
}
