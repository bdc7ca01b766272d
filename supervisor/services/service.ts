/**
 * One supervised service: its state machine, its process tree, its restarts.
 *
 * ```
 *  stopped ──start──▶ starting ──probe passed──▶ running
 *     ▲                 │  │                      │
 *     │        exit/probe failed             exit │
 *     │                 ▼  ▼                      ▼
 *  stopping ◀─stop── backoff ◀── restart policy ──┘   (or exited / failed when it says no)
 * ```
 * Contracts:
 * - User actions (start, stop, restart, remove) and backoff restarts run one at a time through a
 *   queue (p-queue, concurrency 1), so they never interleave.
 * - An exit is noticed when the process ends, not at the next tick: the state never says running
 *   for a dead process. Whatever the first process left behind is cleaned up before a restart.
 * - `stopping` ends in `stopped` only when no process of the tree is alive (proc.ts says what the
 *   tree is); a process that survives SIGKILL makes it `failed`, naming the pids.
 * - Every transition goes to the host, which gives it a sequence number and publishes it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import PQueue from 'p-queue';
import {
  ErrorCode, MuxvisorError, type ResolvedServiceDefinition, type ServiceEvent, type ServiceExit, type ServiceStatus, type ServiceState, substitute,
} from '../../protocol/index.js';
import type { Logger } from '../log.js';
import { withInheritedUmask } from '../umask.js';
import { OutputCapture } from './output.js';
import { allocatePort, portIsFree } from './ports.js';
import { ProbeFailure, probeReady } from './probes.js';
import { MARKER_ENV, type ProcEntry, readStat } from './proc.js';
import { terminateTree, type TerminateResult } from './terminate.js';

export interface ServiceHost {
  readonly home: string;
  /** Identifies the home in process markers (a hash of its path). */
  readonly homeId: string;
  readonly log: Logger;
  /** The environment every service starts from. */
  baseEnv(): Record<string, string>;
  /** A state change: the host numbers and publishes it. */
  transition(service: Service, event: ServiceEvent): void;
  /** The service's ports changed (a new one was allocated): they are saved. */
  portsChanged(service: Service): void;
}

/** Where a service's directory records the process group and leader start time of its last launch. */
export const LAUNCH_FILE = 'launch.json';

/** Lines of output an exit or failure event carries. */
const EXIT_LINES = 20;

export class Service {
  definition: ResolvedServiceDefinition;
  readonly dir: string;
  readonly output: OutputCapture;
  state: ServiceState = 'stopped';
  desired: 'running' | 'stopped' = 'stopped';
  reason = 'added';
  /** The ports in use (allocated ones filled in); kept across restarts while they stay free. */
  ports: Record<string, number>;
  /** Values of `inheritEnv` from the requesting process; memory only. */
  inherited: Record<string, string> = {};
  missingEnv: string[] = [];
  pid: number | null = null;
  pgid: number | null = null;
  generation = 0;
  restarts = 0;
  startedAt: number | null = null;
  readyAt: number | null = null;
  lastExit: ServiceExit | null = null;
  health: ServiceStatus['health'];
  usage: ServiceStatus['usage'] = null;
  /** The tree's members at the last sample, so escapees keep being counted. */
  known: ProcEntry[] = [];
  readonly #host: ServiceHost;
  readonly log: Logger;
  readonly #queue = new PQueue({ concurrency: 1 });
  #child: ChildProcess | null = null;
  /** Exits of generations up to this one are expected (we are stopping them). */
  #expected = 0;
  #attempt: AbortController | null = null;
  #backoffTimer: NodeJS.Timeout | null = null;
  #resetTimer: NodeJS.Timeout | null = null;
  #restartTimes: number[] = [];
  #consecutive = 0;
  #shuttingDown = false;
  /** Being removed: nothing starts it again. */
  #disposed = false;
  /** Stops (stop, restart, shutdown) queued or running: an exit meanwhile is theirs to report. */
  #halting = 0;
  /** Starts (start, restart) queued or running: a waiter keeps waiting for them. */
  #starting = 0;
  /** Killing what an exited process left behind; a restart waits for it. */
  #cleanup: Promise<unknown> = Promise.resolve();
  readonly #waiters = new Set<{ resolve: () => void; reject: (e: MuxvisorError) => void }>();

