/**
 * Programs that stay up while something else is measured (the scale question's idle connections),
 * and the memory of a process by pid.
 *
 * Contract: a held program prints one line once it holds what it was asked to (or listens), then
 * waits until its stdin ends (or it gets `stopSignal`), lets go and exits. `stop()` does that and
 * waits for the exit; one that has not gone within 10 s is killed. If the harness itself dies,
 * the pipes close and programs that watch their stdin leave on their own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import pidusage from 'pidusage';
import { programsDir } from './child.js';

export interface Held {
  pid: number;
  /** The first line it printed: its report, once ready. */
  ready: string;
  /** Idempotent; resolves once the process is gone. */
  stop(): Promise<void>;
}

export interface HeldOptions {
  /** Sent on stop() besides ending stdin, for a program that does not watch its stdin. */
  stopSignal?: NodeJS.Signals;
  /** @default 60000 */
  readyTimeoutMs?: number;
}

const STOP_GRACE_MS = 10_000;

/** Starts `program` with `args` and resolves once it has printed its first line. */
export function startHeld(program: string, args: readonly string[], options: HeldOptions = {}): Promise<Held> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const child = spawn(process.execPath, [`${programsDir}${program}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  // A process that could not be spawned emits 'error' and no 'exit'.
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  child.stdin.on('error', () => {}); // EPIPE when it has already gone: stop() copes
  let stopping: Promise<void> | null = null;
  const stop = () => (stopping ??= stopChild(child, exited, options.stopSignal));
  return new Promise<Held>((resolve, reject) => {
    let out = '';
    let err = '';
    let ready = false;
    const fail = (why: string) => {
      clearTimeout(timer);
      void stop();
      reject(new Error(`${program} ${args.join(' ')} ${why}: ${err.trim() || out.trim() || '(no output)'}`));
    };
    const timer = setTimeout(() => fail(`was not ready within ${readyTimeoutMs} ms`), readyTimeoutMs);
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      if (ready) return;
      out += c.toString();
      const end = out.indexOf('\n');
      if (end < 0) return;
      ready = true;
      clearTimeout(timer);
      resolve({ pid: child.pid as number, ready: out.slice(0, end), stop });
    });
    child.once('exit', (code, signal) => {
      if (!ready) fail(`exited with ${signal ?? code} before it was ready`);
    });
    child.once('error', (error) => fail(`could not start (${error.message})`));
  });
}

/** Starts `program` once per entry of `argsList`, all at once; if any fails, stops the others and rejects. */
export async function startAllHeld(program: string, argsList: ReadonlyArray<readonly string[]>): Promise<Held[]> {
  const settled = await Promise.allSettled(argsList.map((args) => startHeld(program, args)));
  const held = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure !== undefined) {
    await Promise.all(held.map((h) => h.stop()));
    throw failure.reason;
  }
  return held;
}

async function stopChild(child: ChildProcess, exited: Promise<void>, signal: NodeJS.Signals | undefined): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin?.end();
  if (signal !== undefined) child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** Resident set size of process `pid` in bytes (the same figure as its `process.memoryUsage().rss`). */
export async function rssOf(pid: number): Promise<number> {
  return (await pidusage(pid)).memory;
}
