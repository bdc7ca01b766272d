/**
 * The integrity checker: reads every run log of a home after an episode and proves, run by run,
 * that the promises of RELIABILITY.md held:
 * - the log is whole (no torn tail left: every torn tail was cut at recovery) and ends with a
 *   FINISH entry, and meta.json agrees with it on a final status;
 * - each publisher's records are exactly seq 0, 1, 2, ...: none duplicated, none out of order,
 *   none missing in the middle;
 * - every record acknowledged durable is there, and so is every record a process published
 *   before it called `process.exit` when its run was ended by that exit;
 * - a finish that a client saw reported exactly the records the log holds;
 * - every torn tail the section appended was reported by a RECOVERED entry, cut to the last
 *   whole record;
 * - the run ended with a status that says how (the section's expectations, where it has one).
 * It never throws on a bad log: everything wrong is a `Problem`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeValue } from '../../../protocol/index.js';
import { EntryType } from '../../../supervisor/recorder/log-format.js';
import { readRunLog, scanRunLog } from '../../../supervisor/recorder/log-reader.js';
import { type Expectations, FINAL_STATUSES } from './expectations.js';

export interface Problem {
  run: string;
  check: string;
  message: string;
}

export interface CheckResult {
  runs: number;
  records: number;
  /** Acknowledged records proven present. */
  acknowledged: number;
  recoveries: number;
  checks: number;
  problems: Problem[];
}

/** Checks every run under `runsDir`. Runs the section knows of but that have no directory are problems too. */
export function checkRuns(runsDir: string, expected: Expectations): CheckResult {
  const result: CheckResult = { runs: 0, records: 0, acknowledged: 0, recoveries: 0, checks: 0, problems: [] };
  const names = existsSync(runsDir) ? readdirSync(runsDir) : [];
  for (const run of names) checkRun(join(runsDir, run), run, expected, result);
  for (const run of expected.acked.keys()) {
    if (!names.includes(run)) problem(result, run, 'run missing', `run ${run} had acknowledged records but has no directory`);
  }
  return result;
}

function problem(result: CheckResult, run: string, check: string, message: string): void {
  result.problems.push({ run, check, message });
}

