import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EntryType, FILE_HEADER_BYTES } from '../../../supervisor/recorder/log-format.js';
import { readRunLog, scanRunLog } from '../../../supervisor/recorder/log-reader.js';
import { RunLogWriter } from '../../../supervisor/recorder/log-writer.js';

let dir: string;
let counter = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'muxvisor-log-prop-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh path per run of a property, removed by the run itself. */
function freshPath(): string {
  return join(dir, `run-${++counter}.mvlog`);
}

function recordsOf(file: string): Buffer[] {
  return [...readRunLog(file)].filter((e) => e.type === EntryType.Record).map((e) => e.payload);
}

function sameBuffers(actual: Buffer[], expected: Buffer[]): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.findIndex((a, i) => !a.equals(expected[i] as Buffer))).toBe(-1);
}

type Step =
  | { op: 'append'; bytes: Uint8Array }
  | { op: 'flush' }
  | { op: 'crash'; cut: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ op: 'append' as const, bytes })) },
  { weight: 2, arbitrary: fc.constant({ op: 'flush' as const }) },
  // `cut` picks where the crash tears the file: `cut % (bytes written after the header + 1)`.
  // (Integers rather than a fraction: fast-check biases doubles towards 0, which hides mid-entry cuts.)
  { weight: 1, arbitrary: fc.nat().map((cut) => ({ op: 'crash' as const, cut })) },
);

describe('run log properties', () => {
  it('after any sequence of appends, flushes and crashes that tear the file at any point, the log reads back a prefix of what was appended', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 80, size: 'medium' }), async (steps) => {
        const path = freshPath();
        try {
          let writer = RunLogWriter.create(path, Buffer.from('open'), { bufferBytes: 256 });
          await writer.created;
          /** Records the log holds or buffers, in order, with the file offset where each one ends. */
          let model: Array<{ bytes: Buffer; end: number }> = [];
          for (const s of steps) {
            if (s.op === 'append') {
              writer.appendRecord(s.bytes);
              model.push({ bytes: Buffer.from(s.bytes), end: writer.bytes });
            } else if (s.op === 'flush') {
              writer.flush();
            } else {
              // The process dies: what was buffered is lost, and the file is torn somewhere in
              // what was written (anywhere after the header, as a lost page cache could).
              writer.destroy();
              const written = statSync(path).size;
              const cut = FILE_HEADER_BYTES + (s.cut % (written - FILE_HEADER_BYTES + 1));
              truncateSync(path, cut);
              const scan = scanRunLog(path);
              model = model.filter((r) => r.end <= cut);
              expect(scan.records).toBe(model.length);
              expect(scan.validBytes).toBeLessThanOrEqual(cut);
              expect(scan.torn === null).toBe(scan.validBytes === cut);
              const reopened = RunLogWriter.reopen(path, { bufferBytes: 256 });
              expect(reopened.recovery.truncatedBytes).toBe(cut - scan.validBytes);
              expect(statSync(path).size).toBe(scan.validBytes);
              writer = reopened.writer;
              writer.appendEntry(EntryType.Recovered, Buffer.from('recovered'));
            }
          }
          await writer.close();
          const scan = scanRunLog(path);
          expect(scan.torn).toBeNull();
          expect(scan.records).toBe(model.length);
          sameBuffers(recordsOf(path), model.map((r) => r.bytes));
        } finally {
          rmSync(path, { force: true });
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a single flipped bit anywhere after the header stops the scan at or before the entry holding it, keeping every record before that entry', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 30 }),
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        async (records, where, bit) => {
          const path = freshPath();
          try {
            const writer = RunLogWriter.create(path, Buffer.from('open'));
            const ends: number[] = [];
            for (const r of records) {
              writer.appendRecord(r);
              ends.push(writer.bytes);
            }
            await writer.close();
            const bytes = readFileSync(path);
            const at = FILE_HEADER_BYTES + (where % (bytes.length - FILE_HEADER_BYTES));
            bytes[at] = (bytes[at] as number) ^ (1 << bit);
            writeFileSync(path, bytes);
            const scan = scanRunLog(path);
            // Records that end at or before the flipped byte are intact and must all be kept;
            // the record holding it must not be.
            const intact = ends.filter((end) => end <= at).length;
            expect(scan.records).toBe(intact);
            expect(scan.torn).not.toBeNull();
            expect(scan.torn?.offset).toBeLessThanOrEqual(at);
            sameBuffers(recordsOf(path), records.slice(0, intact).map((r) => Buffer.from(r)));
          } finally {
            rmSync(path, { force: true });
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
