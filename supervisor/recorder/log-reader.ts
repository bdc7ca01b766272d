/**
 * Reading a run log: `scanRunLog` recovers every entry up to the first torn or corrupt one and
 * says where it stopped; `readRunLog` iterates over the entries themselves.
 *
 * Contract: the file is read sequentially in 1 MiB reads through one reusable buffer (it grows
 * only to hold an entry larger than that), so a log of many gigabytes never has to fit in memory.
 * The reader looks at the bytes that exist when it opens the file; a writer appending at the same
 * time is not seen past that size. A torn or corrupt tail is never an error: reading stops at the
 * first entry that is not whole and correct, and `torn` says where and why. Errors
 * (MUXVISOR_STORAGE) are only: the file cannot be read, its 16-byte header is wrong, or an entry
 * with a correct CRC has a type this version does not know. That last one is refused rather than
 * treated as a torn tail, because `RunLogWriter.reopen` cuts a torn tail off, and it must never
 * cut off entries that a newer muxvisor wrote on purpose.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ErrorCode, MuxvisorError } from '../../protocol/errors.js';
import {
  checkFileHeader, ENTRY_HEADER_BYTES, entryCrc, EntryType, FILE_HEADER_BYTES, hex32, isEntryType,
  MAX_ENTRY_PAYLOAD_BYTES,
} from './log-format.js';
import { TimeSlices } from '../time-slices.js';

/** Where a log stops being whole and correct, and why. */
export interface TornInfo {
  /** Byte offset of the first entry that is not whole and correct; everything before it is valid. */
  offset: number;
  /** For people: "CRC mismatch: stored 0x1234abcd, computed 0x9abc0000". */
  reason: string;
}

export interface ScanResult {
  /** Valid entries of every type. */
  entries: number;
  /** Valid RECORD entries. */
  records: number;
  /** Bytes from the start of the file to the end of the last valid entry (at least the header). */
  validBytes: number;
  /** The file's size when it was opened. `fileBytes - validBytes` is the torn tail. */
  fileBytes: number;
  /** Null when the file ends exactly after a valid entry. */
  torn: TornInfo | null;
  /** True when a valid FINISH entry was found. */
  finished: boolean;
  /** The payload of the first OPEN entry (a copy), or null when there is none. */
  open: Uint8Array | null;
  /** The payload of the last FINISH entry (a copy), or null when there is none. */
  finish: Uint8Array | null;
}

export interface LogEntry {
  type: EntryType;
  /** Byte offset of the entry in the file. */
  offset: number;
  /** Byte offset just past it: where the next entry starts (a ResumePoint's offset). */
  end: number;
  /** The record's index (0 for the first record) for RECORD entries; -1 for every other type. */
  index: number;
  /** A copy of the payload, owned by the caller. */
  payload: Buffer;
}

/** A place to resume reading: an entry's `offset`, and the record index of the first record from there. */
export interface ResumePoint {
  offset: number;
  index: number;
}

export interface ReadRunLogOptions {
  /**
   * Start at this entry boundary instead of the beginning: `offset` is an entry's `offset` from a
   * previous read (or `end` of one), `index` the record index of the first record found there.
   * Saves reading and checking everything before it.
   */
  from?: ResumePoint;
  /**
   * Skip RECORD entries whose index is below this. Entries of other types are still yielded.
   * @default 0
   * @example readRunLog(path, { fromRecord: 1000, limit: 100 }) // records 1000..1099
   */
  fromRecord?: number;
  /**
   * Stop after yielding this many RECORD entries.
   * @default Infinity
   */
  limit?: number;
}

/** Reads the whole log and reports what is valid in it. Throws only as the file contract says. */
export function scanRunLog(path: string): ScanResult {
  const fd = openForReading(path);
  try {
    return scanRunLogFd(fd, path);
  } finally {
    closeSync(fd);
  }
}

