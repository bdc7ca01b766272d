/**
 * The worker threads that host run handlers, seen from the main thread.
 *
 * ```
 *  connections ──records/requests──► RingBatches (one per worker, flushed once per turn)
 *                                      │ post (shared memory)   ▲ acked: the bytes are free again
 *                                      ▼                        │
 *                                   run worker ── frames, events, ack ──► deliver to connections
 * ```
 * Contracts: batches reach a worker in order; each is kept, unchanged, until the worker acks it
 * (its records are then in the OS), so a worker that dies or hangs can be replaced and its runs'
 * unlogged records replayed. The bytes on their way to a worker are bounded: above the high-water
 * mark `congested` is true and callers stop reading their sockets until `onDrained` fires.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ErrorCode, MuxvisorError } from '../../protocol/index.js';
import { PACKAGE_ROOT } from '../../protocol/version.js';
import { forEachFrame, type Op } from './batch.js';
import type { FromWorker, ToWorker, WorkerEvent } from './messages.js';
import { FairShares } from './fair-shares.js';
import { RingBatches } from './ring.js';
import type { WorkerOptions } from './run-worker.js';

/**
 * The worker threads' entry point, found from the package root rather than from this module's
 * own URL: the build bundles the daemon into one file (dist/supervisor/main.js), where this
 * module's URL is the bundle's.
 */
const RUN_WORKER = join(PACKAGE_ROOT, 'dist', 'supervisor', 'workers', 'run-worker.js');

/** The first wait before replacing a thread that could not start again; it doubles, up to the max. */
const START_BACKOFF_MS = 100;
const START_BACKOFF_MAX_MS = 5_000;

/** Entries gathered for one worker that are posted without waiting for the end of the turn. */
const EARLY_POST_ENTRIES = 64;
/** A connection that sent at most this much into a congested worker is not paused for it (fair-shares.ts). */
const QUIET_SHARE_BYTES = 64 * 1024;

export interface PoolOptions {
  /** Shared workers (dedicated ones come on top). */
  size: number;
  watchdogMs: number;
  fsyncIntervalMs: number;
  highWaterBytes: number;
  /** Bytes of shared memory per worker for batches on their way to it. */
  ringBytes: number;
  /** Answers larger than this are refused by the worker, not sent. */
  maxPayloadBytes: number;
  /** Dedicated workers (one run each) that may run at once. */
  maxDedicated: number;
}

/** What the pool tells its owner (the supervisor). */
export interface PoolOwner {
  /** An answer frame for connection `conn`. `frame` is a view; copy it to keep it. */
  deliver(conn: number, frame: Buffer): void;
  event(worker: WorkerHandle, event: WorkerEvent): void;
  /**
   * The worker died or hung and was terminated; `retained` holds its unacknowledged batches;
   * `blamed` is the slot whose handler code was running when it hung, when that is known.
   */
  failed(worker: WorkerHandle, reason: string, retained: Buffer[], blamed: number | null): void;
}

export class WorkerHandle {
  readonly index: number;
  readonly dedicated: boolean;
  /** Null while a dedicated worker waits for its turn to start (`WorkerPool.#startQueued`), and while it is replaced. */
  thread: Worker | null = null;
  /** Runs hosted here, by slot. Owned by the supervisor; the pool only counts them. */
  readonly runs = new Map<number, unknown>();
  nextSlot = 1;
  /** Batches on their way to this worker; their bytes stay until acknowledged. */
  readonly batches: RingBatches;
  /** The slot whose handler code runs on the thread (busy.ts), 0 when none. */
  readonly busy = new Int32Array(new SharedArrayBuffer(4));
  lastSeen = Date.now();
  /** Threads in a row that died before they said a word (they could not start): drives the backoff. */
  startFailures = 0;
  /** Resumed when the worker drains below half the high-water mark. */
  readonly waiters = new Set<() => void>();
  /** Who may go on publishing while it is congested (fair-shares.ts). */
  readonly shares: FairShares;
  stopping = false;

  constructor(index: number, dedicated: boolean, ringBytes: number, highWaterBytes: number) {
    this.index = index;
    this.dedicated = dedicated;
    this.batches = new RingBatches(ringBytes);
    this.shares = new FairShares(QUIET_SHARE_BYTES, highWaterBytes / 4);
  }

  /** Bytes on their way to this worker, posted or not. */
  get backlogBytes(): number {
    return this.batches.backlogBytes;
  }
}

export class WorkerPool {
  readonly #options: PoolOptions;
  readonly #owner: PoolOwner;
  readonly #workers: WorkerHandle[] = [];
  #dirty = new Set<WorkerHandle>();
  #flushScheduled = false;
  #nextIndex = 0;
  readonly #watchdog: NodeJS.Timeout;
  #lastTick = Date.now();
  /** Dedicated workers whose thread is still to start, oldest first, and whether one is booting. */
  readonly #queued: WorkerHandle[] = [];
  #booting = false;

