/**
 * The default run handler: answers questions about what the run log holds.
 *
 * It does not decode records as they arrive (that would cap ingestion at the decoder's speed);
 * it reads them back from the log when a question needs them, and remembers how far it got, so
 * each record is decoded once for the summary. Ops:
 * - `summary {keys?}`: the latest value of every top-level key of map records;
 * - `history {from?, limit?, keys?}`: records from index `from` (default 0), at most `limit`
 *   (default 1000, at most 100000), optionally only some keys of each; `next` says where to go on.
 */
import { decodeValue, ErrorCode, MuxvisorError } from '../../protocol/index.js';
import type { RunHandler } from '../handler-api.js';
import { EntryType } from './log-format.js';
import { readRunLog } from './log-reader.js';

export interface LogAccess {
  /** The log's path; `flush()` first so that it holds every record appended so far. */
  path: string;
  flush(): void;
  /** Records in the log, buffered ones included. */
  records(): number;
}

const MAX_HISTORY = 100_000;

export class DefaultHandler implements RunHandler {
  readonly #log: LogAccess;
  readonly #summary = new Map<string, unknown>();
  /** Records folded into the summary so far. */
  #summarized = 0;

  constructor(log: LogAccess) {
    this.#log = log;
  }

  request(op: string, args: unknown): unknown {
    const a = (args ?? {}) as Record<string, unknown>;
    switch (op) {
      case 'summary':
        return this.#summaryOf(keyList(a.keys));
      case 'history':
        return this.#history(a);
      default:
        throw new MuxvisorError(ErrorCode.UnknownOp, `the default handler has no op \`${op}\` (known: summary, history, info, echo)`, {
          data: { op, known: ['summary', 'history', 'info', 'echo'] },
        });
    }
  }

  #summaryOf(keys: string[] | null): Record<string, unknown> {
    if (this.#summarized < this.#log.records()) {
      this.#log.flush();
      for (const entry of readRunLog(this.#log.path, { fromRecord: this.#summarized })) {
        if (entry.type !== EntryType.Record) continue;
        const value = decodeValue(entry.payload);
        if (isMap(value)) for (const key of Object.keys(value)) this.#summary.set(key, value[key]);
        this.#summarized = entry.index + 1;
      }
    }
    const out: Record<string, unknown> = {};
    for (const [key, value] of this.#summary) if (keys === null || keys.includes(key)) out[key] = value;
    return out;
  }

  #history(a: Record<string, unknown>) {
    const from = optionalInt(a.from, 'from', 0);
    const limit = optionalInt(a.limit, 'limit', 1000, 1, MAX_HISTORY);
    const keys = keyList(a.keys);
    this.#log.flush();
    const records: Array<{ index: number; record: unknown }> = [];
    for (const entry of readRunLog(this.#log.path, { fromRecord: from, limit })) {
      if (entry.type !== EntryType.Record) continue;
      const value = decodeValue(entry.payload);
      records.push({ index: entry.index, record: keys && isMap(value) ? pick(value, keys) : value });
    }
    const last = records.at(-1);
    const next = last !== undefined && last.index + 1 < this.#log.records() ? last.index + 1 : null;
    return { from, records, next };
  }
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
