import { execFileSync } from 'node:child_process';
import {
  chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync,
  truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, MuxvisorError } from '../../../protocol/errors.js';
import {
  encodeEntry, encodeFileHeader, ENTRY_HEADER_BYTES, EntryType, MAX_ENTRY_PAYLOAD_BYTES,
} from '../../../supervisor/recorder/log-format.js';
import { readRunLog, scanRunLog } from '../../../supervisor/recorder/log-reader.js';
import { POOL_WRITE_BYTES, RunLogWriter } from '../../../supervisor/recorder/log-writer.js';

let dir: string;
let path: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'muxvisor-log-'));
  path = join(dir, 'run.mvlog');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A payload of `size` bytes whose content depends on `seed`, so reorderings and mix-ups show. */
function payload(seed: number, size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) bytes[i] = (seed * 31 + i * 7) & 0xff;
  return bytes;
}

const OPEN = Buffer.from('open-meta');
const FINISH = Buffer.from('finish-meta');

function recordsOf(file: string): Buffer[] {
  return [...readRunLog(file)].filter((e) => e.type === EntryType.Record).map((e) => e.payload);
}

/** Writes a closed log with `sizes.length` records and returns the offset of each entry it wrote. */
async function writeLog(file: string, sizes: number[], finish = false): Promise<{ offsets: number[]; records: Buffer[] }> {
  const writer = RunLogWriter.create(file, OPEN);
  const offsets: number[] = [];
  const records = sizes.map((size, i) => payload(i, size));
  for (const record of records) {
    offsets.push(writer.bytes);
    writer.appendRecord(record);
  }
  if (finish) {
    offsets.push(writer.bytes);
    writer.appendEntry(EntryType.Finish, FINISH);
  }
  await writer.close();
  return { offsets, records };
}

/**
 * Expects the same buffers in the same order. Compares with Buffer.equals: deep equality of
 * megabyte buffers element by element takes seconds.
 */
function expectBuffers(actual: Buffer[], expected: Buffer[]): void {
  expect(actual.length, 'number of buffers').toBe(expected.length);
  const firstDifference = actual.findIndex((a, i) => !a.equals(expected[i] as Buffer));
  expect(firstDifference, 'index of the first buffer that differs').toBe(-1);
}