  constructor(definition: ResolvedServiceDefinition, dir: string, host: ServiceHost, ports?: Record<string, number>) {
    this.definition = definition;
    this.dir = dir;
    this.#host = host;
    this.log = host.log.child({ service: definition.name });
    this.ports = { ...definition.ports, ...ports };
    this.output = new OutputCapture(dir, definition.logs);
    this.health = { ready: false, probe: describeProbe(definition), detail: null, at: null };
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  get name(): string {
    return this.definition.name;
  }

  /** The marker prefix every process of this service carries in MUXVISOR_SUPERVISED. */
  get marker(): string {
    return `${this.#host.homeId}/${this.name}/`;
  }

  get url(): string | null {
    return this.definition.url === null ? null : substitute(this.definition.url, this.#values());
  }

  /** Starts it (again, if it ended); a no-op when it is starting or running. */
  start(reason: string): Promise<void> {
    this.desired = 'running';
    this.#starting++;
    return this.#queue.add(async () => {
      if (this.state === 'starting' || this.state === 'running' || this.desired !== 'running' || this.#shuttingDown || this.#disposed) return;
      this.#clearTimers();
      if (this.state !== 'backoff') {
        this.restarts = 0;
        this.#consecutive = 0;
        this.#restartTimes = [];
      }
      await this.#launch(reason);
    }).finally(() => this.#startDone());
  }

  #startDone(): void {
    this.#starting--;
    if (this.state !== 'running' && this.state !== 'starting' && this.state !== 'backoff') this.#rejectWaiters();
  }

  /** Stops the whole tree; resolves when nothing of it is alive. */
  stop(reason: string, timeoutMs = this.definition.stopTimeoutMs): Promise<void> {
    this.desired = 'stopped';
    this.#interrupt(reason);
    this.#halting++;
    return this.#queue.add(() => this.#halt(reason, timeoutMs)).finally(() => this.#halting--);
  }

  restart(reason: string): Promise<void> {
    this.desired = 'running';
    this.#interrupt(reason);
    this.#halting++;
    this.#starting++;
    return this.#queue.add(async () => {
      try {
        await this.#halt(`restarting: ${reason}`, this.definition.stopTimeoutMs);
      } finally {
        this.#halting--;
      }
      this.restarts = 0;
      this.#consecutive = 0;
      this.#restartTimes = [];
      if (this.desired === 'running' && !this.#shuttingDown && !this.#disposed) await this.#launch(reason);
    }).finally(() => this.#startDone());
  }

  /**
   * The supervisor is stopping: stop the tree without changing `desired` (what is saved stays
   * what the user asked for, so the next supervisor starts it again), and never restart after.
   */
  shutdown(reason: string, timeoutMs: number): Promise<void> {
    this.#shuttingDown = true;
    this.#interrupt(reason);
    this.#halting++;
    return this.#queue.add(() => this.#halt(reason, timeoutMs)).finally(() => this.#halting--);
  }

  /** Starts wait for `work` (the clean-up of a dead supervisor's leftovers) to settle. */
  afterCleanup(work: Promise<unknown>): void {
    this.#cleanup = work.catch(() => undefined);
  }

  /** A start in progress (probing, or waiting in backoff) gives way to a stop or restart at once. */
  #interrupt(reason: string): void {
    this.#attempt?.abort(new Error(`interrupted: ${reason}`));
    this.#attempt = null;
    if (this.#backoffTimer) clearTimeout(this.#backoffTimer);
    this.#backoffTimer = null;
  }

  /** Stops it for good: the caller forgets the service once this resolves. */
  async dispose(reason: string, timeoutMs = this.definition.stopTimeoutMs): Promise<void> {
    this.#disposed = true;
    await this.stop(reason, timeoutMs);
    await this.output.close();
  }

  /** Resolves when the service is ready; rejects MUXVISOR_SERVICE_FAILED when it ends or fails first. */
  waitReady(signal: AbortSignal): Promise<void> {
    if (this.state === 'running') return Promise.resolve();
    const ended = this.state === 'failed' || this.state === 'exited' || this.state === 'stopped';
    if (this.desired === 'stopped' || (ended && this.#starting === 0)) return Promise.reject(this.#notReady());
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (e: MuxvisorError) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        this.#waiters.delete(waiter);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  info(): ServiceStatus {
    return {
      name: this.name, state: this.state, desired: this.desired, pid: this.pid, ports: { ...this.ports }, url: this.url,
      health: { ...this.health }, restarts: this.restarts, startedAt: this.startedAt, readyAt: this.readyAt, lastExit: this.lastExit,
      usage: this.usage, reason: this.reason, missingEnv: this.missingEnv, logs: this.output.paths, definition: this.definition,
    };
  }

  /** Kills the tree now, synchronously (the supervisor is dying). */
  killNow(): void {
    this.#clearTimers();
    this.#expected = this.generation;
    if (this.pgid !== null) {
      try {
        process.kill(-this.pgid, 'SIGKILL');
      } catch {
        // the group is gone
      }
    }
  }

  async #launch(reason: string): Promise<void> {
    const generation = ++this.generation;
    const attempt = new AbortController();
    this.#attempt = attempt;
    await this.#cleanup;
    if (attempt.signal.aborted || this.#disposed) return;
    this.startedAt = null;
    this.readyAt = null;
    this.health = { ready: false, probe: describeProbe(this.definition), detail: null, at: null };
    this.#set('starting', reason);
    let child: ChildProcess | null = null;
    try {
      if (await this.#preparePorts()) this.#host.portsChanged(this);
      const values = this.#values();
      const cwd = this.definition.cwd ?? this.dir;
      if (!existsSync(cwd)) throw new CannotStart(`its working directory ${cwd} does not exist`);
      attempt.signal.throwIfAborted();
      const env = this.#environment(generation);
      const args = this.definition.args.map((a) => substitute(a, values));
      // The service's files are the user's: it gets the umask the supervisor was started with.
      child = withInheritedUmask(() => spawn(this.definition.command, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
      await new Promise<void>((resolve, reject) => {
        child?.once('spawn', resolve);
        child?.once('error', reject);
      }).catch((error: NodeJS.ErrnoException) => {
        const Failure = error.code === 'ENOENT' || error.code === 'EACCES' || error.code === 'ENOTDIR' ? CannotStart : ProbeFailure;
        throw new Failure(error.code === 'ENOENT'
          ? `\`${this.definition.command}\` was not found (PATH=${env.PATH ?? ''})`
          : `\`${this.definition.command}\` could not be started: ${error.message}`);
      });
      this.#child = child;
      this.pid = child.pid as number;
      this.pgid = this.pid;
      this.startedAt = Date.now();
      // For a supervisor that finds this group left behind: the leader's start time proves it is
      // still this group (a marker alone misses programs that rewrite their environment).
      try {
        writeFileSync(join(this.dir, LAUNCH_FILE), JSON.stringify({ pgid: this.pgid, start: readStat(this.pid)?.start ?? -1, generation }));
      } catch (error) {
        this.log.warn({ err: (error as Error).message }, 'could not record the launch');
      }
      const started = child;
      child.on('error', (error) => this.log.warn({ err: error.message }, 'child process error'));
      child.once('exit', (code, signal) => this.#exited(started, generation, code, signal));
      this.output.attach(generation, `==== muxvisor: start ${generation} of \`${this.name}\` at ${new Date().toISOString()}, pid ${this.pid}: ${[this.definition.command, ...args].join(' ')} ====`, {
        stdout: child.stdout, stderr: child.stderr,
      });
      this.log.info({ pid: this.pid, generation, args }, 'service started');
      const detail = await probeReady(this.definition.readiness, {
        ports: this.ports, linesSinceStart: () => this.output.linesSinceStart(),
        onLine: (listener) => this.output.onLine((stream, line, from) => {
          if (from === generation) listener(stream, line);
        }),
      }, attempt.signal);
      if (attempt.signal.aborted || this.generation !== generation) return;
      this.#attempt = null;
      this.readyAt = Date.now();
      this.health = { ready: true, probe: describeProbe(this.definition), detail, at: this.readyAt };
      this.#set('running', `ready: ${detail}`, { probe: detail });
      this.#resetTimer = setTimeout(() => {
        this.#consecutive = 0;
      }, this.definition.restart.resetAfterMs);
      this.#resetTimer.unref();
      for (const w of this.#waiters) w.resolve();
      this.#waiters.clear();
    } catch (error) {
      // An exit (handled by #exited) or a stop aborted this attempt: nothing more to do here.
      if (attempt.signal.aborted || this.generation !== generation) return;
      if (!(error instanceof ProbeFailure) && !(error instanceof CannotStart)) this.log.error({ err: (error as Error).stack }, 'unexpected error while starting');
      this.#attempt = null;
      const failure = `start failed: ${(error as Error).message}`;
      const detail = (error as Error).message;
      this.health = { ready: false, probe: describeProbe(this.definition), detail, at: Date.now() };
      if (child?.pid !== undefined) {
        this.#expected = generation;
        this.#set('stopping', `${failure}; stopping what it started`, { probe: detail });
        await this.#terminate(child, this.definition.stopTimeoutMs);
      }
      this.pid = null;
      this.#afterEnd(failure, false, detail, error instanceof CannotStart);
    }
  }

  /**
   * The process exited. Handled synchronously, so no moment exists in which the state says
   * running for a dead process. (Node reports the exit after the output the process wrote
   * before it, so the last lines are in hand.) Exits while a stop or restart is pending, or of a
   * generation we are stopping, are expected: the stopper reports them.
   */
  #exited(child: ChildProcess, generation: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child === child) this.#child = null;
    this.lastExit = { code, signal, at: Date.now(), lastLines: this.output.lastOf(generation, EXIT_LINES).map((l) => l.line) };
    if (generation <= this.#expected || generation !== this.generation || this.#halting > 0) return;
    this.#attempt?.abort(new Error('the process exited'));
    this.#attempt = null;
    this.pid = null;
    this.#clearTimers();
    const how = describeExit(code, signal);
    const uptime = this.startedAt === null ? 0 : Date.now() - this.startedAt;
    const reason = this.state === 'running' ? `${how} after running ${(uptime / 1000).toFixed(1)} s` : `${how} before it was ready`;
    this.log.warn({ code, signal, uptimeMs: uptime, lastLines: this.lastExit.lastLines.slice(-5) }, 'service exited');
    // Whatever the first process left running (children in its group, escapees) goes now.
    this.#expected = generation;
    this.#cleanup = this.#terminate(null, this.definition.stopTimeoutMs);
    const success = signal === null && code !== null && this.definition.restart.successExitCodes.includes(code);
    this.#afterEnd(reason, success);
  }

  /** After an exit or a failed start: restart with backoff, or settle in exited or failed. */
  #afterEnd(reason: string, success: boolean, probe?: string, permanent = false): void {
    const policy = this.definition.restart;
    const extra = { ...(this.lastExit !== null && !probe ? { exit: this.lastExit } : {}), ...(probe ? { probe } : {}) };
    const restart = !permanent && this.desired === 'running' && !this.#shuttingDown && !this.#disposed && (policy.policy === 'always' || (policy.policy === 'on-failure' && !success));
    if (!restart) {
      this.#set(success ? 'exited' : 'failed', reason, extra);
      this.#rejectWaiters();
      return;
    }
    const now = Date.now();
    this.#restartTimes = this.#restartTimes.filter((t) => now - t < policy.periodMs);
    if (this.#restartTimes.length >= policy.maxRestarts) {
      this.#set('failed', `${reason}; gave up after ${this.#restartTimes.length} restart(s) within ${policy.periodMs} ms`, extra);
      this.#rejectWaiters();
      return;
    }
    const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** this.#consecutive);
    const delay = Math.max(0, Math.round(base * (1 + policy.jitter * (2 * Math.random() - 1))));
    this.#consecutive++;
    this.#restartTimes.push(now);
    this.restarts++;
    this.#set('backoff', `${reason}; restart ${this.restarts} in ${delay} ms`, extra);
    this.#backoffTimer = setTimeout(() => {
      this.#backoffTimer = null;
      void this.#queue.add(async () => {
        if (this.state === 'backoff' && this.desired === 'running') await this.#launch(`restart ${this.restarts} after ${delay} ms of backoff`);
      });
    }, delay);
  }

  /** Stops whatever runs and settles in `stopped` (or `failed` if something survives SIGKILL). */
  async #halt(reason: string, timeoutMs: number): Promise<void> {
    this.#clearTimers();
    this.#attempt?.abort(new Error(`stopped: ${reason}`));
    this.#attempt = null;
    this.#expected = this.generation;
    const child = this.#child;
    if (this.state !== 'stopped' || child !== null) this.#set('stopping', reason);
    await this.#cleanup;
    const result = await this.#terminate(child, timeoutMs);
    this.pid = null;
    this.usage = null;
    this.known = [];
    this.health = { ...this.health, ready: false };
    if (result.remaining.length > 0) {
      this.#set('failed', `${reason}; ${result.remaining.length} process(es) survived SIGKILL: ${result.remaining.join(', ')}`);
    } else if (this.state !== 'stopped') {
      const forced = result.killed > 0 ? `; ${result.killed} process(es) ignored ${this.definition.stopSignal} for ${timeoutMs} ms and were killed` : '';
      this.#set('stopped', `${reason}${forced}`);
    }
    this.#rejectWaiters();
  }

