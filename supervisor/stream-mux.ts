/**
 * StreamMux: the map from run id to run, and every change to it: open (fails if the id is taken),
 * attach, finish, remove, finishAll. It forwards a run's work to the worker hosting it and puts
 * the run back on its feet, from its log, when that worker dies.
 *
 * Contracts: a run is removed only once its worker reports it finished (log complete and
 * fsynced). A run whose last owner goes away unfinished is finished as `crashed` with the reason.
 * Only the main thread calls in here.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeValue, ErrorCode, isValidRunId, MuxvisorError, type Open } from '../protocol/index.js';
import type { EventBus } from './events.js';
import type { Logger } from './log.js';
import { type Owner, RunStream } from './run-stream.js';
import { type FinishOrder, forEachEntry, Op, type OpenOrder } from './workers/batch.js';
import type { WorkerEvent } from './workers/messages.js';
import type { WorkerHandle, WorkerPool } from './workers/pool.js';
import { recordedBefore } from './workers/storage-trouble.js';

/** A worker may be replaced under a run this often; the next failure fails the run. */
const MAX_RESTARTS = 3;

export interface MuxSettings {
  runsDir: string;
  requestTimeoutMs: number;
  fsyncIntervalMs: number;
}

/** What the mux needs from the supervisor around it. */
export interface MuxOwner {
  /**
   * Answers every request still waiting on one of `runs` with `error`, except FINISH requests
   * and the SYNCs to runs in `resumed`: those stay waiting, and are returned to be sent again.
   */
  failPendingOn(runs: ReadonlySet<RunStream>, error: MuxvisorError, resumed: ReadonlySet<RunStream>): PendingSync[];
  /** The connection with this id, to drop its channel. */
  owner(conn: number): Owner | undefined;
  runFinished(run: RunStream): void;
}

/** A SYNC still waiting: request `id` of connection `conn`, to `run`. */
export interface PendingSync {
  conn: number;
  id: number;
  run: RunStream;
}

/** The event topic of runs opening and finishing. */
export const RUN_TOPIC = 'run';

export class StreamMux {
  readonly #runs = new Map<string, RunStream>();
  readonly #pool: WorkerPool;
  readonly #settings: MuxSettings;
  readonly #owner: MuxOwner;
  readonly #log: Logger;
  /** Topic `run`: opened and finished, in order (PROTOCOL.md section 8). */
  readonly #bus: EventBus;
  #finishedWaiters: Array<() => void> = [];
  /**
   * Run ids with a directory in the home: read once at start, then every id opened. An OPEN of an
   * id not here costs no file-system call on this thread (a mkdir or stat waits for ext4's journal:
   * tens of ms while fsyncs run). One here is checked on disk (a run removed since may be opened
   * again). A run whose log appears behind the supervisor's back is still caught by the worker,
   * which never overwrites a log.
   */
  readonly #recorded: Set<string>;
  /** Counters since start. */
  opened = 0;
  finished = 0;
  crashed = 0;

  constructor(pool: WorkerPool, settings: MuxSettings, owner: MuxOwner, log: Logger, bus: EventBus) {
    this.#bus = bus;
    this.#pool = pool;
    this.#settings = settings;
    this.#owner = owner;
    this.#log = log;
    this.#recorded = new Set(listRunDirs(settings.runsDir));
  }

  get size(): number {
    return this.#runs.size;
  }

  get(id: string): RunStream | undefined {
    return this.#runs.get(id);
  }

  values(): IterableIterator<RunStream> {
    return this.#runs.values();
  }