/** Runs `fn`, expects a MuxvisorError with `code`, and returns it. */
async function rejection(fn: () => unknown, code: ErrorCode): Promise<MuxvisorError> {
  let thrown: unknown = null;
  try {
    await fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(MuxvisorError);
  expect((thrown as MuxvisorError).code).toBe(code);
  return thrown as MuxvisorError;
}

describe('run log format', () => {
  it('starts with MUXVLOG\\0, version 1 and a CRC of the first 12 bytes, and lays out entries as crc, length, type, payload', async () => {
    const writer = RunLogWriter.create(path, Buffer.from([0xaa]));
    writer.appendRecord(Buffer.from([1, 2, 3]));
    await writer.close();
    const bytes = readFileSync(path);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('MUXVLOG\0');
    expect(bytes.readUInt32LE(8)).toBe(1);
    expect(bytes.readUInt32LE(12)).toBe(crc32(bytes.subarray(0, 12)));
    const open = bytes.subarray(16, 16 + 10);
    expect(open.subarray(4).toString('hex')).toBe('01000000' + '02' + 'aa');
    expect(open.readUInt32LE(0)).toBe(crc32(open.subarray(4)));
    const record = bytes.subarray(26);
    expect(record.subarray(4).toString('hex')).toBe('03000000' + '01' + '010203');
    expect(record.readUInt32LE(0)).toBe(crc32(record.subarray(4)));
    expect(bytes.length).toBe(16 + 10 + 12);
  });
});

describe('RunLogWriter and scanRunLog', () => {
  it('round-trips records of 0, 1, 100 bytes and 1 MiB in order, with OPEN and FINISH, and creates the file 0600', async () => {
    const sizes = [0, 1, 100, 1024 * 1024, 0, 3, 100, 1024 * 1024 + 1, 1];
    const writer = RunLogWriter.create(path, OPEN, { bufferBytes: 64 });
    const records = sizes.map((size, i) => payload(i, size));
    records.forEach((record, i) => {
      if (i % 2 === 0) writer.appendRecord(record);
      else {
        const source = Buffer.concat([Buffer.from('xx'), record, Buffer.from('yyy')]);
        writer.appendRecordFrom(source, 2, 2 + record.length);
      }
      if (i === 4) writer.flush();
    });
    writer.appendEntry(EntryType.Finish, FINISH);
    expect(writer.records).toBe(sizes.length);
    expect(writer.entries).toBe(sizes.length + 2);
    const bytes = writer.bytes;
    await writer.close();
    expect(writer.syncedBytes).toBe(bytes);
    expect(statSync(path).size).toBe(bytes);
    expect(statSync(path).mode & 0o777).toBe(0o600);

    const scan = scanRunLog(path);
    expect(scan).toMatchObject({ entries: sizes.length + 2, records: sizes.length, validBytes: bytes, fileBytes: bytes, torn: null, finished: true });
    expect(Buffer.from(scan.open as Uint8Array)).toEqual(OPEN);
    expect(Buffer.from(scan.finish as Uint8Array)).toEqual(FINISH);
    const entries = [...readRunLog(path)];
    expect(entries.map((e) => e.type)).toEqual([EntryType.Open, ...sizes.map(() => EntryType.Record), EntryType.Finish]);
    expect(entries.map((e) => e.index)).toEqual([-1, ...sizes.map((_, i) => i), -1]);
    expectBuffers(entries.filter((e) => e.type === EntryType.Record).map((e) => e.payload), records);
  });

  it('reads a log of several MiB whose entries straddle the 1 MiB read chunks', async () => {
    const sizes = Array.from({ length: 4000 }, (_, i) => (i * 997) % 2000);
    const { records } = await writeLog(path, sizes, true);
    expect(statSync(path).size).toBeGreaterThan(3 * 1024 * 1024);
    expect(scanRunLog(path)).toMatchObject({ records: 4000, torn: null, finished: true });
    expectBuffers(recordsOf(path), records);
  });

  it('counts buffered bytes until flush, and keeps what it flushed when the process goes away without closing', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    await writer.created;
    const start = writer.bytes;
    writer.appendRecord(payload(1, 100));
    expect(writer.bufferedBytes).toBe(ENTRY_HEADER_BYTES + 100);
    expect(statSync(path).size).toBe(start);
    writer.flush();
    expect(writer.bufferedBytes).toBe(0);
    expect(statSync(path).size).toBe(start + ENTRY_HEADER_BYTES + 100);
    writer.appendRecord(payload(2, 50));
    writer.destroy();
    expectBuffers(recordsOf(path), [payload(1, 100)]);
  });

  it('refuses payloads over 64 MiB on append, and a length field over the limit reads as corruption', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    const huge = Buffer.alloc(MAX_ENTRY_PAYLOAD_BYTES + 1);
    const error = await rejection(() => writer.appendRecord(huge), ErrorCode.InvalidArgument);
    expect(error.message).toContain('67108865 bytes exceeds the limit of 67108864');
    expect(writer.entries).toBe(1);
    writer.appendRecord(payload(1, 10));
    await writer.close();
    const at = statSync(path).size;
    const bad = Buffer.alloc(ENTRY_HEADER_BYTES + 4);
    bad.writeUInt32LE(0xffffffff, 4);
    writeFileSync(path, bad, { flag: 'a' });
    expect(scanRunLog(path).torn).toEqual({ offset: at, reason: 'length 4294967295 exceeds the 67108864-byte limit' });
    expectBuffers(recordsOf(path), [payload(1, 10)]);
  });

  it('throws on append, flush and sync after close, and close is idempotent', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    writer.appendRecord(payload(0, 5));
    const first = writer.close();
    expect(writer.close()).toBe(first);
    await first;
    await writer.close();
    expect(writer.closed).toBe(true);
    await rejection(() => writer.appendRecord(payload(1, 5)), ErrorCode.Storage);
    await rejection(() => writer.flush(), ErrorCode.Storage);
    await rejection(() => writer.sync(), ErrorCode.Storage);
    expectBuffers(recordsOf(path), [payload(0, 5)]);
  });

  it('refuses an out-of-range appendRecordFrom and an unknown entry type without writing anything', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    await writer.created;
    await rejection(() => writer.appendRecordFrom(Buffer.alloc(4), 2, 5), ErrorCode.InvalidArgument);
    await rejection(() => writer.appendRecordFrom(Buffer.alloc(4), 3, 2), ErrorCode.InvalidArgument);
    await rejection(() => writer.appendEntry(9, Buffer.alloc(1)), ErrorCode.InvalidArgument);
    expect(writer.entries).toBe(1);
    expect(writer.bufferedBytes).toBe(0);
    await writer.close();
  });
});

