/**
 * The `runs.*` operations: what a person (the CLI) asks about runs, open or recorded. They read
 * the run's files in this home, never a worker's memory, so they answer the same way for a run
 * that is open, finished, or left by a supervisor that died. Long reads are walked in slices
 * (`walkRunLog`), so a log of gigabytes never stalls the clients; each op is bounded by its
 * request's deadline and stops when the request is cancelled.
 *
 * A run that is open is being appended to while it is read: its last entry may be half written.
 * Reads report such a tail as `tail: 'in flight'`, never as torn.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeValue, ErrorCode, isValidRunId, MuxvisorError } from '../protocol/index.js';
import type { Operation } from './ops.js';
import { TimeSlices } from './time-slices.js';
import { foldSummary } from './recorder/default-handler.js';
import { EntryType } from './recorder/log-format.js';
import { readRunLog, type ResumePoint, walkRunLog } from './recorder/log-reader.js';
import type { RunStream } from './run-stream.js';
import type { Supervisor } from './server.js';

/** A page of `runs.read` stops adding records past this many payload bytes (a frame holds 16 MiB). */
const PAGE_MAX_BYTES = 4 * 1024 * 1024;
const MAX_PAGE_RECORDS = 100_000;
const MAX_LAST = 10_000;

export const runOperations: Readonly<Record<string, Operation>> = {
  'runs.list': async (s, a, ctx) => ({ open: openRuns(s), recorded: a.recorded === false ? [] : await recordedRuns(s.layout.runsDir, ctx.signal) }),

  /** One run: its state, what meta.json says, the live counters if open, and the summary. */
  'runs.get': async (s, a, ctx) => {
    const run = await runArg(s, a, ctx.signal);
    const logPath = join(run.dir, 'run.mvlog');
    const answer: Record<string, unknown> = {
      run: run.id, state: run.live?.state ?? metaState(run.meta), meta: run.meta, live: run.live === null ? null : liveRun(run.live),
      log: { path: logPath, bytes: fileSize(logPath) },
    };
    if (a.summary === false || !existsSync(logPath)) return answer;
    // The default recorder's rule, over every record in the log, whichever handler the run has.
    const summary = new Map<string, unknown>();
    let decoded = 0;
    const scan = await walkRunLog(logPath, (entry) => {
      if (entry.type !== EntryType.Record) return;
      foldSummary(summary, decodeValue(entry.payload));
      decoded++;
    }, { signal: ctx.signal });
    return { ...answer, summary: Object.fromEntries(summary), summaryRecords: decoded, end: endOf(scan.finish), tail: tailOf(scan, run.live !== null) };
  },

  /**
   * Records of a run, decoded: from a resume point (`from`, the `next` of an earlier page) or the
   * last `last` records (the newest of them that fit in about 4 MiB). A page holds at most
   * `limit` records and about 4 MiB; `next` says where the following page starts, `finished`
   * whether the run has ended (no records will follow).
   */
  'runs.read': async (s, a, ctx) => {
    const run = await runArg(s, a, ctx.signal);
    const logPath = join(run.dir, 'run.mvlog');
    const limit = intArg(a, 'limit', 1, MAX_PAGE_RECORDS, 1000);
    const records: Array<{ index: number; record: unknown }> = [];
    let next: ResumePoint | null = null;
    if (!existsSync(logPath)) return { run: run.id, records, next: null, finished: run.live === null };
    if (a.last !== undefined) {
      const last = intArg(a, 'last', 0, MAX_LAST, 10);
      // The newest `last` records that fit in a page (about 4 MiB, at least one): a ring of
      // copies bounded by count alone could hold 10000 records of up to 16 MiB each, and its
      // answer would not fit in a frame.
      const ring: Array<{ index: number; payload: Buffer }> = [];
      let ringBytes = 0;
      const scan = await walkRunLog(logPath, (entry) => {
        if (entry.type !== EntryType.Record || last === 0) return;
        ring.push({ index: entry.index, payload: Buffer.from(entry.payload) });
        ringBytes += entry.payload.length;
        while (ring.length > last || (ring.length > 1 && ringBytes > PAGE_MAX_BYTES)) ringBytes -= (ring.shift() as { payload: Buffer }).payload.length;
      }, { signal: ctx.signal });
      for (const r of ring) records.push({ index: r.index, record: decodeValue(r.payload) });
      next = { offset: scan.validBytes, index: scan.records };
      return { run: run.id, records, next, finished: run.live === null || scan.finished, tail: tailOf(scan, run.live !== null) };
    }
    const from = resumeArg(a.from);
    let bytes = 0;
    let sawFinish = false;
    let cut = false;
    let position = from ?? undefined;
    for (const entry of readRunLog(logPath, from === null ? {} : { from })) {
      if (entry.type === EntryType.Finish) sawFinish = true;
      if (entry.type !== EntryType.Record) {
        position = { offset: entry.end, index: position?.index ?? 0 };
        continue;
      }
      if (records.length >= limit || (records.length > 0 && bytes + entry.payload.length > PAGE_MAX_BYTES)) {
        cut = true;
        break;
      }
      bytes += entry.payload.length;
      records.push({ index: entry.index, record: decodeValue(entry.payload) });
      position = { offset: entry.end, index: entry.index + 1 };
    }
    next = position ?? null;
    // A run no longer open whose log ends without FINISH (its supervisor died) has ended too.
    return { run: run.id, records, next, finished: !cut && (sawFinish || run.live === null) };
  },

  /** Checks every entry's CRC; says how many are whole, and where and why the log stops being so. */
  'runs.verify': async (s, a, ctx) => {
    const run = await runArg(s, a, ctx.signal);
    const logPath = join(run.dir, 'run.mvlog');
    if (!existsSync(logPath)) {
      throw new MuxvisorError(ErrorCode.Storage, `run ${run.id} has no log: ${logPath} does not exist`, { data: { run: run.id, path: logPath } });
    }
    const started = performance.now();
    const scan = await walkRunLog(logPath, () => undefined, { signal: ctx.signal });
    const metaRecords = typeof run.meta?.records === 'number' ? run.meta.records : null;
    const open = run.live !== null;
    const problems: string[] = [];
    if (scan.torn !== null && !open) problems.push(`torn at byte ${scan.torn.offset} of ${scan.fileBytes}: ${scan.torn.reason}; ${scan.fileBytes - scan.validBytes} bytes after the last whole record would be cut off on recovery`);
    if (!open && metaRecords !== null && metaRecords !== scan.records) problems.push(`meta.json says ${metaRecords} records, the log holds ${scan.records}`);
    if (!open && !scan.finished) problems.push('the log has no FINISH entry: the run never ended cleanly (a supervisor restart recovers it)');
    return {
      run: run.id, path: logPath, open, ok: problems.length === 0, problems, entries: scan.entries, records: scan.records,
      fileBytes: scan.fileBytes, validBytes: scan.validBytes, finished: scan.finished, end: endOf(scan.finish),
      torn: open ? null : scan.torn, tail: tailOf(scan, open), metaRecords, ms: Math.round(performance.now() - started),
    };
  },
};