/** `scanRunLog` on a file the caller has opened (and closes); reads with positions, from 0. */
export function scanRunLogFd(fd: number, path: string): ScanResult {
  const cursor = new EntryCursor(fd, path);
  let entries = 0;
  let records = 0;
  let open: Uint8Array | null = null;
  let finish: Uint8Array | null = null;
  while (cursor.next()) {
    entries++;
    if (cursor.type === EntryType.Record) records++;
    else if (cursor.type === EntryType.Open && open === null) open = Buffer.from(cursor.payload());
    else if (cursor.type === EntryType.Finish) finish = Buffer.from(cursor.payload());
  }
  return {
    entries,
    records,
    validBytes: cursor.offset,
    fileBytes: cursor.fileBytes,
    torn: cursor.torn,
    finished: finish !== null,
    open,
    finish,
  };
}

/**
 * The log's valid entries in file order; stops silently at the torn point (`scanRunLog` says
 * where). The file is opened at the first `next()` and closed when the iteration ends, throws, or
 * is left early through `return()` (as `break` in a for-of does); a generator that is started and
 * then abandoned keeps its file open until it is collected.
 */
export function readRunLog(path: string, options: ReadRunLogOptions = {}): Generator<LogEntry, void, undefined> {
  const fromRecord = options.fromRecord ?? 0;
  const limit = options.limit ?? Infinity;
  if (!Number.isSafeInteger(fromRecord) || fromRecord < 0) badOption('fromRecord', fromRecord);
  if (!(limit === Infinity || (Number.isSafeInteger(limit) && limit >= 0))) badOption('limit', limit);
  const from = options.from;
  if (from !== undefined && !(Number.isSafeInteger(from.offset) && from.offset >= FILE_HEADER_BYTES && Number.isSafeInteger(from.index) && from.index >= 0)) {
    badOption('from', JSON.stringify(from));
  }
  return entriesOf(path, fromRecord, limit, from ?? { offset: FILE_HEADER_BYTES, index: 0 });
}

function* entriesOf(path: string, fromRecord: number, limit: number, from: ResumePoint): Generator<LogEntry, void, undefined> {
  if (limit === 0) return;
  const fd = openForReading(path);
  try {
    const cursor = new EntryCursor(fd, path);
    cursor.offset = from.offset;
    let index = from.index;
    let yielded = 0;
    while (cursor.next()) {
      if (cursor.type !== EntryType.Record) {
        yield { type: cursor.type, offset: cursor.entryOffset, end: cursor.offset, index: -1, payload: Buffer.from(cursor.payload()) };
        continue;
      }
      const i = index++;
      if (i < fromRecord) continue;
      yield { type: cursor.type, offset: cursor.entryOffset, end: cursor.offset, index: i, payload: Buffer.from(cursor.payload()) };
      if (++yielded >= limit) return;
    }
  } finally {
    closeSync(fd);
  }
}

/** What `walkRunLog` shows its visitor: one valid entry. */
export interface WalkedEntry {
  type: EntryType;
  offset: number;
  end: number;
  /** Record index for RECORD entries, -1 for the others. */
  index: number;
  /** A view into the read buffer: valid only during the visit (copy it to keep it). */
  payload: Buffer;
}

export interface WalkOptions {
  /** Start here instead of after the file header (an entry boundary from an earlier walk). */
  from?: ResumePoint;
  /** Aborting rejects the walk with the signal's reason at the next slice. */
  signal?: AbortSignal;
  /**
   * The walk gives the event loop back after this much work, so a log of gigabytes never blocks
   * its thread for longer.
   * @default 5
   */
  sliceMs?: number;
}

/**
 * `scanRunLog`, cut into slices of at most `sliceMs` with the event loop given back between them,
 * calling `visit` for each valid entry from `from` on. For the supervisor's main thread, where a
 * diagnostic (verify, tail, a finished run's summary) must not stall the clients. Resolves with
 * the scan's result (counts from `from` on); rejects MUXVISOR_STORAGE as `scanRunLog` throws.
 */
