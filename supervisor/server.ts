/**
 * The supervisor: listens on the home's Unix socket, owns the connections, the StreamMux and the
 * worker pool, and its own lifetime (idle shutdown, parent watch, drain).
 *
 * ```
 *  client ─┐                    ┌─ Connection ─┐             ┌─ worker 0: runs A, C
 *  client ─┼─ Unix socket ─ Supervisor ─ Connection ─┼─ StreamMux ─ pool ─┤
 *  CLI    ─┘                    └─ Connection ─┘             └─ worker 1: run B
 * ```
 * Contracts: `close()` drains (finishes open runs as interrupted, fsyncs, says goodbye, removes
 * the socket) within `drainTimeoutMs` and is idempotent; `destroy()` stops at once, leaving logs
 * as the OS has them.
 */
import { chmodSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import {
  encodeFrameWithValue, ErrorCode, formatServiceEnv, HEADER_BYTES, type HomeLayout, homeLayout, Kind, MuxvisorError,
} from '../protocol/index.js';
import { Admission } from './admission.js';
import { Connection, type ConnectionHost, type OpContext } from './connection.js';
import { EventBus, SUPERVISOR_TOPIC } from './events.js';
import { ensureToken, prepareDirs, recoverAbandonedRuns, removeRuntimeFiles, removeStaleSocket, writePid } from './home.js';
import { acquireHomeLock, type HomeLock } from './lock.js';
import { createLogger, type Logger } from './log.js';
import { LoopDelay } from './loop-delay.js';
import { operations, unknownOp } from './ops.js';
import { type ResolvedOptions, resolveOptions, type SupervisorOptions } from './options.js';
import type { RunStream } from './run-stream.js';
import { ServiceManager, type ServicesOwner } from './services/manager.js';
import { type MuxOwner, type PendingSync, StreamMux } from './stream-mux.js';
import type { WorkerEvent } from './workers/messages.js';
import { type PoolOwner, type WorkerHandle, WorkerPool } from './workers/pool.js';

export type SupervisorState = 'running' | 'draining' | 'stopped';

export interface Totals {
  bytesIn: number;
  bytesOut: number;
  recordsIn: number;
  requestsIn: number;
}

export class Supervisor implements ConnectionHost, MuxOwner, PoolOwner, ServicesOwner {
  readonly options: ResolvedOptions;
  readonly layout: HomeLayout;
  readonly token: string;
  readonly server: { name: string; version: string; pid: number };
  readonly log: Logger;
  readonly pool: WorkerPool;
  readonly mux: StreamMux;
  readonly bus = new EventBus();
  readonly services: ServiceManager;
  readonly startedAt = Date.now();
  state: SupervisorState = 'running';
  workerFailures = 0;
  readonly #listener: Server;
  readonly #lock: HomeLock;
  readonly #connections = new Map<number, Connection>();
  #nextConnection = 1;
  /** Traffic of connections already closed; live ones are summed on demand. */
  readonly #closedTotals: Totals = { bytesIn: 0, bytesOut: 0, recordsIn: 0, requestsIn: 0 };
  #lastSample: { at: number; totals: Totals };
  #rates = { recordsPerSec: 0, requestsPerSec: 0, bytesInPerSec: 0, bytesOutPerSec: 0, cpuPercent: 0 };
  #lastCpu = process.cpuUsage();
  /** How late the main thread runs what is due (loop-delay.ts). */
  readonly loopDelay = new LoopDelay();
  readonly #timers: NodeJS.Timeout[] = [];
  #idleTimer: NodeJS.Timeout | null = null;
  /** Set once listening: the cap on connections and the refusals (admission.ts). */
  #admission: Admission | null = null;
  #closing: Promise<void> | null = null;
  #markStopped!: () => void;
  /** Resolves once the supervisor has stopped, by a drain or by `destroy`. */
  readonly stopped = new Promise<void>((resolve) => {
    this.#markStopped = resolve;
  });

  private constructor(options: ResolvedOptions, layout: HomeLayout, token: string, lock: HomeLock, log: Logger, version: string) {
    this.options = options;
    this.layout = layout;
    this.token = token;
    this.#lock = lock;
    this.log = log;
    this.server = { name: 'muxvisor', version, pid: process.pid };
    this.pool = new WorkerPool({
      size: options.workers, watchdogMs: options.watchdogMs, fsyncIntervalMs: options.fsyncIntervalMs,
      highWaterBytes: options.workerHighWaterBytes, ringBytes: 2 * options.workerHighWaterBytes,
      maxPayloadBytes: options.maxPayloadBytes, maxDedicated: options.maxDedicatedWorkers,
    }, this);
    this.mux = new StreamMux(this.pool, { runsDir: layout.runsDir, requestTimeoutMs: options.requestTimeoutMs, fsyncIntervalMs: options.fsyncIntervalMs }, this, log, this.bus);
    this.services = new ServiceManager(layout, this.bus, this, log, options.serviceSampleMs);
    // Half-open: when a client ends its side, ours stays writable long enough to say why we close.
    this.#listener = createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
    this.#lastSample = { at: Date.now(), totals: this.traffic() };
  }

  /**
   * Prepares the home, takes its lock and listens. Resolves to null when another supervisor holds
   * the lock (it is the one clients will reach).
   */
  static async start(input: SupervisorOptions, version: string): Promise<Supervisor | null> {
    const options = resolveOptions(input);
    const layout = homeLayout(options.home);
    prepareDirs(layout);
    const lock = await acquireHomeLock(layout.home);
    if (lock === null) return null;
    const log = createLogger(layout.supervisorLog, options.logLevel, { pid: process.pid });
    try {
      const token = ensureToken(layout.tokenPath);
      if (removeStaleSocket(layout.socketPath)) log.warn({ socket: layout.socketPath }, 'removed a stale socket left by a supervisor that died');
      const supervisor = new Supervisor(options, layout, token, lock, log, version);
      await supervisor.#listen();
      return supervisor;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  async #listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#listener.once('error', reject);
      this.#listener.listen(this.layout.socketPath, () => {
        this.#listener.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.layout.socketPath, 0o600);
    writePid(this.layout.pidPath);
    const admission = new Admission(this.log);
    this.#admission = admission;
    this.#listener.on('error', (error) => admission.acceptFailed(error));
    this.log.info({ socket: this.layout.socketPath, version: this.server.version, options: this.options, connections: admission.budget }, 'supervisor listening');
    this.bus.publish(SUPERVISOR_TOPIC, { event: 'started', pid: process.pid, version: this.server.version });
    this.#timers.push(setInterval(() => this.#sample(), 1_000));
    if (this.options.parentPid !== null) this.#timers.push(setInterval(() => this.#checkParent(), 1_000));
    this.#armIdle();
    void recoverAbandonedRuns(this.layout, this.log);
    void this.services.restore().catch((error: Error) => this.log.error({ err: error.stack }, 'restoring services failed'));
  }

  get tokenPath(): string {
    return this.layout.tokenPath;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** The cap on connections and what was refused (null before listening). */
  get admission(): Admission | null {
    return this.#admission;
  }

  connections(): IterableIterator<Connection> {
    return this.#connections.values();
  }

  accepting(): boolean {
    return this.state === 'running';
  }

  traffic(): Totals {
    const t = { ...this.#closedTotals };
    for (const c of this.#connections.values()) {
      t.bytesIn += c.bytesIn;
      t.bytesOut += c.writer.bytesWritten;
      t.recordsIn += c.recordsIn;
      t.requestsIn += c.requestsIn;
    }
    return t;
  }

  rates() {
    return this.#rates;
  }

  /**
   * Runs op `op` for request `ctx.id` and answers it once. An op that answers later (a promise)
   * has a deadline: the request's `timeoutMs`, else `requestTimeoutMs`; when it passes, the
   * request is answered MUXVISOR_TIMEOUT and `ctx.signal` aborts.
   */
  operation(ctx: OpContext, op: string, args: unknown, timeoutMs: number | undefined): void {
    const { conn, id } = ctx;
    const run = operations[op];
    const answer = (result: unknown) => {
      let frame: Buffer;
      try {
        frame = encodeFrameWithValue({ kind: Kind.Response, flags: 0, id, channel: 0 }, result);
      } catch (error) {
        conn.fail(id, error as MuxvisorError);
        return;
      }
      const size = frame.length - HEADER_BYTES;
      if (size > this.options.maxPayloadBytes) {
        conn.fail(id, new MuxvisorError(ErrorCode.InvalidArgument, `the answer to \`${op}\` is ${size} bytes, more than the ${this.options.maxPayloadBytes}-byte limit of a frame: ask for less`, { data: { bytes: size } }));
        return;
      }
      conn.answer(id, frame);
    };
    const fail = (error: unknown) => conn.fail(id, error instanceof MuxvisorError ? error : new MuxvisorError(ErrorCode.Internal, `op \`${op}\` failed: ${(error as Error).message}`, { cause: error }));
    if (run === undefined) return fail(unknownOp(op));
    try {
      const result = run(this, (args ?? {}) as Record<string, unknown>, ctx);
      if (!(result instanceof Promise)) return answer(result);
      const limit = timeoutMs ?? this.options.requestTimeoutMs;
      const timer = setTimeout(() => {
        conn.fail(id, new MuxvisorError(ErrorCode.Timeout, `op \`${op}\` timed out after ${limit} ms`, { data: { timeoutMs: limit } }));
      }, limit);
      result.then(answer, fail).finally(() => clearTimeout(timer));
    } catch (error) {
      fail(error);
    }
  }

  closed(conn: Connection): void {
    if (!this.#connections.delete(conn.id)) return;
    this.#closedTotals.bytesIn += conn.bytesIn;
    this.#closedTotals.bytesOut += conn.writer.bytesWritten;
    this.#closedTotals.recordsIn += conn.recordsIn;
    this.#closedTotals.requestsIn += conn.requestsIn;
    conn.log.debug('connection closed');
    this.#armIdle();
  }

  // MuxOwner
  failPendingOn(runs: ReadonlySet<RunStream>, error: MuxvisorError, resumed: ReadonlySet<RunStream>): PendingSync[] {
    const syncs: PendingSync[] = [];
    for (const c of this.#connections.values()) {
      for (const { id, run } of c.failPendingOn(runs, error, resumed)) syncs.push({ conn: c.id, id, run });
    }
    return syncs;
  }

  owner(conn: number): Connection | undefined {
    return this.#connections.get(conn);
  }

  runFinished(run: RunStream): void {
    this.services.runFinished(run.id);
    this.#armIdle();
  }

  // ServicesOwner
  runIsOpen(id: string): boolean {
    return this.mux.get(id)?.live === true;
  }

  serviceEnv(): string {
    return formatServiceEnv({ socketPath: this.layout.socketPath, token: this.token });
  }

  activityChanged(): void {
    if (this.services.active > 0) {
      if (this.#idleTimer) clearTimeout(this.#idleTimer);
      this.#idleTimer = null;
    } else {
      this.#armIdle();
    }
  }

  // PoolOwner
  deliver(conn: number, frame: Buffer): void {
    this.#connections.get(conn)?.answer(frame.readUInt32LE(8), frame);
  }

  event(worker: WorkerHandle, event: WorkerEvent): void {
    if (event.type === 'badInput') {
      const conn = this.#connections.get(event.conn);
      conn?.fatal(MuxvisorError.fromWire(event.error));
      return;
    }
    this.mux.workerEvent(worker, event);
  }

  failed(worker: WorkerHandle, reason: string, retained: Buffer[], blamed: number | null): void {
    this.workerFailures++;
    this.bus.publish(SUPERVISOR_TOPIC, { event: 'worker-failed', worker: worker.index, reason, runs: worker.runs.size });
    this.mux.workerFailed(worker, reason, retained, blamed);
  }

  /** Drains and stops; idempotent. Resolves when the socket is gone and logs are fsynced. */
  close(reason = 'stop requested'): Promise<void> {
    this.#closing ??= this.#drain(reason);
    return this.#closing;
  }

  async #drain(reason: string): Promise<void> {
    const deadline = Date.now() + this.options.drainTimeoutMs;
    this.state = 'draining';
    this.log.info({ reason, runs: this.mux.size, connections: this.#connections.size }, 'draining');
    this.bus.publish(SUPERVISOR_TOPIC, { event: 'draining', reason, runs: this.mux.size, connections: this.#connections.size });
    for (const t of this.#timers) clearInterval(t);
    this.loopDelay.stop();
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#listener.close();
    await Promise.all([
      this.mux.finishAll({ status: 'interrupted', reason: `the supervisor stopped: ${reason}` }, Math.max(0, deadline - Date.now() - 200)),
      this.services.stopAll(Math.max(0, deadline - Date.now() - 200)),
    ]);
    for (const c of this.#connections.values()) c.goodbye(reason);
    await this.pool.stop(Math.max(100, deadline - Date.now()));
    removeRuntimeFiles(this.layout);
    await this.#lock.release();
    this.state = 'stopped';
    this.log.info({ reason, runsLeft: this.mux.size }, 'stopped');
    this.#markStopped();
  }

  /** Stops now: no drain. The caller exits the process right after. */
  destroy(reason: string): void {
    this.log.warn({ reason }, 'stopping at once');
    this.services.killAllNow();
    removeRuntimeFiles(this.layout);
    this.state = 'stopped';
    this.#markStopped();
  }

  #accept(socket: Socket): void {
    if (this.state !== 'running') {
      socket.destroy();
      return;
    }
    if (this.#admission !== null && !this.#admission.admit(socket, this.#connections.size)) return;
    const conn = new Connection(this.#nextConnection++, socket, this, this.log);
    this.#connections.set(conn.id, conn);
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  #armIdle(): void {
    if (this.state !== 'running' || this.options.idleTimeoutMs === 0) return;
    if (this.#connections.size > 0 || this.mux.size > 0 || this.services.active > 0) return;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => void this.close(`idle for ${this.options.idleTimeoutMs} ms with no clients and no runs`), this.options.idleTimeoutMs);
  }

  #checkParent(): void {
    const pid = this.options.parentPid as number;
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') void this.close(`parent process ${pid} exited`);
    }
  }

  #sample(): void {
    const now = Date.now();
    const totals = this.traffic();
    const dt = (now - this.#lastSample.at) / 1000;
    const prev = this.#lastSample.totals;
    const cpu = process.cpuUsage();
    const cpuMicros = cpu.user + cpu.system - this.#lastCpu.user - this.#lastCpu.system;
    this.#lastCpu = cpu;
    if (dt > 0) {
      this.#rates = {
        // Of one core, over the last second (workers' threads included: they share the process).
        cpuPercent: Math.max(0, cpuMicros / 1e4 / dt),
        recordsPerSec: Math.max(0, (totals.recordsIn - prev.recordsIn) / dt),
        requestsPerSec: Math.max(0, (totals.requestsIn - prev.requestsIn) / dt),
        bytesInPerSec: Math.max(0, (totals.bytesIn - prev.bytesIn) / dt),
        bytesOutPerSec: Math.max(0, (totals.bytesOut - prev.bytesOut) / dt),
      };
    }
    this.#lastSample = { at: now, totals };
    this.loopDelay.tick();
  }
}