describe('create', () => {
  it('refuses an existing path with MUXVISOR_RUN_EXISTS and leaves the file untouched', async () => {
    await writeLog(path, [10, 20]);
    const before = readFileSync(path);
    const writer = RunLogWriter.create(path, OPEN);
    const error = await rejection(() => writer.created, ErrorCode.RunExists);
    expect(error.message).toContain(path);
    expect(writer.closed).toBe(true);
    await rejection(() => writer.close(), ErrorCode.RunExists);
    expect(readFileSync(path)).toEqual(before);

    const other = join(dir, 'not-a-log');
    writeFileSync(other, 'precious');
    await rejection(() => RunLogWriter.create(other, OPEN).created, ErrorCode.RunExists);
    expect(readFileSync(other, 'utf8')).toBe('precious');
  });

  it('links the log in whole: no other name is left beside it, and it holds its OPEN entry once it exists', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    await writer.created;
    expect(readdirSync(dir)).toEqual(['run.mvlog']);
    expect([...readRunLog(path)].map((e) => e.type)).toEqual([EntryType.Open]);
    await writer.close();
  });

  it('takes appends before the file exists and writes them after the OPEN, in order', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    writer.appendRecord(payload(1, 10));
    writer.flush(); // the file may not exist yet: the bytes stay buffered, no error
    writer.appendRecord(payload(2, 20));
    await writer.created;
    expect(statSync(path).size, 'what was buffered is written once the file exists').toBe(writer.bytes);
    await writer.close();
    expect([...readRunLog(path)].map((e) => e.type)).toEqual([EntryType.Open, EntryType.Record, EntryType.Record]);
    expect(recordsOf(path)).toEqual([payload(1, 10), payload(2, 20)]);
  });

  it('leaves the fsync to the first sync, which the next sync does not repeat', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    await writer.created;
    expect(writer.fsyncs).toBe(0);
    expect(writer.syncedBytes).toBe(0);
    // In the OS already: a reader (or a supervisor that dies now) sees the whole OPEN entry.
    expect([...readRunLog(path)].map((e) => e.type)).toEqual([EntryType.Open]);

    await writer.sync();
    expect(writer.fsyncs).toBe(1);
    expect(writer.syncedBytes).toBe(writer.bytes);
    await writer.sync();
    expect(writer.fsyncs).toBe(1);
    await writer.close();
  });

  it('makes missing directories, mode 0700, and the log 0600', async () => {
    const nested = join(dir, 'runs', 'r1', 'run.mvlog');
    const writer = RunLogWriter.create(nested, OPEN);
    await writer.close();
    expect(statSync(join(dir, 'runs')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'runs', 'r1')).mode & 0o777).toBe(0o700);
    expect(statSync(nested).mode & 0o777).toBe(0o600);
    expect([...readRunLog(nested)].map((e) => e.type)).toEqual([EntryType.Open]);
  });

  it('fails with MUXVISOR_STORAGE naming the path when its directory cannot be made', async () => {
    writeFileSync(join(dir, 'a-file'), 'x');
    const impossible = join(dir, 'a-file', 'r1', 'run.mvlog');
    const writer = RunLogWriter.create(impossible, OPEN);
    const error = await rejection(() => writer.created, ErrorCode.Storage);
    expect(error.message).toContain(impossible);
    expect(error.message).toMatch(/ENOTDIR|EEXIST/);
    await rejection(() => writer.sync(), ErrorCode.Storage);
  });
});

