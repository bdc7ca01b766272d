/**
 * What a chaos section works with: the seeded generator, counters, figures, violations, and the
 * processes and homes it creates. The context owns every process it spawned and every home it
 * made: `teardown()` kills what is still alive (SIGKILL), stops each home's supervisor and its
 * services, and removes the homes, whatever the section did or threw.
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { processAlive, waitForExit } from '../../lib/daemon.js';
import { type TempHome, tempHome } from '../helpers/home.js';
import type { Rng } from './random.js';
import type { Figure, SectionReport } from './report.js';

/** The built tree (dist/) this file runs from, and the CLI users run. */
export const distDir = fileURLToPath(new URL('../../', import.meta.url));
export const cliPath = fileURLToPath(new URL('../../lib/cli/main.js', import.meta.url));
export const programsDir = fileURLToPath(new URL('./programs/', import.meta.url));

export interface ChaosOptions {
  quick: boolean;
  seed: number;
  /** Integrity episodes. */
  episodes: number;
  /** Fuzz cases. */
  fuzzCases: number;
  /** How long the soak publishes, in seconds. */
  soakSeconds: number;
  /** Clients publishing at full speed during the soak. */
  soakClients: number;
  /** Concurrent connections held open in the load part. */
  connections: number;
  /** Progress lines on stderr. */
  verbose: boolean;
  /** Keep the homes of a section that broke a promise (their supervisors stopped), for a look. */
  keep: boolean;
}

export interface Spawned {
  process: ChildProcess;
  pid: number;
  /**
   * Resolves with the exit code and signal once the process has exited and its stdout and stderr
   * are read to their end (Node emits 'exit' before the last output; a grandchild holding the
   * pipes open is given 2 s).
   */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True once `exited` has resolved: what the process printed is all there. */
  done: boolean;
  stdout(): string;
  stderr(): string;
}

export class SectionContext {
  readonly report: SectionReport;
  readonly #spawned: Spawned[] = [];
  readonly #homes: TempHome[] = [];

  constructor(
    readonly options: ChaosOptions,
    readonly rng: Rng,
    readonly signal: AbortSignal,
    name: string,
    title: string,
  ) {
    this.report = { name, title, durationMs: 0, skipped: null, counters: {}, figures: [], violations: [] };
  }

  get quick(): boolean {
    return this.options.quick;
  }

  count(name: string, n = 1): void {
    this.report.counters[name] = (this.report.counters[name] ?? 0) + n;
  }

  /** Records a broken promise. */
  violation(check: string, message: string, data?: unknown): void {
    this.report.violations.push({ section: this.report.name, check, message, ...(data === undefined ? {} : { data }) });
    this.log(`VIOLATION ${check}: ${message}`);
  }

  /** Counts a check; records a violation when `ok` is false. Returns `ok`. */
  check(ok: boolean, check: string, message: () => string, data?: () => unknown): boolean {
    this.count('checks');
    if (!ok) this.violation(check, message(), data?.());
    return ok;
  }

  /**
   * Records a measured figure. A judged bound that is broken is also a violation. Timing bounds
   * pass `timing: true`: they are judged only in full runs (a `--quick` run shares its machine).
   */
  figure(name: string, value: number, unit: string, bound: { max?: number; min?: number; timing?: boolean; note?: string } = {}): void {
    const judged = (bound.max !== undefined || bound.min !== undefined) && !(bound.timing && this.quick);
    const f: Figure = { name, value, unit, judged };
    if (bound.max !== undefined) f.max = bound.max;
    if (bound.min !== undefined) f.min = bound.min;
    if (bound.note !== undefined) f.note = bound.note;
    this.report.figures.push(f);
    if (!judged) return;
    this.count('checks');
    if (bound.max !== undefined && value > bound.max) this.violation(`${name} over its bound`, `${name} was ${value} ${unit}, more than ${bound.max} ${unit}`);
    if (bound.min !== undefined && value < bound.min) this.violation(`${name} under its bound`, `${name} was ${value} ${unit}, less than ${bound.min} ${unit}`);
  }

