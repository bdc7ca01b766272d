/**
 * What the exhaustion section reads back: a run's log (every record `{ i }` of the writer, once
 * each and in order) and the supervisor's own log (how many lines, of which kind).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeValue } from '../../../protocol/index.js';
import { EntryType } from '../../../supervisor/recorder/log-format.js';
import { readRunLog, type ScanResult, scanRunLog } from '../../../supervisor/recorder/log-reader.js';
import type { SectionContext } from '../context.js';

export interface RunCheck {
  /** Records in the log. */
  records: number;
  scan: ScanResult;
}

/**
 * Checks run `run` of `home`: its log is whole (no torn tail, a FINISH entry), and its records are
 * `{ i: 0 }`, `{ i: 1 }`, ... each once and in order, at least `acked` of them (every record the
 * writer saw acknowledged), and exactly `exactly` when that is given. Counts the records checked.
 */
export function checkRunLog(ctx: SectionContext, home: string, run: string, want: { acked: number; exactly?: number }): RunCheck {
  const path = join(home, 'runs', run, 'run.mvlog');
  const scan = scanRunLog(path);
  ctx.check(scan.torn === null, `${run}: log whole`, () => `the log of ${run} is torn at byte ${scan.torn?.offset}: ${scan.torn?.reason}`);
  ctx.check(scan.finished, `${run}: log finished`, () => `the log of ${run} has no FINISH entry`);
  let n = 0;
  let firstBad: string | null = null;
  for (const entry of readRunLog(path)) {
    if (entry.type !== EntryType.Record) continue;
    const i = (decodeValue(entry.payload) as { i?: unknown }).i;
    if (i !== n && firstBad === null) firstBad = `record ${n} of the log is { i: ${String(i)} }`;
    n++;
  }
  ctx.count('records checked', n);
  ctx.check(firstBad === null, `${run}: records once each, in order`, () => `${run}: ${firstBad} (expected i = ${n === 0 ? 0 : 'its index'}; a record lost, duplicated or out of order)`);
  ctx.check(n >= want.acked, `${run}: acknowledged record missing`, () => `${run}: the writer saw ${want.acked} records acknowledged durable, the log holds ${n}`);
  if (want.exactly !== undefined) {
    ctx.check(n === want.exactly, `${run}: records kept`, () => `${run}: ${want.exactly} records were published and kept by the supervisor, the log holds ${n}`);
  }
  return { records: n, scan };
}

/** The run's meta.json, or null. */
export function readMeta(home: string, run: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(join(home, 'runs', run, 'meta.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Lines of the supervisor log (`path`), and how many of each `msg`. */
export function logLines(path: string): { lines: number; byMsg: Map<string, number> } {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { lines: 0, byMsg: new Map() };
  }
  const byMsg = new Map<string, number>();
  let lines = 0;
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    lines++;
    let msg = '(not JSON)';
    try {
      msg = String((JSON.parse(line) as { msg?: unknown }).msg);
    } catch {
      // counted as not JSON
    }
    byMsg.set(msg, (byMsg.get(msg) ?? 0) + 1);
  }
  return { lines, byMsg };
}

/** The lines logged between two readings of `logLines`. */
export function linesSince(before: { lines: number; byMsg: Map<string, number> }, after: { lines: number; byMsg: Map<string, number> }): { lines: number; byMsg: Map<string, number> } {
  const byMsg = new Map<string, number>();
  for (const [msg, n] of after.byMsg) {
    const d = n - (before.byMsg.get(msg) ?? 0);
    if (d > 0) byMsg.set(msg, d);
  }
  return { lines: after.lines - before.lines, byMsg };
}