  /**
   * Opens a run for `owner` on `channel`; its worker answers request `requestId` when the handler
   * is ready. Throws MUXVISOR_INVALID_ARGUMENT or MUXVISOR_RUN_EXISTS.
   */
  open(owner: Owner, requestId: number, channel: number, m: Open, dedicated: boolean): RunStream {
    checkRunId(m.run);
    const dir = join(this.#settings.runsDir, m.run);
    if (this.#runs.has(m.run)) {
      throw new MuxvisorError(ErrorCode.RunExists, `run ${m.run} is already open (attach to it instead)`, { data: { run: m.run, open: true } });
    }
    if (this.#recorded.has(m.run) && existsSync(join(dir, 'run.mvlog'))) {
      throw recordedBefore(m.run, dir);
    }
    const order: OpenOrder = {
      run: m.run, dir, resume: false, client: { pid: owner.pid, name: owner.name },
      requestTimeoutMs: this.#settings.requestTimeoutMs, fsyncIntervalMs: this.#settings.fsyncIntervalMs,
    };
    if (m.handler !== undefined) order.handler = m.handler;
    if (m.config !== undefined) order.config = m.config;
    // Encoded before anything changes: a config the encoder refuses must leave no run behind.
    const openPayload = payload({ ...order, answer: { conn: owner.id, id: requestId, channel } });
    // The worker makes the directory and the log (RunLogWriter.create).
    const worker = this.#pool.pick(dedicated);
    const slot = worker.nextSlot++;
    const run = new RunStream(m.run, dir, order, worker, slot);
    run.owners.set(owner, channel);
    this.#runs.set(run.id, run);
    this.#recorded.add(run.id);
    worker.runs.set(slot, run);
    this.opened++;
    this.#pool.add(worker, Op.Open, slot, owner.id, requestId, ...openPayload);
    this.#log.info({ run: run.id, conn: owner.id, worker: worker.index, handler: order.handler ?? 'default' }, 'run opened');
    this.#bus.publish(RUN_TOPIC, { event: 'opened', run: run.id, handler: order.handler ?? 'default', by: { pid: owner.pid, name: owner.name } });
    return run;
  }

  /**
   * Adds `owner` as a co-owner on `channel`, or, if it owns the run already, returns the channel it
   * has. Throws MUXVISOR_UNKNOWN_RUN unless the run is live.
   */
  attach(owner: Owner, channel: number, id: string): { run: RunStream; channel: number } {
    checkRunId(id);
    const run = this.#runs.get(id);
    if (run === undefined || !run.live) {
      throw new MuxvisorError(ErrorCode.UnknownRun, run ? `run ${id} is finishing; it cannot be attached to` : `no open run ${id}`, { data: { run: id } });
    }
    const existing = run.owners.get(owner);
    if (existing !== undefined) return { run, channel: existing };
    run.owners.set(owner, channel);
    return { run, channel };
  }

  record(run: RunStream, conn: number, source: Buffer, start: number, end: number): void {
    this.#pool.add(run.worker, Op.Record, run.slot, conn, run.records++, source, start, end);
    run.bytes += end - start;
  }

  /** `count` whole PUBLISH frames, back to back in `source[start..end)`, all for `run`. */
  frames(run: RunStream, conn: number, source: Buffer, start: number, end: number, count: number): void {
    this.#pool.add(run.worker, Op.Records, run.slot, conn, run.records, source, start, end);
    run.records += count;
    run.bytes += end - start - 16 * count;
  }

  request(run: RunStream, conn: number, id: number, source: Buffer, start: number, end: number): void {
    this.#pool.add(run.worker, Op.Request, run.slot, conn, id, source, start, end);
  }

  sync(run: RunStream, conn: number, id: number): void {
    this.#pool.add(run.worker, Op.Sync, run.slot, conn, id);
  }

  cancel(run: RunStream, conn: number, id: number): void {
    this.#pool.add(run.worker, Op.Cancel, run.slot, conn, id);
  }

  /**
   * Finishes `run` for all its owners: from now on their records to it are dropped (with one
   * warning each); the worker writes the FINISH entry and fsyncs; `answer` (a FINISH request)
   * gets the result. A second finish while the first is under way waits for the same result.
   * The owners' channels close when the run is finished.
   */
  finish(run: RunStream, order: FinishOrder, answer: { conn: number; id: number } | null): void {
    if (answer) run.finishWaiters.push(answer);
    if (run.state === 'finished') return;
    if (run.finishOrder === null) {
      run.finishOrder = order;
      run.state = 'finishing';
      if (order.status === 'crashed') this.crashed++;
      this.#log.info({ run: run.id, status: order.status, reason: order.reason, records: run.records }, 'run finishing');
    }
    this.#pool.add(run.worker, Op.Finish, run.slot, answer?.conn ?? 0, answer?.id ?? 0, ...payload(run.finishOrder));
  }

  /** `owner` gives up `run` (DETACH or disconnect); the last owner leaving unfinished crashes it. */
  release(owner: Owner, run: RunStream, reason: string): void {
    const channel = run.owners.get(owner);
    if (channel === undefined) return;
    run.owners.delete(owner);
    owner.dropChannel(channel);
    if (run.owners.size === 0 && run.live) this.finish(run, { status: 'crashed', reason }, null);
  }

  /** The connection is gone: every worker drops its requests in flight (nobody will read the answers). */
  connectionGone(conn: number): void {
    for (const worker of this.#pool.workers) this.#pool.add(worker, Op.Cancel, 0, conn, 0);
  }

  /** Finishes every live run with `order`; resolves when all are finished or after `ms`. */
  async finishAll(order: FinishOrder, ms: number): Promise<void> {
    for (const run of this.#runs.values()) if (run.live) this.finish(run, order, null);
    this.#pool.flush();
    if (this.#runs.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#finishedWaiters.push(resolve)),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); }),
    ]);
    clearTimeout(timer);
  }

  workerEvent(worker: WorkerHandle, event: WorkerEvent): void {
    if (!('slot' in event)) return;
    const run = worker.runs.get(event.slot) as RunStream | undefined;
    if (run === undefined) return;
    switch (event.type) {
      case 'opened':
        if (run.state === 'opening') run.state = 'open';
        if (event.recovered?.truncatedBytes) this.#log.warn({ run: run.id, ...event.recovered }, 'run log had a torn tail; cut off on resume');
        return;
      case 'openFailed':
        this.#log.warn({ run: run.id, error: event.error }, 'run failed to open');
        for (const [owner, channel] of run.owners) owner.dropChannel(channel);
        run.owners.clear();
        if (run.finishOrder === null) run.finishOrder = { status: 'failed', reason: event.error.message };
        run.state = 'finishing';
        return;
      case 'storageFailed':
        this.#log.error({ run: run.id, error: event.error, repeats: event.repeats }, 'run log write failed');
        return;
      case 'storageRecovered':
        this.#log.warn({ run: run.id, failures: event.failures, ms: event.ms }, 'run log writes work again');
        return;
      case 'failing':
        this.#log.error({ run: run.id, reason: event.reason }, 'run failed: its log cannot be written');
        if (run.finishOrder === null) run.finishOrder = { status: 'failed', reason: event.reason };
        if (run.live) run.state = 'finishing';
        return;
      case 'entryFailed':
        this.#log.error({ run: run.id, op: event.op, error: event.error }, 'a worker could not apply an entry');
        return;
      case 'finished':
        run.state = 'finished';
        for (const [owner, channel] of run.owners) owner.dropChannel(channel);
        run.owners.clear();
        worker.runs.delete(event.slot);
        this.#runs.delete(run.id);
        this.finished++;
        this.#log.info({ run: run.id, status: event.status, records: event.records, bytes: event.bytes }, 'run finished');
        this.#bus.publish(RUN_TOPIC, { event: 'finished', run: run.id, status: event.status, reason: event.reason ?? run.finishOrder?.reason ?? null, records: event.records, bytes: event.bytes });
        this.#owner.runFinished(run);
        if (this.#runs.size === 0) {
          for (const resolve of this.#finishedWaiters) resolve();
          this.#finishedWaiters = [];
        }
        if (worker.dedicated && worker.runs.size === 0) void this.#pool.retire(worker);
        return;
    }
  }

  /**
   * The worker died or hung: restart its runs from their logs on a fresh thread, or fail them. A
   * run counts the failure against its restart budget when it is to blame (its handler code ran
   * when the thread hung), or when nobody can be blamed.
   */
  workerFailed(worker: WorkerHandle, reason: string, retained: Buffer[], blamed: number | null): void {
    const runs = new Set([...worker.runs.values()] as RunStream[]);
    const culprit = blamed === null ? null : (worker.runs.get(blamed) as RunStream | undefined) ?? null;
    this.#log.error({ worker: worker.index, runs: [...runs].map((r) => r.id), blamed: culprit?.id ?? null, reason }, 'worker failed; restarting its runs');
    const givenUp = new Set<RunStream>();
    for (const run of runs) {
      if (culprit === null || culprit === run) run.restarts++;
      if (run.restarts > MAX_RESTARTS || (run.state === 'opening' && (culprit === null || culprit === run))) givenUp.add(run);
    }
    // A SYNC to a run that goes on is sent again after the replay below: its promise (what was
    // published before it is durable) holds again once the new worker has logged the replayed
    // records. A run given up drops them, so its SYNCs fail.
    const resumed = new Set([...runs].filter((r) => !givenUp.has(r)));
    const syncs = this.#owner.failPendingOn(runs, new MuxvisorError(ErrorCode.WorkerFailed, `the worker hosting this run failed (${reason}); the run was restarted from its log`, { data: { reason } }), resumed);
    this.#pool.replace(worker);
    for (const run of runs) {
      const giveUp = givenUp.has(run);
      const order: OpenOrder = { ...run.order, resume: true, resumeReason: reason };
      if (giveUp) {
        // Resume with the plain recorder and nothing of the client's, only to close the log properly.
        delete order.handler;
        delete order.config;
      }
      this.#pool.add(worker, Op.Open, run.slot, 0, 0, ...payload(order));
      if (giveUp && run.finishOrder === null) {
        const why = run.state === 'opening' ? `its worker failed while it opened: ${reason}` : `its worker failed ${run.restarts} times, last: ${reason}`;
        this.finish(run, { status: 'failed', reason: why }, null);
      }
    }
    // Records that were on their way: the new worker skips those its logs already hold.
    for (const batch of retained) {
      forEachEntry(batch, (op, slot, conn, id, source, start, end) => {
        const run = worker.runs.get(slot) as RunStream | undefined;
        if ((op === Op.Record || op === Op.Records) && run !== undefined && runs.has(run)) this.#pool.add(worker, op, slot, conn, id, source, start, end);
      });
    }
    for (const { conn, id, run } of syncs) this.#pool.add(worker, Op.Sync, run.slot, conn, id);
    for (const run of runs) {
      if (run.finishOrder === null) continue;
      const waiters = run.finishWaiters.splice(0);
      if (waiters.length === 0) this.#pool.add(worker, Op.Finish, run.slot, 0, 0, ...payload(run.finishOrder));
      for (const w of waiters) this.finish(run, run.finishOrder, w);
    }
  }
}

/** Throws MUXVISOR_INVALID_ARGUMENT for a run id that is not a safe file name (PROTOCOL.md §7). */
function checkRunId(run: string): void {
  if (!isValidRunId(run)) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, `run id \`${run.slice(0, 80)}\` is not 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`, { data: { run } });
  }
}

/** A msgpack payload as the (source, start, end) triple the pool takes. */
function payload(value: unknown): [Buffer, number, number] {
  const bytes = encodeValue(value);
  return [bytes, 0, bytes.length];
}

/** The names in `runsDir` (each a run's directory), or none if it cannot be read yet. */
function listRunDirs(runsDir: string): string[] {
  try {
    return readdirSync(runsDir);
  } catch {
    return [];
  }
}