function checkRun(dir: string, run: string, expected: Expectations, result: CheckResult): void {
  result.runs++;
  const logPath = join(dir, 'run.mvlog');
  const fail = (check: string, message: string) => problem(result, run, check, message);
  const ok = (cond: boolean, check: string, message: () => string) => {
    result.checks++;
    if (!cond) fail(check, message());
    return cond;
  };
  if (!ok(existsSync(logPath), 'run log missing', () => `run ${run} has no run.mvlog`)) return;

  let scan;
  try {
    scan = scanRunLog(logPath);
  } catch (error) {
    fail('run log unreadable', `run ${run}: ${(error as Error).message}`);
    return;
  }
  ok(scan.torn === null, 'torn tail left', () => `run ${run}: the log is torn at byte ${scan.torn?.offset} of ${scan.fileBytes} (${scan.torn?.reason}) after recovery`);

  // One pass over the entries: records by publisher, recovery notes, the finish.
  const next = new Map<string, number>();
  const recovered: Array<{ truncatedBytes: number; tornAt: number | null }> = [];
  let finish: Record<string, unknown> | null = null;
  let afterFinish = 0;
  let order = true;
  for (const entry of readRunLog(logPath)) {
    if (finish !== null) afterFinish++;
    if (entry.type === EntryType.Record) {
      result.records++;
      const rec = decodeValue(entry.payload) as { p?: unknown; s?: unknown } | null;
      if (typeof rec?.p !== 'string' || typeof rec.s !== 'number') continue; // not a chaos client's record
      const want = next.get(rec.p) ?? 0;
      if (rec.s !== want && order) {
        order = false;
        const what = rec.s < want ? 'duplicated or out of order' : `missing seq ${want}..${rec.s - 1}`;
        fail(rec.s < want ? 'record duplicated or reordered' : 'record missing in the middle',
          `run ${run}, publisher ${rec.p}: record ${entry.index} has seq ${rec.s} where ${want} was due (${what})`);
      }
      next.set(rec.p, Math.max(want, rec.s + 1));
    } else if (entry.type === EntryType.Recovered) {
      const note = decodeValue(entry.payload) as { truncatedBytes?: number; tornAt?: number | null };
      recovered.push({ truncatedBytes: note.truncatedBytes ?? 0, tornAt: note.tornAt ?? null });
    } else if (entry.type === EntryType.Finish) {
      finish = decodeValue(entry.payload) as Record<string, unknown>;
    }
  }
  result.checks++;
  result.recoveries += recovered.length;

  // The end: a FINISH last, a final status with a reason, meta.json in agreement.
  if (ok(finish !== null, 'run not finished', () => `run ${run}: the log has no FINISH entry`)) {
    const f = finish as Record<string, unknown>;
    ok(afterFinish === 0, 'entries after finish', () => `run ${run}: ${afterFinish} entries follow the FINISH entry`);
    ok((FINAL_STATUSES as readonly string[]).includes(String(f.status)), 'status not final', () => `run ${run}: finished with status \`${String(f.status)}\``);
    ok(f.status === 'ok' || (typeof f.reason === 'string' && f.reason.length > 0), 'end without a reason', () => `run ${run}: status ${String(f.status)} without a reason`);
    let meta: Record<string, unknown> | null = null;
    try {
      meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Record<string, unknown>;
    } catch (error) {
      fail('meta unreadable', `run ${run}: meta.json: ${(error as Error).message}`);
    }
    if (meta) {
      ok(meta.state === 'finished' && meta.status === f.status, 'meta disagrees with log',
        () => `run ${run}: meta.json says state ${String(meta?.state)}, status ${String(meta?.status)}; the log's FINISH says ${String(f.status)}`);
    }
    const end = expected.ends.get(run);
    if (end) {
      ok(end.statuses.includes(String(f.status)), 'wrong final status',
        () => `run ${run}: ended by ${end.because}, so its status should be ${end.statuses.join(' or ')}, but it is ${String(f.status)} (${String(f.reason)})`);
    }
    // Records published before process.exit reach the supervisor when the exit is what ended the run.
    if (typeof f.reason === 'string' && f.reason.includes('went away')) {
      for (const [pub, seq] of expected.flushedAtExit.get(run) ?? []) {
        ok((next.get(pub) ?? 0) > seq, 'record lost at exit',
          () => `run ${run}, publisher ${pub}: published through seq ${seq} before process.exit, the log holds ${next.get(pub) ?? 0}`);
      }
    }
  }

  // Acknowledged records: every one present.
  for (const [pub, seq] of expected.acked.get(run) ?? []) {
    const have = next.get(pub) ?? 0;
    if (ok(have > seq, 'acknowledged record missing', () => `run ${run}, publisher ${pub}: seq 0..${seq} acknowledged durable, the log holds 0..${have - 1}`)) {
      result.acknowledged += seq + 1;
    }
  }
  const reported = expected.finishedRecords.get(run);
  if (reported !== undefined) {
    ok(reported === scan.records, 'finish count wrong', () => `run ${run}: its finish reported ${reported} records, the log holds ${scan.records}`);
  }

  // Torn tails the section made: reported by a RECOVERED entry, cut to the last whole entry.
  const torn = expected.tornBytes.get(run);
  if (torn !== undefined) {
    const cut = recovered.reduce((sum, r) => sum + r.truncatedBytes, 0);
    ok(recovered.length > 0 && cut >= torn, 'torn tail not reported',
      () => `run ${run}: ${torn} torn bytes were appended; recovery notes report ${recovered.length === 0 ? 'nothing' : `${cut} bytes cut`}`);
  }
}