describe('torn tails', () => {
  it('reports a tail torn at every byte of the last entry, recovers all earlier records, and reopen continues after them', async () => {
    const { offsets, records } = await writeLog(path, [10, 0, 30, 45]);
    const whole = readFileSync(path);
    const last = offsets[3] as number;
    const copy = join(dir, 'copy.mvlog');
    for (let cut = last; cut < whole.length; cut++) {
      rmSync(copy, { force: true });
      copyFileSync(path, copy);
      truncateSync(copy, cut);
      const left = cut - last;
      const scan = scanRunLog(copy);
      expect(scan.records, `cut at ${cut}`).toBe(3);
      expect(scan.validBytes).toBe(last);
      expect(scan.fileBytes).toBe(cut);
      if (left === 0) expect(scan.torn).toBeNull();
      else if (left < ENTRY_HEADER_BYTES) expect(scan.torn).toEqual({ offset: last, reason: `entry header cut off: ${left} of 9 bytes` });
      else expect(scan.torn).toEqual({ offset: last, reason: `entry of 54 bytes runs past the end of the file (${left} bytes left)` });
      expectBuffers(recordsOf(copy), records.slice(0, 3));

      const { writer, recovery } = RunLogWriter.reopen(copy);
      expect(recovery).toEqual({ entries: 4, records: 3, validBytes: last, truncatedBytes: left, torn: scan.torn, finished: false, finish: null });
      expect(statSync(copy).size).toBe(last);
      expect(writer.records).toBe(3);
      writer.appendEntry(EntryType.Recovered, Buffer.from('note'));
      writer.appendRecord(payload(100, 7));
      writer.appendRecord(payload(101, 0));
      await writer.close();
      expect(scanRunLog(copy)).toMatchObject({ records: 5, entries: 7, torn: null });
      expectBuffers(recordsOf(copy), [...records.slice(0, 3), payload(100, 7), payload(101, 0)]);
    }
  });

  it('catches a flipped bit anywhere in an entry (crc, length, type or payload) and recovers the records before it', async () => {
    const { offsets, records } = await writeLog(path, [5, 20, 12, 8]);
    const whole = readFileSync(path);
    const target = offsets[2] as number;
    const end = offsets[3] as number;
    const copy = join(dir, 'copy.mvlog');
    for (let at = target; at < end; at++) {
      for (let bit = 0; bit < 8; bit++) {
        const bytes = Buffer.from(whole);
        bytes[at] = (bytes[at] as number) ^ (1 << bit);
        writeFileSync(copy, bytes);
        const scan = scanRunLog(copy);
        expect(scan.torn?.offset, `bit ${bit} of byte ${at}`).toBe(target);
        expect(scan.records).toBe(2);
        if (at >= target + 8 || at < target + 4) expect(scan.torn?.reason).toMatch(/^CRC mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/);
        expectBuffers(recordsOf(copy), records.slice(0, 2));
      }
    }
  });

  it('stops iteration silently at the torn point, and readRunLog honours fromRecord and limit', async () => {
    const { records } = await writeLog(path, [1, 2, 3, 4, 5, 6]);
    writeFileSync(path, Buffer.from([1, 2, 3]), { flag: 'a' });
    expectBuffers(recordsOf(path), records);
    const page = [...readRunLog(path, { fromRecord: 2, limit: 3 })];
    expect(page.map((e) => [e.type, e.index])).toEqual([[EntryType.Open, -1], [EntryType.Record, 2], [EntryType.Record, 3], [EntryType.Record, 4]]);
    expect(page[1]?.payload).toEqual(records[2]);
    expect([...readRunLog(path, { limit: 0 })]).toEqual([]);
    expect(() => readRunLog(path, { fromRecord: -1 })).toThrow(MuxvisorError);
  });

  it('closes the file when an iteration is left early', async () => {
    if (!existsSync('/proc/self/fd')) return;
    await writeLog(path, [1, 2, 3]);
    const before = readdirSync('/proc/self/fd').length;
    for (const entry of readRunLog(path)) if (entry.type === EntryType.Record) break;
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });

  it('refuses an entry of an unknown type with a correct CRC instead of cutting it off', async () => {
    await writeLog(path, [4, 4]);
    const at = statSync(path).size;
    writeFileSync(path, encodeEntry(9, Buffer.from('future')), { flag: 'a' });
    const before = readFileSync(path);
    const error = await rejection(() => scanRunLog(path), ErrorCode.Storage);
    expect(error.message).toContain(`unknown entry type 9 at offset ${at}`);
    await rejection(() => RunLogWriter.reopen(path), ErrorCode.Storage);
    expect(readFileSync(path)).toEqual(before);
  });

  it('reports a finished log as finished on reopen', async () => {
    await writeLog(path, [3], true);
    const { writer, recovery } = RunLogWriter.reopen(path);
    expect(recovery).toMatchObject({ finished: true, truncatedBytes: 0, torn: null, records: 1, entries: 3 });
    await writer.close();
  });
});