  async #terminate(child: ChildProcess | null, timeoutMs: number): Promise<TerminateResult> {
    const root = child !== null && child.exitCode === null && child.signalCode === null ? (child.pid ?? null) : null;
    const pgid = this.pgid;
    const result = await terminateTree({ pgid, marker: this.marker, root, signal: this.definition.stopSignal as NodeJS.Signals, timeoutMs });
    // Nothing of the group is left, so its id may be reused by any process: forget it.
    if (result.remaining.length === 0 && this.pgid === pgid && this.#child === null) {
      this.pgid = null;
      rmSync(join(this.dir, LAUNCH_FILE), { force: true });
    }
    if (result.found > 0) this.log.info({ ...result }, 'process tree stopped');
    if (result.remaining.length > 0) this.log.error({ remaining: result.remaining }, 'processes survived SIGKILL');
    return result;
  }

  /** Fills in the ports of this start; true when one differs from the last start's. */
  async #preparePorts(): Promise<boolean> {
    const before = JSON.stringify(this.ports);
    for (const [name, fixed] of Object.entries(this.definition.ports)) {
      if (fixed !== 0) {
        if (!(await portIsFree(fixed))) throw new ProbeFailure(`port ${fixed} (\`${name}\`) is already in use on 127.0.0.1`);
        this.ports[name] = fixed;
        continue;
      }
      const previous = this.ports[name];
      if (previous !== undefined && previous !== 0 && (await portIsFree(previous))) continue;
      this.ports[name] = await allocatePort();
    }
    return JSON.stringify(this.ports) !== before;
  }

  #environment(generation: number): Record<string, string> {
    const env = { ...this.#host.baseEnv() };
    this.missingEnv = [];
    for (const name of this.definition.inheritEnv) {
      const value = this.inherited[name] ?? process.env[name];
      if (value === undefined) this.missingEnv.push(name);
      else env[name] = value;
    }
    const first = Object.values(this.ports)[0];
    if (first !== undefined) env.PORT = String(first);
    const values = this.#values();
    for (const [k, v] of Object.entries(this.definition.env)) env[k] = substitute(v, values);
    if (this.definition.run !== null) env.MUXVISOR_RUN = this.definition.run;
    env[MARKER_ENV] = `${this.marker}${generation}`;
    return env;
  }

  #values() {
    return { ports: this.ports, name: this.name, home: this.#host.home, run: this.definition.run };
  }

  #set(state: ServiceState, reason: string, extra: Partial<ServiceEvent> = {}): void {
    const previous = this.state;
    this.state = state;
    this.reason = reason;
    this.#host.transition(this, { service: this.name, state, previous, reason, pid: this.pid, restarts: this.restarts, ...extra });
  }

  /** Rejects waiters, unless a start is still to come (and the service should run). */
  #rejectWaiters(): void {
    if (this.#starting > 0 && this.desired === 'running' && !this.#shuttingDown) return;
    for (const w of this.#waiters) w.reject(this.#notReady());
    this.#waiters.clear();
  }

  #notReady(): MuxvisorError {
    return new MuxvisorError(ErrorCode.ServiceFailed, `service \`${this.name}\` is ${this.state}${this.desired === 'stopped' ? ' (stopped by request)' : ''}: ${this.reason}`, {
      data: { service: this.name, state: this.state, reason: this.reason, lastExit: this.lastExit },
    });
  }

  #clearTimers(): void {
    if (this.#backoffTimer) clearTimeout(this.#backoffTimer);
    if (this.#resetTimer) clearTimeout(this.#resetTimer);
    this.#backoffTimer = null;
    this.#resetTimer = null;
  }
}

/** A start that cannot succeed by retrying (no such program, no such directory): no restarts. */
class CannotStart extends Error {
  override name = 'CannotStart';
}

export function describeExit(code: number | null, signal: string | null): string {
  return signal !== null ? `killed by ${signal}` : `exited with code ${code}`;
}

function describeProbe(d: ResolvedServiceDefinition): string {
  const p = d.readiness;
  switch (p.type) {
    case 'none':
      return 'none';
    case 'tcp':
      return `tcp ${p.host}:{port:${p.port}} within ${p.timeoutMs} ms`;
    case 'http':
      return `http GET ${p.path} on ${p.host}:{port:${p.port}} within ${p.timeoutMs} ms`;
    case 'log':
      return `log line /${p.pattern}/ within ${p.timeoutMs} ms`;
  }
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}
