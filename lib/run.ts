/**
 * A run as a user process holds it: publish records, ask its handler questions, sync, finish.
 *
 * Contracts: `publish` never drops a record it accepted; records leave in the order published,
 * batched once per turn of the event loop. It returns false when too much waits in this process
 * (`await run.drain()` then) and throws when the run is finished or the connection is gone.
 * `finish` resolves with what the supervisor recorded, once the log is complete and fsynced.
 */
import { ErrorCode, type FinishStatus, type FrameHeader, Kind, MuxvisorError } from '../protocol/index.js';
import type { CallOptions, ClientConnection } from './connection.js';

export interface SyncResult {
  /** Records in the run's log, all durable. */
  records: number;
  bytes: number;
}

export interface FinishResult {
  run: string;
  status: FinishStatus | 'crashed';
  records: number;
  bytes: number;
  /** The run log's path on the supervisor's machine. */
  log: string;
}

export interface FinishOptions extends CallOptions {
  /** @default 'ok' */
  status?: FinishStatus;
  exitCode?: number;
  reason?: string;
}

export interface HistoryOptions extends CallOptions {
  /** First record index. @default 0 */
  from?: number;
  /** @default 1000 */
  limit?: number;
  /** Only these keys of each record. */
  keys?: string[];
}

/** What a Run needs from its client. */
export interface RunLimits {
  highWaterBytes: number;
  maxBufferedBytes: number;
  /** The run is done (finished or detached): the client forgets it. */
  forget(run: Run): void;
}

export class Run {
  readonly id: string;
  readonly channel: number;
  readonly #conn: ClientConnection;
  readonly #limits: RunLimits;
  readonly #header: FrameHeader;
  #state: 'open' | 'finishing' | 'finished' | 'detached' = 'open';
  /** Records published through this handle. */
  published = 0;
  /** True when this handle joined the run with `attachRun` (another process opened it). */
  readonly attached: boolean;

  constructor(id: string, channel: number, conn: ClientConnection, attached: boolean, limits: RunLimits) {
    this.id = id;
    this.channel = channel;
    this.attached = attached;
    this.#conn = conn;
    this.#limits = limits;
    this.#header = { kind: Kind.Publish, flags: 0, id: 0, channel };
  }

  get state(): 'open' | 'finishing' | 'finished' | 'detached' {
    return this.#state;
  }

  /**
   * Appends `record` (any msgpack-encodable value, usually a map) to the run. Returns false when
   * more than `highWaterBytes` wait to leave this process; the record is accepted all the same.
   */
  publish(record: unknown): boolean {
    if (this.#state !== 'open') {
      throw new MuxvisorError(ErrorCode.UnknownRun, `run ${this.id} is ${this.#state}: publish is no longer possible`, { data: { run: this.id } });
    }
    const waiting = this.#conn.transport.unconfirmedBytes;
    if (waiting > this.#limits.maxBufferedBytes) {
      throw new MuxvisorError(ErrorCode.Overloaded, `${waiting} bytes already wait to reach the supervisor (limit ${this.#limits.maxBufferedBytes}); await run.drain() before publishing more`, { data: { waiting, limit: this.#limits.maxBufferedBytes } });
    }
    this.#conn.sendValue(this.#header, record);
    this.published++;
    return waiting < this.#limits.highWaterBytes;
  }

  /**
   * Resolves once what waits to leave this process is below half the high-water mark, so that
   * `publish` returns true again. (`sync` is the way to wait until records are durable.)
   */
  drain(): Promise<void> {
    return this.#conn.transport.drained(this.#limits.highWaterBytes / 2);
  }

  /** Asks the run's handler: `op` with `args`. The default handler knows summary, history, info. */
  request(op: string, args?: unknown, options: CallOptions = {}): Promise<unknown> {
    const body = args === undefined ? { op } : { op, args };
    const withDeadline = options.timeoutMs === undefined ? body : { ...body, timeoutMs: options.timeoutMs };
    return this.#conn.call(Kind.Request, this.channel, withDeadline, `request \`${op}\` on run ${this.id}`, options);
  }

  /** The latest value of every top-level key of the run's map records (default handler). */
  summary(keys?: string[], options?: CallOptions): Promise<Record<string, unknown>> {
    return this.request('summary', keys === undefined ? undefined : { keys }, options) as Promise<Record<string, unknown>>;
  }

  /** Records of the run, from `from` on (default handler). */
  history(options: HistoryOptions = {}): Promise<{ from: number; records: Array<{ index: number; record: unknown }>; next: number | null }> {
    const { from, limit, keys, ...call } = options;
    return this.request('history', { from, limit, keys }, call) as Promise<never>;
  }

  /** Resolves when every record published before it is durable (written and fsynced). */
  sync(options: CallOptions = {}): Promise<SyncResult> {
    return this.#conn.call(Kind.Sync, this.channel, undefined, `sync of run ${this.id}`, options) as Promise<SyncResult>;
  }

  /** Finishes the run for all its owners; resolves with what was recorded. */
  async finish(options: FinishOptions = {}): Promise<FinishResult> {
    if (this.#state === 'detached' || this.#state === 'finished') {
      throw new MuxvisorError(ErrorCode.UnknownRun, `run ${this.id} is already ${this.#state}`, { data: { run: this.id } });
    }
    this.#state = 'finishing';
    const { status, exitCode, reason, ...call } = options;
    const body = { status, exitCode, reason };
    const hasBody = status !== undefined || exitCode !== undefined || reason !== undefined;
    try {
      return (await this.#conn.call(Kind.Finish, this.channel, hasBody ? strip(body) : undefined, `finish of run ${this.id}`, call)) as FinishResult;
    } finally {
      this.#state = 'finished';
      this.#limits.forget(this);
    }
  }

  /** Leaves the run to its other owners, unfinished. The last owner leaving crashes it. */
  async detach(options: CallOptions = {}): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'detached';
    try {
      await this.#conn.call(Kind.Detach, this.channel, undefined, `detach from run ${this.id}`, options);
    } finally {
      this.#limits.forget(this);
    }
  }

  /** `await using run = ...`: finishes the run (status ok) unless it is already done. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state === 'open' && !this.#conn.closed) await this.finish();
  }

  /**
   * The exit path (the process dies of a signal), queued without waiting: a run this process
   * opened is finished `interrupted`; a run it attached to is left to its other owners (DETACH),
   * so a child that is stopped does not end its parent's run.
   */
  interrupted(reason: string): void {
    if (this.#state !== 'open' || this.#conn.closed) return;
    if (this.attached) {
      this.#state = 'detached';
      this.#conn.sendUnanswered(Kind.Detach, this.channel, undefined);
      return;
    }
    this.#state = 'finishing';
    this.#conn.sendUnanswered(Kind.Finish, this.channel, { status: 'interrupted', reason });
  }
}

function strip(body: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  return body;
}
