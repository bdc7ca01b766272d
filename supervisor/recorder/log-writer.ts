/**
 * RunLogWriter: appends entries to one run log (layout in log-format.ts).
 *
 * Fsync policy, exactly:
 * - `appendRecord`, `appendRecordFrom` and `appendEntry` copy the entry into an in-memory buffer.
 *   Nothing reaches the OS, and the buffer grows (doubling) until the caller flushes.
 * - `flush()` writes the buffer to the file with as few write calls as it can. The bytes are then
 *   in the OS page cache: they survive the process being killed, not a power loss or kernel crash.
 * - `sync()` (flush, then fsync the file) and `close()` (flush, fsync, close) make them durable.
 *   `create` fsyncs the new file and its directory, and `reopen` fsyncs after cutting off a torn
 *   tail, before they return.
 * - Nothing else fsyncs: no timer here and no fsync per append. The caller decides when: on a
 *   client's sync request, on finish, and on a timer.
 *
 * Ownership: one writer per file and one thread (a run worker); it is not thread-safe and takes no
 * lock, so the caller must make sure no second writer opens the same log. The writer owns its file
 * descriptor until `close()` settles.
 *
 * Errors: a failed write (ENOSPC, EIO, ...) throws MUXVISOR_STORAGE, keeps every byte it could
 * not write buffered, and sets `failed`; a later `flush()` retries from where the file ends, and
 * clears `failed` when it writes everything. A failed fsync is final: the kernel may have dropped
 * the dirty pages it could not write, so a retried fsync could succeed without the data being
 * durable. Every later flush, sync and close rejects with that error (close still closes the file).
 */
import { closeSync, fsync, fsyncSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ErrorCode, MuxvisorError } from '../../protocol/errors.js';
import { copyBytes } from '../../protocol/frame.js';
import {
  encodeFileHeader, ENTRY_HEADER_BYTES, EntryType, isEntryType, MAX_ENTRY_PAYLOAD_BYTES, sealEntry, writeEntryHeader,
} from './log-format.js';
import { type TornInfo, scanRunLogFd } from './log-reader.js';

export interface RunLogWriterOptions {
  /**
   * Initial size of the append buffer, in bytes. It doubles whenever an entry does not fit, and a
   * buffer that grew past four times this size is dropped back to it at the next flush.
   * @default 1048576 (1 MiB)
   * @example RunLogWriter.create(path, open, { bufferBytes: 64 * 1024 })
   */
  bufferBytes?: number;
}

/** What `reopen` found and did. */
export interface Recovery {
  /** Valid entries kept, of every type. */
  entries: number;
  /** Valid RECORD entries kept. */
  records: number;
  /** The file's size after the torn tail was cut off: where appends continue. */
  validBytes: number;
  /** Bytes cut off the end (0 when the log ended cleanly). */
  truncatedBytes: number;
  /** Where and why the old tail was torn, or null. */
  torn: TornInfo | null;
  /** True when the log holds a FINISH entry. */
  finished: boolean;
  /** The payload of the last FINISH entry (msgpack), or null. */
  finish: Uint8Array | null;
}

const DEFAULT_BUFFER_BYTES = 1024 * 1024;
const MAX_BUFFER_OPTION = 1024 * 1024 * 1024;

interface Waiters {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class RunLogWriter {
  readonly path: string;
  readonly #fd: number;
  readonly #initialBytes: number;
  /** Entries not yet written: `#buf[0, #fill)`. */
  #buf: Buffer;
  #fill = 0;
  /** Bytes in the file: the position of the next write. */
  #fileBytes: number;
  #syncedBytes: number;
  #records: number;
  #entries: number;
  #fsyncs = 0;
  #failed: MuxvisorError | null = null;
  /** Set by a failed fsync, never cleared. */
  #fsyncFailure: MuxvisorError | null = null;
  /** Set by `close()`: nothing more may be appended. */
  #closed = false;
  #closing: Promise<void> | null = null;
  #destroyed = false;
  /** Set once the descriptor is closed. */
  #released = false;
  /** The fsync in flight (at most one) and the file size it makes durable. */
  #inflight: Promise<void> | null = null;
  #inflightTarget = 0;
  /** Callers whose bytes were written after the fsync in flight started: they share the next one. */
  #next: Waiters | null = null;

  private constructor(path: string, fd: number, fileBytes: number, records: number, entries: number, bufferBytes: number) {
    this.path = path;
    this.#fd = fd;
    this.#initialBytes = bufferBytes;
    this.#buf = Buffer.allocUnsafe(bufferBytes);
    this.#fileBytes = fileBytes;
    this.#syncedBytes = 0;
    this.#records = records;
    this.#entries = entries;
  }