  skip(reason: string): void {
    this.report.skipped = this.report.skipped ? `${this.report.skipped}; ${reason}` : reason;
    this.log(`skipped: ${reason}`);
  }

  log(message: string): void {
    if (this.options.verbose) process.stderr.write(`[${this.report.name}] ${message}\n`);
  }

  /** A fresh temporary home, removed (supervisor and services stopped first) at teardown. */
  home(): TempHome {
    const home = tempHome('muxvisor-chaos-');
    this.#homes.push(home);
    return home;
  }

  /** Spawns a process this section owns: it is SIGKILLed at teardown if still alive. */
  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): Spawned {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, sig) => setTimeout(() => resolve({ code, signal: sig }), 2_000).unref());
      child.once('close', (code: number | null, sig: NodeJS.Signals | null) => resolve({ code, signal: sig }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
    const spawned: Spawned = { process: child, pid: child.pid ?? -1, exited, done: false, stdout: () => out, stderr: () => err };
    void exited.then(() => (spawned.done = true));
    this.#spawned.push(spawned);
    return spawned;
  }

  /** Spawns one of the chaos programs (dist/test/chaos/programs/NAME.js) with a JSON spec. */
  program(name: string, spec: unknown, options: SpawnOptions = {}): Spawned {
    return this.spawn(process.execPath, [`${programsDir}${name}.js`, JSON.stringify(spec)], options);
  }

  /** Runs the muxvisor CLI to its end (killed after `timeoutMs`). */
  async cli(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = this.spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, NO_COLOR: '1', ...env } });
    const timer = setTimeout(() => child.process.kill('SIGKILL'), timeoutMs);
    const { code } = await child.exited;
    clearTimeout(timer);
    return { code, stdout: child.stdout(), stderr: child.stderr() };
  }

  /**
   * Starts `home`'s supervisor the way users do (`muxvisor start`, never idle-stopped), with
   * `args` added. Records the check `check`; returns the supervisor's pid, or null (the check
   * failed, with the CLI's exit code and stderr).
   */
  async startSupervisor(home: TempHome, check: string, args: readonly string[] = []): Promise<number | null> {
    const started = await this.cli(['start', '--home', home.home, '--idle-timeout-ms', '0', ...args]);
    const pid = started.code === 0 ? home.supervisorPid() : null;
    return this.check(pid !== null, check, () => `muxvisor start --home ${home.home} exited ${started.code}${started.code === 0 ? ' but no supervisor pid was found' : ''}: ${started.stderr.trim()}`) ? pid : null;
  }

  /** Pids this section spawned that are still alive. */
  alive(): number[] {
    return this.#spawned.filter((s) => s.pid > 0 && processAlive(s.pid)).map((s) => s.pid);
  }

  /** Kills every process still alive, stops every home's supervisor and services, removes the homes. */
  async teardown(): Promise<void> {
    for (const s of this.#spawned) if (s.pid > 0 && processAlive(s.pid)) s.process.kill('SIGKILL');
    await Promise.all(this.#spawned.map((s) => (s.pid > 0 ? waitForExit(s.pid, 5_000) : true)));
    const keep = this.options.keep && this.report.violations.length > 0;
    for (const home of this.#homes.splice(0)) {
      if (!keep) {
        await home.cleanup().catch(() => {});
        continue;
      }
      await home.stopSupervisor('SIGKILL').catch(() => {});
      for (const pid of home.serviceProcesses().keys()) process.kill(pid, 'SIGKILL');
      process.stderr.write(`chaos: kept ${home.home} (section ${this.report.name} broke a promise)\n`);
    }
  }
}

/** Resident memory of `pid` in bytes (VmRSS), or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Open file descriptors of `pid`, or null when it is gone or not ours to read. */
export function fdCount(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
