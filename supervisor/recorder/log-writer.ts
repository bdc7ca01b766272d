/**
 * RunLogWriter: appends entries to one run log (layout in log-format.ts).
 *
 * Fsync policy, exactly:
 * - `appendRecord`, `appendRecordFrom` and `appendEntry` copy the entry into an in-memory buffer.
 *   Nothing reaches the OS, and the buffer grows (doubling) until the caller flushes.
 * - `flush()` writes the buffer to the file with as few write calls as it can. The bytes are then
 *   in the OS page cache: they survive the process being killed, not a power loss or kernel crash.
 *   From POOL_WRITE_BYTES buffered on, it writes through libuv's thread pool instead (a 16 MiB
 *   write took this VM 35-55 ms, all of it lost to every other run on the thread): `writing` is
 *   then the promise of the bytes being in the OS. One such write runs at a time, at the end of
 *   the file; what is appended meanwhile waits, and a flush asked for meanwhile happens after it.
 * - `sync()` (flush, then fsync the file) and `close()` (flush, fsync, close) make them durable.
 *   They fsync through libuv's thread pool: the calling thread goes on working meanwhile.
 * - `create` blocks nothing: it buffers the file header and OPEN entry and makes the directory and
 *   the file through libuv's thread pool (`created` settles when they exist, with what was
 *   buffered written); appends and flushes before that stay buffered. The first `sync()` or
 *   `close()` then fsyncs the file and every directory that got a new entry, so the run's log is
 *   durable where recovery looks for it. (Creating a file, and fsyncing, on a busy ext4 took a
 *   thread 20-40 ms: a worker thread held every run on it that long, and the main thread, which
 *   made the directory, every client.) `reopen` fsyncs after cutting off a torn tail, before it
 *   returns.
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
import { close, closeSync, fsync, fsyncSync, ftruncateSync, link, open, openSync, unlink, unlinkSync, write, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { threadId } from 'node:worker_threads';
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
/** A flush of at least this many bytes goes through the thread pool (see the policy above). */
export const POOL_WRITE_BYTES = 1024 * 1024;
const MAX_BUFFER_OPTION = 1024 * 1024 * 1024;