describe('file header', () => {
  const withHeader = (whole: Buffer, edit: (header: Buffer) => void): Buffer => {
    const bytes = Buffer.from(whole);
    edit(bytes);
    return bytes;
  };
  const cases: Array<[string, (whole: Buffer) => Buffer, RegExp]> = [
    ['bad magic', (w) => withHeader(w, (b) => b.write('NOTALOG!', 0, 'latin1')), /bad magic 4e4f54414c4f4721 .*not a muxvisor run log/],
    ['a flipped version bit (header CRC)', (w) => withHeader(w, (b) => { b[8] = (b[8] as number) ^ 2; }),
      /header CRC mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}/],
    ['an unsupported version', (w) => withHeader(w, (b) => {
      b.writeUInt32LE(2, 8);
      b.writeUInt32LE(crc32(b.subarray(0, 12)), 12);
    }), /format version 2 is not supported \(supported: 1\)/],
    ['a file shorter than the header', (w) => w.subarray(0, 5), /file of 5 bytes is shorter than the 16-byte header/],
    ['an empty file', () => Buffer.alloc(0), /file of 0 bytes is shorter than the 16-byte header/],
  ];

  for (const [what, corrupt, message] of cases) {
    it(`refuses ${what} with MUXVISOR_STORAGE naming the path, in scan and reopen, and changes nothing`, async () => {
      await writeLog(path, [8]);
      const file = join(dir, 'bad.mvlog');
      writeFileSync(file, corrupt(readFileSync(path)));
      const before = readFileSync(file);
      const scanError = await rejection(() => scanRunLog(file), ErrorCode.Storage);
      expect(scanError.message).toContain(file);
      expect(scanError.message).toMatch(message);
      const reopenError = await rejection(() => RunLogWriter.reopen(file), ErrorCode.Storage);
      expect(reopenError.message).toContain(file);
      expect(reopenError.message).toMatch(message);
      expect(readFileSync(file)).toEqual(before);
    });
  }

  it('fails with MUXVISOR_STORAGE when the file cannot be opened', async () => {
    const error = await rejection(() => scanRunLog(join(dir, 'missing.mvlog')), ErrorCode.Storage);
    expect(error.message).toMatch(/cannot open run log .*missing\.mvlog: ENOENT/);
  });

  it('is what encodeFileHeader produces', () => {
    const expected = Buffer.alloc(16);
    expected.write('MUXVLOG\0', 0, 'latin1');
    expected.writeUInt32LE(1, 8);
    expected.writeUInt32LE(crc32(expected.subarray(0, 12)), 12);
    expect(encodeFileHeader()).toEqual(expected);
  });
});

describe('group commit', () => {
  it('shares fsyncs among many concurrent syncs and resolves each only once its bytes are durable', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    const fsyncsBefore = writer.fsyncs;
    const calls = 200;
    const checks: Array<Promise<void>> = [];
    for (let i = 0; i < calls; i++) {
      writer.appendRecord(payload(i, 100));
      const appended = writer.bytes;
      checks.push(writer.sync().then(() => {
        expect(writer.syncedBytes).toBeGreaterThanOrEqual(appended);
      }));
    }
    await Promise.all(checks);
    const used = writer.fsyncs - fsyncsBefore;
    expect(used).toBeGreaterThanOrEqual(1);
    expect(used).toBeLessThanOrEqual(2);
    expect(writer.syncedBytes).toBe(writer.bytes);

    // Nothing new: resolves without another fsync.
    await writer.sync();
    expect(writer.fsyncs - fsyncsBefore).toBe(used);
    await writer.close();
    expect(recordsOf(path)).toHaveLength(calls);
  });

  it('keeps sharing fsyncs while new syncs keep arriving during earlier ones', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    const fsyncsBefore = writer.fsyncs;
    let resolved = 0;
    const all: Array<Promise<void>> = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10; i++) {
        writer.appendRecord(payload(round * 10 + i, 50));
        const appended = writer.bytes;
        all.push(writer.sync().then(() => {
          expect(writer.syncedBytes).toBeGreaterThanOrEqual(appended);
          resolved++;
        }));
      }
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(all);
    expect(resolved).toBe(200);
    expect(writer.fsyncs - fsyncsBefore).toBeLessThanOrEqual(21);
    await writer.close();
  });

  it('lets close wait for an fsync in flight and cover the syncs queued behind it', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    // Syncs asked for before the file exists hold too.
    writer.appendRecord(payload(1, 10));
    const a = writer.sync();
    writer.appendRecord(payload(2, 10));
    const b = writer.sync();
    writer.appendRecord(payload(3, 10));
    await Promise.all([a, b, writer.close()]);
    expect(writer.syncedBytes).toBe(writer.bytes);
    expect(recordsOf(path)).toHaveLength(3);
  });
});

