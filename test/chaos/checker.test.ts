/**
 * The chaos checker must catch what it claims to: each doctored home below breaks one promise,
 * and the checker names exactly that one. A clean home passes. (The checker is what makes
 * `npm run chaos` mean anything: a checker that cannot fail would prove nothing.)
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeValue } from '../../protocol/index.js';
import { EntryType } from '../../supervisor/recorder/log-format.js';
import { RunLogWriter } from '../../supervisor/recorder/log-writer.js';
import { checkRuns } from './integrity/checker.js';
import { Expectations } from './integrity/expectations.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

interface Doctored {
  /** seqs of publisher `a`, in log order. */
  seqs?: number[];
  finish?: { status: string; reason?: string } | null;
  meta?: Record<string, unknown>;
  recovered?: { truncatedBytes: number };
  tail?: Buffer;
}

/** A runs dir holding run `r1`, written the way the recorder writes it, with the doctoring asked for. */
async function runsDir(d: Doctored = {}): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'muxvisor-checker-'));
  dirs.push(root);
  const dir = join(root, 'r1');
  mkdirSync(dir);
  const writer = RunLogWriter.create(join(dir, 'run.mvlog'), encodeValue({ run: 'r1', time: 1 }));
  for (const s of d.seqs ?? [0, 1, 2, 3, 4]) writer.appendRecord(encodeValue({ p: 'a', s, x: '' }));
  if (d.recovered) writer.appendEntry(EntryType.Recovered, encodeValue({ truncatedBytes: d.recovered.truncatedBytes, tornAt: 100 }));
  const finish = d.finish === undefined ? { status: 'ok' } : d.finish;
  if (finish) writer.appendEntry(EntryType.Finish, encodeValue({ ...finish, records: writer.records }));
  await writer.close();
  if (d.tail) appendFileSync(join(dir, 'run.mvlog'), d.tail);
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(d.meta ?? { run: 'r1', state: 'finished', status: finish?.status ?? null }));
  return root;
}

function problems(root: string, expected = new Expectations()): string[] {
  return checkRuns(root, expected).problems.map((p) => p.check);
}

describe('the chaos checker', () => {
  it('passes a whole, finished run that holds every acknowledged record', async () => {
    const expected = new Expectations();
    expected.ack('r1', 'a', 4);
    expected.end('r1', ['ok'], 'test');
    const result = checkRuns(await runsDir(), expected);
    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ runs: 1, records: 5, acknowledged: 5 });
  });

  it('reports an acknowledged record that is missing', async () => {
    const expected = new Expectations();
    expected.ack('r1', 'a', 6);
    expect(problems(await runsDir(), expected)).toEqual(['acknowledged record missing']);
  });

  it('reports a duplicated record, a reordered one, and a gap', async () => {
    expect(problems(await runsDir({ seqs: [0, 1, 1, 2] }))).toEqual(['record duplicated or reordered']);
    expect(problems(await runsDir({ seqs: [0, 2, 1, 3] }))).toEqual(['record missing in the middle']);
    expect(problems(await runsDir({ seqs: [1, 0] }))).toEqual(['record missing in the middle']);
    expect(problems(await runsDir({ seqs: [0, 1, 3, 4] }))).toEqual(['record missing in the middle']);
  });

  it('reports a torn tail left in place, and a run with no FINISH', async () => {
    expect(problems(await runsDir({ tail: Buffer.from([1, 2, 3]) }))).toEqual(['torn tail left']);
    expect(problems(await runsDir({ finish: null, meta: { state: 'open' } }))).toEqual(['run not finished']);
  });

  it('reports a status that does not say how the run ended, and meta.json disagreeing with the log', async () => {
    expect(problems(await runsDir({ finish: { status: 'weird', reason: 'x' } }))).toEqual(['status not final']);
    expect(problems(await runsDir({ finish: { status: 'crashed' } }))).toEqual(['end without a reason']);
    expect(problems(await runsDir({ meta: { state: 'finished', status: 'crashed' } }))).toEqual(['meta disagrees with log']);
    const expected = new Expectations();
    expected.end('r1', ['interrupted'], 'supervisor SIGTERM');
    expect(problems(await runsDir(), expected)).toEqual(['wrong final status']);
  });

  it('reports a torn tail the section made that recovery did not report', async () => {
    const expected = new Expectations();
    expected.torn('r1', 40);
    expect(problems(await runsDir(), expected)).toEqual(['torn tail not reported']);
    expect(problems(await runsDir({ recovered: { truncatedBytes: 12 } }), expected)).toEqual(['torn tail not reported']);
    expect(problems(await runsDir({ recovered: { truncatedBytes: 40 } }), expected)).toEqual([]);
  });

  it('reports records published before process.exit that are missing from a run the exit ended', async () => {
    const expected = new Expectations();
    expected.flushed('r1', 'a', 9);
    const exited = { finish: { status: 'crashed', reason: 'its last owner went away without finishing' } };
    expect(problems(await runsDir(exited), expected)).toEqual(['record lost at exit']);
    expect(problems(await runsDir({ ...exited, seqs: Array.from({ length: 10 }, (_, i) => i) }), expected)).toEqual([]);
  });

  it('reports a finish count that differs from the log, and an acknowledged run with no directory', async () => {
    const expected = new Expectations();
    expected.finishedRecords.set('r1', 7);
    expected.ack('gone', 'a', 0);
    expect(problems(await runsDir(), expected).sort()).toEqual(['finish count wrong', 'run missing']);
  });
});