interface Waiters {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class RunLogWriter {
  readonly path: string;
  /** The file descriptor; -1 while `create` is still making the file (or after it failed to). */
  #fd: number;
  /** `create`'s making of the directory and file. */
  #opening: Promise<void> | null = null;
  /** True until `#opening` settles: the file may not be linked in as `path` yet, so no fsync may count. */
  #creating = false;
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
  /** The write through the thread pool under way (it never rejects), and how many bytes it writes. */
  #inPool: Promise<void> | null = null;
  #inPoolBytes = 0;
  /** A flush was asked for while a pool write ran: it happens when that one ends. */
  #flushWanted = false;
  /** Why a write that ran in the pool (or one started after it) failed: the next `flush()` throws it. */
  #poolError: MuxvisorError | null = null;
  /** Directories that got a new entry from `create` (the file, the run's directory): the next fsync makes them durable. */
  #newIn: string[] = [];

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
   * Creates a new log at `path` (mode 0600; its directory, 0700, too if missing) holding the file
   * header and an OPEN entry with `openPayload`, without blocking the thread: see `created`. The
   * writer takes appends at once. Never overwrites: an existing path fails with
   * MUXVISOR_RUN_EXISTS and is left untouched. Throws MUXVISOR_INVALID_ARGUMENT at once for bad
   * options or an OPEN payload over the limit.
   */
  static create(path: string, openPayload: Uint8Array, options: RunLogWriterOptions = {}): RunLogWriter {
    const bufferBytes = checkOptions(options);
    checkLength(openPayload.length);
    const writer = new RunLogWriter(path, -1, 0, 0, 0, bufferBytes);
    const header = encodeFileHeader();
    writer.#buf.set(header, 0);
    writer.#fill = header.length;
    writer.appendEntry(EntryType.Open, openPayload);
    writer.#creating = true;
    const opening = writer.#createFile().finally(() => {
      writer.#creating = false;
    });
    writer.#opening = opening;
    // Whoever cares awaits `created` (or sync, close); nobody has to.
    opening.catch(() => undefined);
    return writer;
  }

  /**
   * Settles once `create` has made the file and written what was buffered into the OS (not yet
   * durable: that is the first `sync()`). Rejects with MUXVISOR_RUN_EXISTS (nothing was touched),
   * or MUXVISOR_STORAGE (a file it made is removed again); the writer is then closed. Resolves at
   * once for a writer from `reopen`.
   */
  get created(): Promise<void> {
    return this.#opening ?? Promise.resolve();
  }

  /**
   * Makes the file under a name of its own, writes what is buffered, then links it in as `path`
   * (which fails if `path` exists): a log is never seen without its header and OPEN entry, even
   * when the process dies, or its thread is stopped, half way. (Opening `path` itself left 0-byte
   * logs when a drain stopped a worker between the open and the write.) A crash between the link
   * and the removal of the other name leaves that name, `run.mvlog.new-*`, which recovery removes.
   */
  async #createFile(): Promise<void> {
    const dir = dirname(this.path);
    const fresh = `${this.path}${NEW_LOG_SUFFIX}${process.pid}-${threadId}-${nextFresh++}`;
    let fd: number;
    try {
      const made = await mkdir(dir, { recursive: true, mode: 0o700 });
      this.#newIn = withNewEntries(dir, made);
      fd = await openFile(fresh, 'wx', 0o600);
    } catch (error) {
      throw this.#createFailed(ioError(this.path, 'create', error));
    }
    this.#fd = fd;
    try {
      if (this.#destroyed) throw this.#closedError();
      this.#write();
      await linkFile(fresh, this.path);
    } catch (error) {
      closeQuietly(fd);
      this.#fd = -1;
      // What was made is not a log anyone was told of: it goes (a failed first write says its
      // bytes "stay buffered", not so here).
      await new Promise<void>((resolve) => unlink(fresh, () => resolve()));
      throw this.#createFailed((error as NodeJS.ErrnoException).code === 'EEXIST'
        ? new MuxvisorError(ErrorCode.RunExists, `run log ${this.path} already exists; create never overwrites a log`, { cause: error, data: { path: this.path } })
        : ioError(this.path, 'create', (error as { cause?: unknown }).cause ?? error));
    }
    await new Promise<void>((resolve) => unlink(fresh, () => resolve()));
  }

  #createFailed(error: MuxvisorError): MuxvisorError {
    this.#closed = true;
    this.#released = true;
    this.#fill = 0;
    this.#failed = error;
    return error;
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
    return this.#fileBytes + this.#inPoolBytes + this.#fill;
  }

  /** Bytes appended but not yet written to the file. */
  get bufferedBytes(): number {
    return this.#inPoolBytes + this.#fill;
  }

  /**
   * While `flush()` writes through the thread pool: resolves (never rejects) once what was flushed
   * is in the OS, or failed to be (the next `flush()` throws why). Null when no such write runs.
   */
  get writing(): Promise<void> | null {
    return this.#inPool === null ? null : this.#idle();
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
    if (this.#fd < 0) return; // `create` is making the file: it writes what is buffered then
    if (this.#inPool !== null) {
      this.#flushWanted = true;
      return;
    }
    const earlier = this.#poolError;
    this.#poolError = null;
    // A log whose writes fail is retried here: a full disk refuses at once, and the bytes stay in
    // one buffer rather than passing between buffers at every retry.
    if (this.#fill >= POOL_WRITE_BYTES && this.#fsyncFailure === null && this.#failed === null && earlier === null) {
      this.#writeInPool();
      return;
    }
    this.#write(); // a failure here is the one to report; success ends the earlier one
  }

  /** Writes everything buffered through the thread pool, at the end of the file. */
  #writeInPool(): void {
    const buf = this.#buf;
    const fill = this.#fill;
    const at = this.#fileBytes;
    this.#buf = Buffer.allocUnsafe(this.#initialBytes);
    this.#fill = 0;
    this.#inPoolBytes = fill;
    this.#inPool = writeFully(this.#fd, buf, fill, at).then(({ done, error }) => {
      this.#fileBytes += done;
      this.#inPoolBytes = 0;
      this.#inPool = null;
      if (error !== null) {
        if (!this.#destroyed) this.#putBack(buf.subarray(done, fill));
        this.#poolError = this.#writeFailure(error, fill, done);
        this.#flushWanted = false;
        return;
      }
      this.#failed = null;
      if (!this.#flushWanted || this.#closed) return;
      this.#flushWanted = false;
      try {
        this.flush();
      } catch (e) {
        this.#poolError = e as MuxvisorError;
      }
    });
  }

  /** Puts bytes a pool write could not write back in front of what was appended since. */
  #putBack(rest: Buffer): void {
    const merged = Buffer.allocUnsafe(Math.max(this.#initialBytes, rest.length + this.#fill));
    rest.copy(merged, 0);
    this.#buf.copy(merged, rest.length, 0, this.#fill);
    this.#buf = merged;
    this.#fill += rest.length;
  }

  /** Resolves once no pool write runs (one may start another as it ends). Never rejects. */
  async #idle(): Promise<void> {
    while (this.#inPool !== null) await this.#inPool;
  }

  /**
   * Flushes, then resolves once everything appended before this call is durable: when an fsync
   * that started after those bytes were written has completed. Group commit: at most one fsync
   * runs at a time; calls made while it runs share the next one; a call whose bytes are already
   * covered shares the one in flight, or resolves at once when they are already durable.
   */
  sync(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    // Asked before the file exists, or while a pool write runs: it holds once they are done, even
    // if close() comes meanwhile.
    if (this.#creating || this.#inPool !== null) {
      return (async () => {
        await this.#opening;
        await this.#idle();
        return this.#syncNow();
      })();
    }
    return this.#syncNow();
  }

  /** Writes the rest here (a failed pool write is tried again), then waits for an fsync covering it. */
  #syncNow(): Promise<void> {
    if (this.#destroyed) return Promise.reject(this.#closedError());
    this.#poolError = null;
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
      await this.#opening;
      await this.#idle();
      this.#poolError = null;
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
    await this.#opening?.catch(() => undefined);
    await this.#idle();
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
      this.#buf.copyWithin(0, done, fill);
      this.#fill = fill - done;
      throw this.#writeFailure(error, fill, done);
    }
    this.#fill = 0;
    this.#failed = null;
    if (this.#buf.length > 4 * this.#initialBytes) this.#buf = Buffer.allocUnsafe(this.#initialBytes);
  }

  /** Records (in `failed`) and returns the error of a write of `fill` bytes that stopped after `done`. */
  #writeFailure(error: unknown, fill: number, done: number): MuxvisorError {
    const pending = fill - done;
    const code = errnoCode(error);
    this.#failed = new MuxvisorError(
      ErrorCode.Storage,
      `cannot write ${pending} bytes to run log ${this.path} at offset ${this.#fileBytes}: ${code}` +
        `${done > 0 ? ` (${done} of the ${fill} bytes flushed were written)` : ''}; the ${pending} bytes stay buffered`,
      { cause: error, data: { path: this.path, errno: code, offset: this.#fileBytes, pending, written: done } },
    );
    return this.#failed;
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
      fsyncFileAndDirectory(this.#fd, this.#newIn, (error) => {
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
        this.#newIn = [];
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
      `cannot fsync run log ${this.path} (${target - this.#syncedBytes} bytes not yet durable, after ${ms.toFixed(1)} ms): ${code}${tooManyFiles(code)}`,
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

/**
 * fsyncs the file `fd` and then each of `dirs` in turn (directories that got a new entry: the
 * file, its directory), all through libuv's thread pool. Calls `done` once, with the first error.
 */
function fsyncFileAndDirectory(fd: number, dirs: readonly string[], done: (error: NodeJS.ErrnoException | null) => void): void {
  fsync(fd, (error) => {
    if (error !== null) return done(error);
    const next = (i: number): void => {
      const dir = dirs[i];
      if (dir === undefined) return done(null);
      open(dir, 'r', (openError, dirFd) => {
        if (openError !== null) return done(openError);
        fsync(dirFd, (syncError) => close(dirFd, (closeError) => (syncError ?? closeError) === null ? next(i + 1) : done(syncError ?? closeError)));
      });
    };
    next(0);
  });
}

/**
 * The directories that got a new entry when `dir` was made (mkdir's `made`: the topmost one it
 * created, or undefined) and a file was created in it: `dir` itself, and up to the parent of `made`.
 */
function withNewEntries(dir: string, made: string | undefined): string[] {
  const dirs = [dir];
  if (made === undefined) return dirs;
  for (let d = dir; d !== made && dirname(d) !== d; d = dirname(d)) dirs.push(dirname(d));
  dirs.push(dirname(made));
  return dirs;
}

/** Writes `buf[0, length)` at `position` through the thread pool, in as many writes as it takes. */
function writeFully(fd: number, buf: Buffer, length: number, position: number): Promise<{ done: number; error: unknown }> {
  return new Promise((resolve) => {
    const step = (done: number): void => {
      if (done >= length) return resolve({ done, error: null });
      write(fd, buf, done, length - done, position + done, (error, n) => {
        if (error !== null) return resolve({ done, error });
        if (n <= 0) return resolve({ done, error: Object.assign(new Error(`write returned ${n}`), { code: 'EIO' }) });
        step(done + n);
      });
    };
    step(0);
  });
}

const openFile = promisify(open) as (path: string, flags: string, mode: number) => Promise<number>;
const linkFile = promisify(link);

/** What `create` names a log until it is whole (`<log>.new-<pid>-<thread>-<n>`): recovery removes leftovers. */
export const NEW_LOG_SUFFIX = '.new-';
let nextFresh = 0;

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
  return new MuxvisorError(ErrorCode.Storage, `cannot ${what} run log ${path}: ${code}${tooManyFiles(code)}`, {
    cause: error,
    data: { path, errno: code },
  });
}

/** What to do about EMFILE and ENFILE (an fsync also opens the log's directory), or nothing. */
function tooManyFiles(code: string): string {
  return code === 'EMFILE' || code === 'ENFILE' ? ' (too many open files: finish runs or close clients, or raise the supervisor\'s `ulimit -n`)' : '';
}