export async function walkRunLog(path: string, visit: (entry: WalkedEntry) => void, options: WalkOptions = {}): Promise<ScanResult> {
  const slices = new TimeSlices(options.sliceMs ?? 5, options.signal);
  const fd = openForReading(path);
  try {
    const cursor = new EntryCursor(fd, path);
    const from = options.from ?? { offset: FILE_HEADER_BYTES, index: 0 };
    cursor.offset = from.offset;
    let index = from.index;
    let entries = 0;
    let records = 0;
    let open: Uint8Array | null = null;
    let finish: Uint8Array | null = null;
    const entry: WalkedEntry = { type: EntryType.Record, offset: 0, end: 0, index: -1, payload: Buffer.alloc(0) };
    while (cursor.next()) {
      entries++;
      entry.type = cursor.type;
      entry.offset = cursor.entryOffset;
      entry.end = cursor.offset;
      entry.payload = cursor.payload();
      if (cursor.type === EntryType.Record) {
        records++;
        entry.index = index++;
      } else {
        entry.index = -1;
        if (cursor.type === EntryType.Open && open === null) open = Buffer.from(entry.payload);
        else if (cursor.type === EntryType.Finish) finish = Buffer.from(entry.payload);
      }
      visit(entry);
      if ((entries & 255) === 0 && slices.due) await slices.next();
    }
    return { entries, records, validBytes: cursor.offset, fileBytes: cursor.fileBytes, torn: cursor.torn, finished: finish !== null, open, finish };
  } finally {
    closeSync(fd);
  }
}

const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * Walks the entries of an open log, checking each one. Owns nothing: the caller opens and closes
 * the file. The constructor reads and checks the file header.
 */
class EntryCursor {
  readonly fileBytes: number;
  /** File offset just past the last valid entry: where the next entry starts. */
  offset = FILE_HEADER_BYTES;
  /** Set when `next()` found an entry that is not whole and correct. */
  torn: TornInfo | null = null;
  /** The current entry, valid after `next()` returned true. */
  type: EntryType = EntryType.Record;
  entryOffset = 0;
  readonly #fd: number;
  readonly #path: string;
  /** Holds file bytes [#bufAt, #bufAt + #bufFill). */
  #buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  #bufAt = 0;
  #bufFill = 0;
  #payloadAt = 0;
  #payloadLength = 0;