  /**
   * Creates a new log at `path` (mode 0600) holding the file header and an OPEN entry with
   * `openPayload`, durable (file and directory fsynced) before it returns. Never overwrites: an
   * existing path fails with MUXVISOR_RUN_EXISTS and is left untouched. On any other failure the
   * new file is removed again and MUXVISOR_STORAGE is thrown.
   */
  static create(path: string, openPayload: Uint8Array, options: RunLogWriterOptions = {}): RunLogWriter {
    const bufferBytes = checkOptions(options);
    checkLength(openPayload.length);
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new MuxvisorError(ErrorCode.RunExists, `run log ${path} already exists; create never overwrites a log`, {
          cause: error,
          data: { path },
        });
      }
      throw ioError(path, 'create', error);
    }
    try {
      const writer = new RunLogWriter(path, fd, 0, 0, 0, bufferBytes);
      const header = encodeFileHeader();
      writer.#buf.set(header, 0);
      writer.#fill = header.length;
      writer.appendEntry(EntryType.Open, openPayload);
      writer.#write();
      writer.#fsyncNow();
      fsyncDirectory(dirname(path));
      return writer;
    } catch (error) {
      closeQuietly(fd);
      try {
        unlinkSync(path);
      } catch {
        // Nothing more to do: the create failed either way, and the error below says why.
      }
      // A failed first write says its bytes "stay buffered": not so here, the file is gone.
      throw ioError(path, 'create', (error as { cause?: unknown }).cause ?? error);
    }
  }

  /**
   * Opens an existing log for appending: scans it, cuts off anything after the last valid entry
   * (a torn or corrupt tail), fsyncs, and appends after it. A bad file header, or an entry of an
   * unknown type, fails with MUXVISOR_STORAGE and changes nothing. Writing a RECOVERED note is the
   * caller's choice (`appendEntry(EntryType.Recovered, note)`).
   */
  static reopen(path: string, options: RunLogWriterOptions = {}): { writer: RunLogWriter; recovery: Recovery } {
    const bufferBytes = checkOptions(options);
    let fd: number;
    try {
      fd = openSync(path, 'r+');
    } catch (error) {
      throw ioError(path, 'open', error);
    }
    try {
      const scan = scanRunLogFd(fd, path);
      if (scan.fileBytes !== scan.validBytes) ftruncateSync(fd, scan.validBytes);
      const writer = new RunLogWriter(path, fd, scan.validBytes, scan.records, scan.entries, bufferBytes);
      writer.#fsyncNow();
      const recovery: Recovery = {
        entries: scan.entries,
        records: scan.records,
        validBytes: scan.validBytes,
        truncatedBytes: scan.fileBytes - scan.validBytes,
        torn: scan.torn,
        finished: scan.finished,
        finish: scan.finish,
      };
      return { writer, recovery };
    } catch (error) {
      closeQuietly(fd);
      throw error instanceof MuxvisorError ? error : ioError(path, 'reopen', error);
    }
  }

  /** RECORD entries in the log, buffered ones included. */
  get records(): number {
    return this.#records;
  }

  /** Entries of every type in the log, buffered ones included. */
  get entries(): number {
    return this.#entries;
  }

  /** The log's size with everything buffered written: the file's bytes plus `bufferedBytes`. */
  get bytes(): number {
    return this.#fileBytes + this.#fill;
  }

  /** Bytes appended but not yet written to the file. */
  get bufferedBytes(): number {
    return this.#fill;
  }

  /** Bytes known durable: the file size covered by the last fsync that completed. */
  get syncedBytes(): number {
    return this.#syncedBytes;
  }

  /** Fsyncs of the file completed so far (create and reopen do one each). For diagnostics. */
  get fsyncs(): number {
    return this.#fsyncs;
  }

  /** The last write or fsync error, or null. A write error is cleared by a flush that succeeds. */
  get failed(): MuxvisorError | null {
    return this.#failed;
  }

  /** True once an fsync failed: the writer is done for (see the header), whatever else happens. */
  get fsyncFailed(): boolean {
    return this.#fsyncFailure !== null;
  }

  /** True once `close()` or `destroy()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Buffers one RECORD entry holding a copy of `payload` (at most 64 MiB). */
  appendRecord(payload: Uint8Array): void {
    const length = payload.length;
    const at = this.#reserve(length);
    this.#buf.set(payload, at + ENTRY_HEADER_BYTES);
    this.#seal(at, EntryType.Record, length);
    this.#records++;
  }

  /**
   * Buffers one RECORD entry holding a copy of `source[start, end)`, for records that sit inside a
   * larger batch, without the caller making a subarray. (Measured on Node 20: the same cost as
   * `appendRecord(source.subarray(start, end))`, about 80 ns more than appending a whole buffer,
   * because Buffer#copy makes the view internally.)
   */
  appendRecordFrom(source: Buffer, start: number, end: number): void {
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= source.length)) {
      throw new MuxvisorError(
        ErrorCode.InvalidArgument,
        `record range [${start}, ${end}) is not within the source's ${source.length} bytes`,
        { data: { start, end, sourceBytes: source.length } },
      );
    }
    const length = end - start;
    const at = this.#reserve(length);
    copyBytes(source, start, end, this.#buf, at + ENTRY_HEADER_BYTES);
    this.#seal(at, EntryType.Record, length);
    this.#records++;
  }

  /** Buffers one entry of any known type (OPEN, FINISH, RECOVERED; RECORD also works). */
  appendEntry(type: number, payload: Uint8Array): void {
    if (!isEntryType(type)) {
      throw new MuxvisorError(ErrorCode.InvalidArgument, `entry type ${type} is not one of 1..4`, { data: { type } });
    }
    const length = payload.length;
    const at = this.#reserve(length);
    this.#buf.set(payload, at + ENTRY_HEADER_BYTES);
    this.#seal(at, type, length);
    if (type === EntryType.Record) this.#records++;
  }

  /** Writes everything buffered to the file (see the policy above). Throws MUXVISOR_STORAGE. */
  flush(): void {
    if (this.#closed) throw this.#closedError();
    this.#write();
  }

  /**
   * Flushes, then resolves once everything appended before this call is durable: when an fsync
   * that started after those bytes were written has completed. Group commit: at most one fsync
   * runs at a time; calls made while it runs share the next one; a call whose bytes are already
   * covered shares the one in flight, or resolves at once when they are already durable.
   */
  sync(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    try {
      this.#write();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#durable();
  }

  /**
   * Flushes, fsyncs and closes the file; idempotent (every call gets the same promise). If the
   * last write or fsync fails, the file is closed anyway and the promise rejects with that error:
   * bytes that were never written are then lost, and the file holds a valid prefix.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /**
   * Stops now: drops every buffered byte, rejects syncs still waiting for an fsync with `error`
   * (default: MUXVISOR_STORAGE saying how many bytes were dropped), and closes the file as soon as
   * an fsync in flight, if any, has returned. What was flushed stays in the file. Idempotent.
   */
  destroy(error?: unknown): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#closed = true;
    const dropped = this.#fill;
    this.#fill = 0;
    const next = this.#next;
    this.#next = null;
    next?.reject(error ?? new MuxvisorError(ErrorCode.Storage, `run log ${this.path} was destroyed with ${dropped} bytes unwritten`, {
      data: { path: this.path, dropped },
    }));
    this.#closing ??= Promise.resolve();
    void this.#release();
  }

  async #close(): Promise<void> {
    this.#closed = true;
    try {
      this.#write();
      await this.#durable();
    } finally {
      await this.#release();
    }
  }

  /**
   * Closes the descriptor exactly once, never under an fsync that is still running. An error from
   * close itself is not reported: after an fsync it cannot cost data, and the descriptor is gone.
   */
  async #release(): Promise<void> {
    while (this.#inflight !== null) await this.#inflight.catch(() => undefined);
    if (this.#released) return;
    this.#released = true;
    closeQuietly(this.#fd);
  }

  /** Checks that an entry with `length` payload bytes may be appended, makes room, returns its offset. */
  #reserve(length: number): number {
    if (this.#closed) throw this.#closedError();
    if (length > MAX_ENTRY_PAYLOAD_BYTES) checkLength(length);
    const end = this.#fill + ENTRY_HEADER_BYTES + length;
    if (end > this.#buf.length) this.#grow(end);
    return this.#fill;
  }

  /** Writes the header and CRC of the entry whose payload is in place at `at`, and counts it. */
  #seal(at: number, type: number, length: number): void {
    writeEntryHeader(this.#buf, at, type, length);
    sealEntry(this.#buf, at, length);
    this.#fill = at + ENTRY_HEADER_BYTES + length;
    this.#entries++;
  }

  #grow(needed: number): void {
    let size = this.#buf.length * 2;
    while (size < needed) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.#buf.copy(bigger, 0, 0, this.#fill);
    this.#buf = bigger;
  }

  /** Writes `#buf[0, #fill)` at the end of the file; on failure keeps the unwritten rest buffered. */
  #write(): void {
    if (this.#fsyncFailure !== null) throw this.#fsyncFailure;
    const fill = this.#fill;
    if (fill === 0) return;
    let done = 0;
    try {
      while (done < fill) {
        const n = writeSync(this.#fd, this.#buf, done, fill - done, this.#fileBytes);
        if (n <= 0) throw Object.assign(new Error(`write returned ${n}`), { code: 'EIO' });
        done += n;
        this.#fileBytes += n;
      }
    } catch (error) {
      const pending = fill - done;
      this.#buf.copyWithin(0, done, fill);
      this.#fill = pending;
      const code = errnoCode(error);
      this.#failed = new MuxvisorError(
        ErrorCode.Storage,
        `cannot write ${pending} bytes to run log ${this.path} at offset ${this.#fileBytes}: ${code}` +
          `${done > 0 ? ` (${done} of the ${fill} bytes flushed were written)` : ''}; the ${pending} bytes stay buffered`,
        { cause: error, data: { path: this.path, errno: code, offset: this.#fileBytes, pending, written: done } },
      );
      throw this.#failed;
    }
    this.#fill = 0;
    this.#failed = null;
    if (this.#buf.length > 4 * this.#initialBytes) this.#buf = Buffer.allocUnsafe(this.#initialBytes);
  }

  /** Resolves when an fsync that started after every byte now in the file was written has completed. */
  #durable(): Promise<void> {
    if (this.#fsyncFailure !== null) return Promise.reject(this.#fsyncFailure);
    if (this.#syncedBytes >= this.#fileBytes) return Promise.resolve();
    if (this.#inflight === null) return this.#startFsync();
    if (this.#inflightTarget >= this.#fileBytes) return this.#inflight;
    if (this.#next === null) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#next = { promise, resolve, reject };
    }
    return this.#next.promise;
  }

  #startFsync(): Promise<void> {
    const target = this.#fileBytes;
    this.#inflightTarget = target;
    const started = process.hrtime.bigint();
    const promise = new Promise<void>((resolve, reject) => {
      fsync(this.#fd, (error) => {
        this.#inflight = null;
        const next = this.#next;
        this.#next = null;
        if (error !== null) {
          this.#fsyncFailure = this.#fsyncError(error, target, started);
          this.#failed = this.#fsyncFailure;
          reject(this.#fsyncFailure);
          next?.reject(this.#fsyncFailure);
          return;
        }
        this.#fsyncs++;
        if (target > this.#syncedBytes) this.#syncedBytes = target;
        resolve();
        // The waiters' bytes were all written before they queued, so this fsync covers them.
        if (next !== null) this.#startFsync().then(next.resolve, next.reject);
      });
    });
    this.#inflight = promise;
    return promise;
  }

  #fsyncNow(): void {
    try {
      fsyncSync(this.#fd);
    } catch (error) {
      throw this.#fsyncError(error, this.#fileBytes, process.hrtime.bigint());
    }
    this.#fsyncs++;
    this.#syncedBytes = this.#fileBytes;
  }

  #fsyncError(error: unknown, target: number, started: bigint): MuxvisorError {
    const code = errnoCode(error);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    return new MuxvisorError(
      ErrorCode.Storage,
      `cannot fsync run log ${this.path} (${target - this.#syncedBytes} bytes not yet durable, after ${ms.toFixed(1)} ms): ${code}`,
      { cause: error, data: { path: this.path, errno: code, syncedBytes: this.#syncedBytes, target } },
    );
  }

  #closedError(): MuxvisorError {
    return new MuxvisorError(ErrorCode.Storage, `run log ${this.path} is closed`, { data: { path: this.path } });
  }
}

function checkOptions(options: RunLogWriterOptions): number {
  const bytes = options.bufferBytes ?? DEFAULT_BUFFER_BYTES;
  if (!Number.isSafeInteger(bytes) || bytes < 64 || bytes > MAX_BUFFER_OPTION) {
    throw new MuxvisorError(
      ErrorCode.InvalidArgument,
      `Expected \`bufferBytes\` to be an integer in 64..${MAX_BUFFER_OPTION}, got \`${String(bytes)}\` (${typeof bytes})`,
    );
  }
  return bytes;
}

function checkLength(length: number): void {
  if (length > MAX_ENTRY_PAYLOAD_BYTES) {
    throw new MuxvisorError(
      ErrorCode.InvalidArgument,
      `entry payload of ${length} bytes exceeds the limit of ${MAX_ENTRY_PAYLOAD_BYTES} bytes`,
      { data: { length, limit: MAX_ENTRY_PAYLOAD_BYTES } },
    );
  }
}

/** Makes a new directory entry durable: fsync of the directory that holds it. */
function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // The descriptor is released even when close reports an error; there is nothing to retry.
  }
}

function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | null)?.code ?? 'unknown error';
}

function ioError(path: string, what: string, error: unknown): MuxvisorError {
  const code = errnoCode(error);
  const hint = code === 'EMFILE' || code === 'ENFILE' ? ' (too many open files: finish runs or close clients, or raise the supervisor\'s `ulimit -n`)' : '';
  return new MuxvisorError(ErrorCode.Storage, `cannot ${what} run log ${path}: ${code}${hint}`, {
    cause: error,
    data: { path, errno: code },
  });
}