  constructor(options: PoolOptions, owner: PoolOwner) {
    this.#options = options;
    this.#owner = owner;
    const every = Math.max(50, Math.floor(options.watchdogMs / 4));
    this.#watchdog = setInterval(() => this.#checkHeartbeats(every), every);
    this.#watchdog.unref();
  }

  get workers(): readonly WorkerHandle[] {
    return this.#workers;
  }

  /** The shared worker with the fewest runs (started on first use), or a new dedicated one. */
  pick(dedicated: boolean): WorkerHandle {
    if (dedicated) {
      const running = this.#workers.filter((w) => w.dedicated).length;
      if (running >= this.#options.maxDedicated) {
        throw new MuxvisorError(ErrorCode.Overloaded, `${running} dedicated worker threads run already (the limit); open the run without \`dedicated\` to share one`, {
          data: { dedicated: running, limit: this.#options.maxDedicated },
        });
      }
      return this.#spawn(true);
    }
    const shared = this.#workers.filter((w) => !w.dedicated);
    if (shared.length < this.#options.size) return this.#spawn(false);
    return shared.reduce((a, b) => (b.runs.size < a.runs.size ? b : a));
  }

  /** Queues one entry for `worker`; it is posted at the end of this turn. */
  add(worker: WorkerHandle, op: Op, slot: number, conn: number, id: number, source: Buffer | null = null, start = 0, end = 0): void {
    worker.batches.add(op, slot, conn, id, source, start, end);
    this.#dirty.add(worker);
    // Post early rather than at the end of the turn once enough has gathered: the worker starts on
    // the first part of a burst while this thread reads the rest (a burst of requests is a wave
    // that every stage would otherwise hold whole).
    if (worker.batches.pendingEntries >= EARLY_POST_ENTRIES || worker.batches.pendingBytes >= 1024 * 1024) this.#post(worker);
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  congested(worker: WorkerHandle): boolean {
    return worker.backlogBytes > this.#options.highWaterBytes;
  }

  /**
   * `conn` has just added `bytes` for `worker`: true when it must stop reading until the worker
   * drains (`waiters`). Only while the worker is congested, and not for a connection that has sent
   * little since (fair-shares.ts).
   */
  mustWait(worker: WorkerHandle, conn: number, bytes: number): boolean {
    return this.congested(worker) && worker.shares.mustWait(conn, bytes);
  }

  /** Posts every pending batch now. */
  flush(): void {
    this.#flushScheduled = false;
    for (const worker of this.#dirty) this.#post(worker);
    this.#dirty.clear();
  }

  /** Replaces a dead worker with a fresh thread under the same index; the caller replays its runs. */
  replace(worker: WorkerHandle): void {
    worker.thread = this.#startThread(worker);
    worker.lastSeen = Date.now();
    this.#wakeWaiters(worker);
  }

  /** Removes a worker that has no runs left (dedicated workers, once their run finished). */
  async retire(worker: WorkerHandle): Promise<void> {
    const i = this.#workers.indexOf(worker);
    if (i >= 0) this.#workers.splice(i, 1);
    worker.stopping = true;
    this.#wakeWaiters(worker);
    await worker.thread?.terminate();
  }

  /** Asks every worker to fsync its logs, waits up to `ms`, then terminates them all. */
  async stop(ms: number): Promise<void> {
    clearInterval(this.#watchdog);
    this.flush();
    await Promise.all(this.#workers.map(async (w) => {
      w.stopping = true;
      if (w.thread === null) return; // never started: nothing of it ran
      const thread = w.thread;
      const stopped = new Promise<void>((resolve) => {
        thread.on('message', (m: FromWorker) => { if (m.events.some((e) => e.type === 'stopped')) resolve(); });
        thread.once('exit', () => resolve());
      });
      thread.postMessage({ type: 'stop' } satisfies ToWorker);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([stopped, new Promise<void>((r) => { timer = setTimeout(r, ms); })]);
      clearTimeout(timer);
      await thread.terminate();
    }));
  }

  /**
   * A new worker. Dedicated ones start one at a time (`#startQueued`); what is added for one
   * while it waits is posted when it starts.
   */
  #spawn(dedicated: boolean): WorkerHandle {
    const handle = new WorkerHandle(this.#nextIndex++, dedicated, this.#options.ringBytes, this.#options.highWaterBytes);
    this.#workers.push(handle);
    if (!dedicated) handle.thread = this.#startThread(handle);
    else if (this.#queued.push(handle) === 1 && !this.#booting) setImmediate(() => this.#startQueued());
    return handle;
  }

  /**
   * Starts the oldest queued dedicated worker's thread; the next starts once this one has said
   * something (it has loaded and opened its run) or died. A thread takes ~50 ms of CPU to boot:
   * 16 dedicated OPENs in one read booted 16 at once, and on two cores this thread, starved by
   * them, served no client for up to 460 ms.
   */
  #startQueued(): void {
    let handle = this.#queued.shift();
    while (handle?.stopping) handle = this.#queued.shift(); // retired before it started
    if (handle === undefined) return;
    const thread = this.#startThread(handle);
    handle.thread = thread;
    handle.lastSeen = Date.now();
    this.#booting = true;
    const next = () => {
      thread.off('message', next);
      thread.off('exit', next);
      this.#booting = false;
      if (this.#queued.length > 0) setImmediate(() => this.#startQueued());
    };
    thread.on('message', next);
    thread.on('exit', next);
    this.#post(handle);
  }

  #startThread(handle: WorkerHandle): Worker {
    const data: WorkerOptions = {
      heartbeatMs: Math.max(20, Math.floor(this.#options.watchdogMs / 5)), fsyncIntervalMs: this.#options.fsyncIntervalMs,
      ring: handle.batches.shared, busy: handle.busy.buffer as SharedArrayBuffer, maxPayloadBytes: this.#options.maxPayloadBytes,
    };
    const thread = new Worker(RUN_WORKER, { workerData: data });
    let heard = false;
    thread.on('message', (m: FromWorker) => {
      heard = true;
      handle.startFailures = 0;
      if (handle.thread === thread) this.#receive(handle, m);
    });
    // 'exit' follows an error; the error says why (EMFILE while it loaded its modules, ...).
    let error: string | null = null;
    thread.on('error', (e) => (error = e.message));
    thread.on('exit', (code) => {
      if (handle.thread !== thread || handle.stopping) return;
      const reason = `worker thread exited with code ${code}${error === null ? '' : `: ${error}`}`;
      // A thread that cannot start (no file descriptor left, no memory) would be replaced by one
      // that cannot either, at once and forever: after the first, wait, doubling up to 5 s. Work
      // sent meanwhile stays retained and goes to the replacement.
      const wait = heard ? 0 : Math.min(START_BACKOFF_MAX_MS, handle.startFailures === 0 ? 0 : START_BACKOFF_MS * 2 ** (handle.startFailures - 1));
      if (!heard) handle.startFailures++;
      if (wait === 0) return this.#fail(handle, reason);
      setTimeout(() => {
        if (handle.thread === thread && !handle.stopping) this.#fail(handle, `${reason} (${handle.startFailures} threads in a row could not start)`);
      }, wait).unref();
    });
    return thread;
  }

  #post(worker: WorkerHandle): void {
    if (worker.thread === null) return; // not started yet: posted when it starts
    for (const batch of worker.batches.take()) {
      if ('ring' in batch) {
        worker.thread.postMessage({ type: 'batch', seq: batch.seq, start: batch.ring.start, length: batch.ring.length, buffer: null } satisfies ToWorker);
      } else {
        const buffer = batch.heap.buffer as SharedArrayBuffer;
        worker.thread.postMessage({ type: 'batch', seq: batch.seq, start: batch.heap.byteOffset, length: batch.heap.length, buffer } satisfies ToWorker);
      }
    }
  }

  #receive(worker: WorkerHandle, message: FromWorker): void {
    worker.lastSeen = Date.now();
    if (message.frames !== null) {
      forEachFrame(Buffer.from(message.frames.buffer, 0, message.frames.length), (conn, frame) => this.#owner.deliver(conn, frame));
    }
    for (const event of message.events) this.#owner.event(worker, event);
    if (message.acked >= 0) {
      worker.batches.acked(message.acked);
      if (worker.backlogBytes <= this.#options.highWaterBytes / 2) {
        worker.shares.drained();
        this.#wakeWaiters(worker);
      }
    }
  }

  #wakeWaiters(worker: WorkerHandle): void {
    if (worker.waiters.size === 0) return;
    const waiters = [...worker.waiters];
    worker.waiters.clear();
    for (const resume of waiters) resume();
  }

  #checkHeartbeats(every: number): void {
    const now = Date.now();
    const late = now - this.#lastTick > every * 2; // this thread itself was blocked: judge nobody
    this.#lastTick = now;
    for (const worker of this.#workers) {
      if (worker.thread === null) continue; // not started yet
      if (late) worker.lastSeen = now;
      else if (!worker.stopping && now - worker.lastSeen > this.#options.watchdogMs) {
        this.#fail(worker, `worker thread sent no heartbeat for ${now - worker.lastSeen} ms (watchdog ${this.#options.watchdogMs} ms): hung`);
      }
    }
  }

  #fail(worker: WorkerHandle, reason: string): void {
    const blamed = Atomics.load(worker.busy, 0);
    Atomics.store(worker.busy, 0, 0);
    const retained = worker.batches.retained();
    const dead = worker.thread;
    worker.thread = null; // messages from the dead thread are ignored from now on
    void dead?.terminate();
    this.#owner.failed(worker, reason, retained, blamed === 0 ? null : blamed);
  }
}