  constructor(fd: number, path: string) {
    this.#fd = fd;
    this.#path = path;
    try {
      this.fileBytes = fstatSync(fd).size;
    } catch (error) {
      throw ioError(path, 'stat', error);
    }
    const problem = this.fileBytes < FILE_HEADER_BYTES
      ? `file of ${this.fileBytes} bytes is shorter than the ${FILE_HEADER_BYTES}-byte header`
      : checkFileHeader(this.#buf.subarray(this.#ensure(0, FILE_HEADER_BYTES), FILE_HEADER_BYTES));
    if (problem !== null) {
      throw new MuxvisorError(ErrorCode.Storage, `run log ${path}: ${problem}`, { data: { path, fileBytes: this.fileBytes } });
    }
  }

  /**
   * Moves to the next entry and returns true when it is valid; returns false at the end of the
   * file or at a torn or corrupt entry (then `torn` says where and why, and `offset` stays there).
   */
  next(): boolean {
    if (this.torn !== null) return false;
    const at = this.offset;
    const left = this.fileBytes - at;
    if (left === 0) return false;
    if (left < ENTRY_HEADER_BYTES) return this.#stop(`entry header cut off: ${left} of ${ENTRY_HEADER_BYTES} bytes`);
    let rel = this.#ensure(at, ENTRY_HEADER_BYTES);
    const length = this.#buf.readUInt32LE(rel + 4);
    if (length > MAX_ENTRY_PAYLOAD_BYTES) {
      return this.#stop(`length ${length} exceeds the ${MAX_ENTRY_PAYLOAD_BYTES}-byte limit`);
    }
    const total = ENTRY_HEADER_BYTES + length;
    if (total > left) return this.#stop(`entry of ${total} bytes runs past the end of the file (${left} bytes left)`);
    rel = this.#ensure(at, total);
    const buf = this.#buf;
    const stored = buf.readUInt32LE(rel);
    const computed = entryCrc(buf, rel, length);
    if (stored !== computed) return this.#stop(`CRC mismatch: stored ${hex32(stored)}, computed ${hex32(computed)}`);
    const type = buf[rel + 8] as number;
    if (!isEntryType(type)) {
      throw new MuxvisorError(
        ErrorCode.Storage,
        `run log ${this.#path}: unknown entry type ${type} at offset ${at} (known: 1..4); written by a newer muxvisor?`,
        { data: { path: this.#path, offset: at, type } },
      );
    }
    this.type = type;
    this.entryOffset = at;
    this.#payloadAt = rel + ENTRY_HEADER_BYTES;
    this.#payloadLength = length;
    this.offset = at + total;
    return true;
  }

  /** The current entry's payload: a view into the read buffer, valid until the next `next()`. */
  payload(): Buffer {
    return this.#buf.subarray(this.#payloadAt, this.#payloadAt + this.#payloadLength);
  }

  #stop(reason: string): false {
    this.torn = { offset: this.offset, reason };
    return false;
  }

  /**
   * Makes the buffer hold file bytes [at, at + n), which the caller knows exist, and returns the
   * buffer index of `at`. Reads ahead as far as the buffer and the file allow.
   */
  #ensure(at: number, n: number): number {
    const rel = at - this.#bufAt;
    if (rel >= 0 && rel + n <= this.#bufFill) return rel;
    // Keep the bytes from `at` on, then fill the rest of the buffer.
    if (rel >= 0 && rel < this.#bufFill) this.#buf.copyWithin(0, rel, this.#bufFill);
    this.#bufFill = rel >= 0 && rel < this.#bufFill ? this.#bufFill - rel : 0;
    this.#bufAt = at;
    if (n > this.#buf.length) {
      const bigger = Buffer.allocUnsafe(Math.ceil(n / READ_CHUNK_BYTES) * READ_CHUNK_BYTES);
      this.#buf.copy(bigger, 0, 0, this.#bufFill);
      this.#buf = bigger;
    }
    while (this.#bufFill < n) {
      const position = this.#bufAt + this.#bufFill;
      const want = Math.min(this.#buf.length - this.#bufFill, this.fileBytes - position);
      let got: number;
      try {
        got = want > 0 ? readSync(this.#fd, this.#buf, this.#bufFill, want, position) : 0;
      } catch (error) {
        throw ioError(this.#path, `read ${want} bytes at offset ${position} of`, error);
      }
      if (got === 0) {
        throw new MuxvisorError(
          ErrorCode.Storage,
          `run log ${this.#path} shrank while being read: no bytes at offset ${position} of ${this.fileBytes}`,
          { data: { path: this.#path, offset: position, fileBytes: this.fileBytes } },
        );
      }
      this.#bufFill += got;
    }
    return 0;
  }
}

function openForReading(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (error) {
    throw ioError(path, 'open', error);
  }
}

function ioError(path: string, what: string, error: unknown): MuxvisorError {
  const code = (error as NodeJS.ErrnoException | null)?.code ?? 'unknown error';
  return new MuxvisorError(ErrorCode.Storage, `cannot ${what} run log ${path}: ${code}`, {
    cause: error,
    data: { path, errno: code },
  });
}

function badOption(name: string, value: unknown): never {
  throw new MuxvisorError(
    ErrorCode.InvalidArgument,
    `Expected \`${name}\` to be a non-negative integer, got \`${String(value)}\` (${typeof value})`,
  );
}