/** How long a scan of the runs directory holds the main thread before giving it back. */
const SLICE_MS = 4;

interface FoundRun {
  id: string;
  dir: string;
  meta: Record<string, unknown> | null;
  live: RunStream | null;
}

/** The run named by `a.run`, open or recorded; MUXVISOR_UNKNOWN_RUN naming a few known ones. */
async function runArg(s: Supervisor, a: Record<string, unknown>, signal: AbortSignal): Promise<FoundRun> {
  const id = a.run;
  if (typeof id !== 'string' || !isValidRunId(id)) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, `\`run\` must be a run id (1-128 characters of A-Z a-z 0-9 . _ -), got ${typeof id === 'string' ? `\`${id.slice(0, 80)}\`` : typeof id}`);
  }
  const dir = join(s.layout.runsDir, id);
  const live = s.mux.get(id) ?? null;
  const meta = readMeta(dir);
  if (live === null && meta === null && !existsSync(join(dir, 'run.mvlog'))) {
    const known = (await recordedRuns(s.layout.runsDir, signal)).slice(0, 5).map((r) => String(r.run));
    throw new MuxvisorError(ErrorCode.UnknownRun, `no run \`${id}\` in ${s.layout.runsDir}${known.length ? ` (newest: ${known.join(', ')})` : ' (no runs recorded)'}`, { data: { run: id, known } });
  }
  return { id, dir, meta, live };
}

function readMeta(dir: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function metaState(meta: Record<string, unknown> | null): string {
  return typeof meta?.state === 'string' ? meta.state : 'unknown';
}

function liveRun(r: RunStream) {
  return {
    state: r.state, records: r.records, bytes: r.bytes, worker: r.worker.index, openedAt: r.openedAt, handler: r.order.handler ?? 'default',
    restarts: r.restarts, owners: [...r.owners.keys()].map((o) => ({ conn: o.id, pid: o.pid, name: o.name })),
  };
}

/** What the FINISH entry says (status, reason, time), decoded; null without one. */
function endOf(finish: Uint8Array | null): unknown {
  if (finish === null) return null;
  try {
    return decodeValue(finish);
  } catch {
    return null;
  }
}

/** 'whole', 'in flight' (an open run's last entry being written) or 'torn'. */
function tailOf(scan: { torn: unknown }, open: boolean): 'whole' | 'in flight' | 'torn' {
  return scan.torn === null ? 'whole' : open ? 'in flight' : 'torn';
}

function fileSize(path: string): number | null {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}

function intArg(a: Record<string, unknown>, key: string, min: number, max: number, fallback: number): number {
  const value = a[key];
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, `\`${key}\` must be an integer ${min}..${max}, got ${String(value)}`);
  }
  return value as number;
}

function resumeArg(value: unknown): ResumePoint | null {
  if (value === undefined || value === null) return null;
  const v = value as { offset?: unknown; index?: unknown };
  if (typeof value !== 'object' || !Number.isSafeInteger(v.offset) || !Number.isSafeInteger(v.index) || (v.offset as number) < 16 || (v.index as number) < 0) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, '`from` must be the `next` of an earlier page: { offset: integer >= 16, index: integer >= 0 }');
  }
  return { offset: v.offset as number, index: v.index as number };
}

function openRuns(s: Supervisor) {
  return [...s.mux.values()].map((r) => ({ run: r.id, ...liveRun(r) }));
}

/**
 * What meta.json says of every run recorded in this home, newest first. A home may hold
 * thousands of runs: the files are read a slice of SLICE_MS at a time, giving the main thread
 * back between slices (reading 5,000 at once held every client for about 100 ms).
 */
export async function recordedRuns(runsDir: string, signal?: AbortSignal): Promise<Array<Record<string, unknown>>> {
  let names: string[];
  try {
    names = await readdir(runsDir);
  } catch {
    return [];
  }
  const runs: Array<Record<string, unknown>> = [];
  const slices = new TimeSlices(SLICE_MS, signal);
  for (const name of names) {
    const meta = readMeta(join(runsDir, name));
    // a run directory without readable meta: not one of ours, or being created right now
    if (meta !== null) runs.push(meta);
    if (slices.due) await slices.next();
  }
  return runs.sort((a, b) => Number(b.openedAt ?? 0) - Number(a.openedAt ?? 0));
}