describe('flushes written through the thread pool', () => {
  it('writes a big flush off the thread, keeps later appends after it, and lets sync and close wait for it', async () => {
    const writer = RunLogWriter.create(path, OPEN);
    await writer.created;
    const base = writer.bytes;
    const big = Array.from({ length: 3 }, (_, i) => payload(i, POOL_WRITE_BYTES / 2));
    for (const record of big) writer.appendRecord(record);
    const total = writer.bytes;
    writer.flush();
    const writing = writer.writing;
    expect(writing, 'a flush of 1.5 MiB goes to the pool').not.toBeNull();
    expect(writer.bytes).toBe(total);
    expect(writer.bufferedBytes).toBe(total - base);
    // Appended and flushed while the pool writes: it waits, then follows.
    writer.appendRecord(payload(9, 10));
    writer.flush();
    await writing;
    expect(writer.writing).toBeNull();
    expect(statSync(path).size).toBe(writer.bytes);
    const synced = writer.sync();
    writer.appendRecord(payload(10, POOL_WRITE_BYTES));
    writer.flush();
    await synced;
    await writer.close();
    expect(recordsOf(path)).toEqual([...big, payload(9, 10), payload(10, POOL_WRITE_BYTES)]);
    expect(scanRunLog(path)).toMatchObject({ torn: null, records: 5 });
  });
});

describe('write errors', () => {
  // A real full disk: a 64 KiB tmpfs. Mocks would not show what the kernel does with a partial
  // write, and writing through a removed directory does not fail on Linux (the open descriptor
  // keeps the file alive). Mounting needs root; where it fails the test is skipped and says why.
  it('surfaces ENOSPC as MUXVISOR_STORAGE, keeps the unwritten bytes buffered, and a retry writes them', async (ctx) => {
    const mnt = join(dir, 'small');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (error) {
      ctx.skip(`cannot mount a small tmpfs here (needs root): ${String((error as Error).message).split('\n')[0]}`);
    }
    let writer: RunLogWriter | null = null;
    try {
      chmodSync(mnt, 0o700);
      const file = join(mnt, 'run.mvlog');
      const log = RunLogWriter.create(file, OPEN);
      await log.created;
      writer = log;
      const records = Array.from({ length: 200 }, (_, i) => payload(i, 1000));
      for (const record of records) log.appendRecord(record);
      const total = log.bytes;
      const error = await rejection(() => log.flush(), ErrorCode.Storage);
      expect(error.message).toContain(file);
      expect(error.message).toContain('ENOSPC');
      expect(error.message).toMatch(/cannot write \d+ bytes/);
      expect(error.cause).toMatchObject({ code: 'ENOSPC' });
      expect(log.failed).toBe(error);
      expect(log.bufferedBytes).toBeGreaterThan(0);
      expect(log.bytes).toBe(total);
      const written = statSync(file).size;
      expect(written + log.bufferedBytes).toBe(total);
      // What reached the file is a valid prefix, possibly torn.
      const partial = scanRunLog(file);
      expectBuffers(recordsOf(file), records.slice(0, partial.records));
      await rejection(() => log.sync(), ErrorCode.Storage);

      execFileSync('mount', ['-o', 'remount,size=1m', mnt], { stdio: 'pipe' });
      log.flush();
      expect(log.failed).toBeNull();
      expect(log.bufferedBytes).toBe(0);

      // A flush big enough for the thread pool meets the full disk there: the next flush says so,
      // nothing is lost, and once there is room a retry writes it all, in order.
      const bigger = Array.from({ length: 3 }, (_, i) => payload(100 + i, POOL_WRITE_BYTES / 2));
      for (const record of bigger) log.appendRecord(record);
      const all = log.bytes;
      log.flush();
      expect(log.writing).not.toBeNull();
      await log.writing;
      expect(log.bytes).toBe(all);
      expect(statSync(file).size + log.bufferedBytes).toBe(all);
      const late = await rejection(() => log.flush(), ErrorCode.Storage);
      expect(late.message).toContain('ENOSPC');
      await log.writing;
      execFileSync('mount', ['-o', 'remount,size=8m', mnt], { stdio: 'pipe' });
      await log.close();
      expect(scanRunLog(file)).toMatchObject({ records: 203, torn: null, validBytes: all });
      expectBuffers(recordsOf(file), [...records, ...bigger]);
    } finally {
      // Release the file first, or the unmount fails as busy and the mount outlives the test.
      writer?.destroy();
      try {
        execFileSync('umount', [mnt], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
      }
    }
  });
});
