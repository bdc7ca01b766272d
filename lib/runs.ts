/**
 * Questions about runs, open or recorded, answered by the supervisor from the home's files
 * (`runs.*` ops, PROTOCOL.md section 6). For tools and the CLI; a process that publishes into a
 * run uses `Run` instead.
 */
import { Kind } from '../protocol/index.js';
import type { CallOptions, ClientConnection } from './connection.js';

/** Where a page of records ends: pass it as `from` to read on. */
export interface ResumePoint {
  offset: number;
  index: number;
}

export interface RunPage {
  run: string;
  records: Array<{ index: number; record: unknown }>;
  /** Where the next page starts; null when the run has no log yet. */
  next: ResumePoint | null;
  /** True once the run has ended and this page reached the end: no record will follow. */
  finished: boolean;
}

export interface RunInfo {
  run: string;
  /** `open`, `opening`, `finishing` while live; else what meta.json says (`finished`, ...). */
  state: string;
  /** meta.json as the supervisor wrote it (status, reason, records, bytes, times), or null. */
  meta: Record<string, unknown> | null;
  /** Counters and owners while the run is open; null otherwise. */
  live: Record<string, unknown> | null;
  log: { path: string; bytes: number | null };
  /** The latest value of every top-level key of the run's map records. */
  summary?: Record<string, unknown>;
  summaryRecords?: number;
  /** What the FINISH entry says: status, reason, time. */
  end?: unknown;
  /** `whole`, `in flight` (an open run's last entry being written) or `torn`. */
  tail?: string;
}

export interface VerifyResult {
  run: string;
  path: string;
  open: boolean;
  /** True when every entry is whole and CRC-correct and the log agrees with meta.json. */
  ok: boolean;
  problems: string[];
  entries: number;
  records: number;
  fileBytes: number;
  validBytes: number;
  finished: boolean;
  /** Where and why the log stops being whole (null when it does not, or the run is open). */
  torn: { offset: number; reason: string } | null;
  tail: string;
  metaRecords: number | null;
  ms: number;
}

export class RunQueries {
  readonly #conn: ClientConnection;

  constructor(conn: ClientConnection) {
    this.#conn = conn;
  }

  /** Open runs (with owners) and recorded ones (their meta.json), newest first. */
  list(options: CallOptions & { recorded?: boolean } = {}): Promise<{ open: Array<Record<string, unknown>>; recorded: Array<Record<string, unknown>> }> {
    const { recorded, ...call } = options;
    return this.#request('runs.list', recorded === false ? { recorded } : {}, call) as Promise<{ open: Array<Record<string, unknown>>; recorded: Array<Record<string, unknown>> }>;
  }

  /** State, meta, live counters and (unless `summary: false`) the summary of run `id`. */
  get(id: string, options: CallOptions & { summary?: boolean } = {}): Promise<RunInfo> {
    const { summary, ...call } = options;
    return this.#request('runs.get', summary === false ? { run: id, summary } : { run: id }, call) as Promise<RunInfo>;
  }

  /** A page of records: from `from` (a page's `next`) or the start, or the `last` N. */
  read(id: string, options: CallOptions & { from?: ResumePoint | null; last?: number; limit?: number } = {}): Promise<RunPage> {
    const { from, last, limit, ...call } = options;
    const args: Record<string, unknown> = { run: id };
    if (from != null) args.from = from;
    if (last !== undefined) args.last = last;
    if (limit !== undefined) args.limit = limit;
    return this.#request('runs.read', args, call) as Promise<RunPage>;
  }

  /** Checks every CRC of the run's log; says where a torn log stops being whole. */
  verify(id: string, options: CallOptions = {}): Promise<VerifyResult> {
    return this.#request('runs.verify', { run: id }, options) as Promise<VerifyResult>;
  }

  #request(op: string, args: Record<string, unknown>, options: CallOptions): Promise<unknown> {
    const body: Record<string, unknown> = { op, args };
    if (options.timeoutMs !== undefined) body.timeoutMs = options.timeoutMs;
    return this.#conn.call(Kind.Request, 0, body, `request \`${op}\`${typeof args.run === 'string' ? ` for run ${args.run}` : ''}`, options);
  }
}
