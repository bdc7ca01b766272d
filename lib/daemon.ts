/**
 * The daemon's life from outside, for tools such as the CLI: which process it is (the home's pid
 * file, checked against the live process), running it in the foreground, and stopping it.
 * Starting it in the background is `connect()`'s job (start.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { HomeLayout } from '../protocol/index.js';
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
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/**
 * True when `pid` runs the daemon's entry point for `home` (its command line says so), false when
 * it runs something else (the pid was reused), null when that cannot be read (no /proc).
 */
export function isSupervisorOf(pid: number, home: string): boolean | null {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return null;
  }
  if (!argv.some((a) => a.endsWith(join('supervisor', 'main.js')))) return false;
  const at = argv.indexOf('--home');
  return at < 0 || argv[at + 1] === undefined || resolve(argv[at + 1] as string) === home;
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

/**
 * Runs the daemon as a child of this process, in its own process group (so a terminal's ctrl+c
 * reaches only this process, which passes it on once), with stdout and stderr inherited. The
 * caller forwards signals and waits for `exited` (made at once, so an exit during the caller's
 * next await is not missed). `ready` resolves with `ready` or `locked` (another supervisor holds
 * the home), or rejects if the daemon exits first.
 */
export function spawnDaemon(layout: HomeLayout, args: readonly string[] = []): {
  child: ChildProcess; ready: Promise<'ready' | 'locked'>; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
} {
  const env = { ...process.env };
  delete env.MUXVISOR_SERVICE;
  delete env.MUXVISOR_SUPERVISED;
  const child = spawn(process.execPath, [DAEMON_ENTRY, '--home', layout.home, '--ready-fd', '3', ...args], {
    detached: true, stdio: ['ignore', 'inherit', 'inherit', 'pipe'], env,
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
    child.once('exit', (code, sig) => (said.startsWith('locked') || code === 75 ? resolve('locked') : reject(new Error(`the supervisor exited during start-up (${sig ?? `code ${code}`})`))));
    child.once('error', reject);
  });
  void ready.finally(() => pipe.destroy()).catch(() => undefined);
  return { child, ready, exited };
}
