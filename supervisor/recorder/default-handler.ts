/**
 * The default run handler: answers questions about what the run log holds.
 *
 * It does not decode records as they arrive (that would cap ingestion at the decoder's speed);
 * it reads them back from the log when a question needs them, and remembers how far it got, so
 * each record is decoded once for the summary. Long work is cut into slices that give the worker
 * thread back between them, so a question about millions of records never looks like a hang.
 * Ops:
 * - `summary {keys?}`: the latest value of every top-level key of map records;
 * - `history {from?, limit?, keys?}`: records from index `from` (default 0), at most `limit`
 *   (default 1000, at most 100000) and about 4 MiB; `next` says where to go on.
 */
import { decodeValue, ErrorCode, MuxvisorError } from '../../protocol/index.js';
import type { RunHandler } from '../handler-api.js';
import { EntryType } from './log-format.js';
import { type LogEntry, readRunLog, type ResumePoint } from './log-reader.js';

export interface LogAccess {
  /** The log's path; `flush()` first, and await what it returns, so that it holds every record appended so far. */
  path: string;
  flush(): Promise<void> | null;
  /** Records in the log, buffered ones included. */
  records(): number;
}

const MAX_HISTORY = 100_000;
/** A history answer stops adding records past this many payload bytes (a frame holds 16 MiB). */
const HISTORY_MAX_BYTES = 4 * 1024 * 1024;
/** Records decoded for the summary in one slice, before the thread is given back. */
const SUMMARY_SLICE = 20_000;
/** Every this many records, where the record starts in the file (the index `history` seeks with). */
const INDEX_EVERY = 4096;

export class DefaultHandler implements RunHandler {
  readonly #log: LogAccess;
  readonly #summary = new Map<string, unknown>();
  /** Where the summary has read up to: the next record to fold in. */
  #summarized: ResumePoint | null = null;
  /** The catch-up under way, shared by every summary asked for meanwhile. */
  #catchingUp: Promise<void> | null = null;
  /** #points[k]: where record k * INDEX_EVERY starts, once some read has passed it. */
  readonly #points: ResumePoint[] = [];

  constructor(log: LogAccess) {
    this.#log = log;
  }

  request(op: string, args: unknown): unknown {
    const a = (args ?? {}) as Record<string, unknown>;
    switch (op) {
      case 'summary': {
        const keys = keyList(a.keys);
        return this.#catchUp().then(() => this.#summaryOf(keys));
      }
      case 'history':
        return this.#history(a);
      default:
        throw new MuxvisorError(ErrorCode.UnknownOp, `the default handler has no op \`${op}\` (known: summary, history, info, echo)`, {
          data: { op, known: ['summary', 'history', 'info', 'echo'] },
        });
    }
  }

  #summaryOf(keys: string[] | null): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of this.#summary) if (keys === null || keys.includes(key)) out[key] = value;
    return out;
  }

  /** Folds every record in the log into the summary; concurrent askers share one catch-up. */
  #catchUp(): Promise<void> {
    // Cleared in a then-callback, which always runs after this assignment, even when there is
    // nothing to read (an async body that never awaits would finish before `??=` stored it).
    this.#catchingUp ??= this.#fold().finally(() => {
      this.#catchingUp = null;
    });
    return this.#catchingUp;
  }

  /** Reads the records not yet in the summary, a slice per turn of the event loop. */
  async #fold(): Promise<void> {
    while ((this.#summarized?.index ?? 0) < this.#log.records()) {
      await this.#log.flush();
      let read = 0;
      for (const entry of readRunLog(this.#log.path, { from: this.#summarized ?? undefined, limit: SUMMARY_SLICE })) {
        if (entry.type !== EntryType.Record) continue;
        this.#remember(entry);
        foldSummary(this.#summary, decodeValue(entry.payload));
        this.#summarized = { offset: entry.end, index: entry.index + 1 };
        read++;
      }
      if (read === 0) break; // the log holds fewer records than it counts: nothing more to read
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async #history(a: Record<string, unknown>) {
    const from = optionalInt(a.from, 'from', 0);
    const limit = optionalInt(a.limit, 'limit', 1000, 1, MAX_HISTORY);
    const keys = keyList(a.keys);
    await this.#log.flush();
    const start = this.#points[Math.min(Math.floor(from / INDEX_EVERY), this.#points.length - 1)];
    const records: Array<{ index: number; record: unknown }> = [];
    let bytes = 0;
    let next: number | null = null;
    for (const entry of readRunLog(this.#log.path, { fromRecord: from, limit, from: start })) {
      if (entry.type !== EntryType.Record) continue;
      this.#remember(entry);
      if (records.length > 0 && bytes + entry.payload.length > HISTORY_MAX_BYTES) {
        next = entry.index;
        break;
      }
      bytes += entry.payload.length;
      const value = decodeValue(entry.payload);
      records.push({ index: entry.index, record: keys && isMap(value) ? pick(value, keys) : value });
    }
    const last = records.at(-1);
    if (next === null && last !== undefined && last.index + 1 < this.#log.records()) next = last.index + 1;
    return { from, records, next };
  }

  #remember(entry: LogEntry): void {
    if (entry.index % INDEX_EVERY === 0) this.#points[entry.index / INDEX_EVERY] ??= { offset: entry.offset, index: entry.index };
  }
}

/** The summary's rule, one record at a time: every top-level key of a map record, latest value wins. */
export function foldSummary(summary: Map<string, unknown>, record: unknown): void {
  if (isMap(record)) for (const key of Object.keys(record)) summary.set(key, record[key]);
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value) && !(value instanceof Date);
}

function pick(value: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) if (key in value) out[key] = value[key];
  return out;
}

function keyList(keys: unknown): string[] | null {
  if (keys === undefined || keys === null) return null;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, 'Expected `keys` to be an array of strings');
  }
  return keys;
}

function optionalInt(value: unknown, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, `Expected \`${name}\` to be an integer in ${min}..${max}, got \`${String(value)}\``);
  }
  return value;
}
