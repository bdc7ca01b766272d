/**
 * A service's captured output: stdout and stderr each appended to a file in the home with
 * size-based rotation (`out.log` → `out.log.1` → ... up to `keep`), a separator line at each
 * start (files are never truncated), and the last lines of both streams kept in memory, in order,
 * for `services.logs`, failure reasons and the log-line readiness probe.
 *
 * Contracts: bytes reach the file exactly as the service wrote them; only the in-memory lines are
 * split and cut (at 4096 characters). A service that writes faster than the disk takes is paused
 * (its pipe fills and its writes block) rather than buffered without bound. A write error (a full
 * disk) drops output, counts it, and never stops the service.
 */
import { closeSync, fstatSync, openSync, renameSync, rmSync, write } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { OutputStream } from './probes.js';

const MAX_LINE = 4096;
const HIGH_WATER = 1024 * 1024;

export interface OutputLine {
  time: number;
  stream: OutputStream;
  line: string;
  /** The start (generation) of the service that wrote it. */
  generation: number;
}

/** An append-only file that rotates by size; writes are queued and done one at a time. */
export class RotatingFile {
  readonly path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  #fd: number | null = null;
  #size = 0;
  #queue: Buffer[] = [];
  #queued = 0;
  #writing = false;
  #idle: Array<() => void> = [];
  #endsWithNewline = true;
  #closed = false;
  /** Bytes lost to write errors. */
  dropped = 0;
  lastError: string | null = null;
  onDrain: (() => void) | null = null;

  constructor(path: string, maxBytes: number, keep: number) {
    this.path = path;
    this.#maxBytes = maxBytes;
    this.#keep = keep;
  }

  get queuedBytes(): number {
    return this.#queued;
  }

  write(chunk: Buffer): void {
    if (chunk.length === 0 || this.#closed) return;
    this.#endsWithNewline = chunk[chunk.length - 1] === 10;
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (!this.#writing) this.#pump();
  }

  /** Writes a whole line, starting a new one first if the last output ended mid-line. */
  writeLine(text: string): void {
    this.write(Buffer.from(`${this.#endsWithNewline ? '' : '\n'}${text}\n`));
  }

  /** Resolves when everything queued so far is written (or dropped). */
  flush(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Writes what is queued, then closes; later writes are dropped. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  #pump(): void {
    this.#writing = true;
    const batch = this.#queue.length === 1 ? (this.#queue[0] as Buffer) : Buffer.concat(this.#queue);
    this.#queue = [];
    let fd: number;
    try {
      fd = this.#open();
    } catch (error) {
      this.#fail(batch.length, error);
      return this.#next(batch.length);
    }
    const writeFrom = (at: number) => {
      write(fd, batch, at, batch.length - at, null, (error, n) => {
        if (error) {
          this.#fail(batch.length - at, error);
          return this.#next(batch.length);
        }
        this.#size += n;
        if (at + n < batch.length) return writeFrom(at + n);
        this.#next(batch.length);
      });
    };
    writeFrom(0);
  }

  #next(done: number): void {
    this.#queued -= done;
    if (this.#size >= this.#maxBytes) this.#rotate();
    if (this.#queue.length > 0) return this.#pump();
    this.#writing = false;
    for (const resolve of this.#idle.splice(0)) resolve();
    this.onDrain?.();
  }

  #open(): number {
    if (this.#fd === null) {
      this.#fd = openSync(this.path, 'a', 0o600);
      this.#size = fstatSync(this.#fd).size;
    }
    return this.#fd;
  }

  #rotate(): void {
    try {
      if (this.#fd !== null) closeSync(this.#fd);
      this.#fd = null;
      rmSync(`${this.path}.${this.#keep}`, { force: true });
      for (let i = this.#keep - 1; i >= 1; i--) {
        try {
          renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
        } catch {
          // that generation does not exist yet
        }
      }
      renameSync(this.path, `${this.path}.1`);
      this.#size = 0;
    } catch (error) {
      this.lastError = `rotating ${this.path}: ${(error as Error).message}`;
    }
  }

  #fail(bytes: number, error: unknown): void {
    this.dropped += bytes;
    this.lastError = `writing ${this.path}: ${(error as Error).message}`;
    if (this.#fd !== null) {
      try {
        closeSync(this.#fd);
      } catch {
        // already unusable
      }
      this.#fd = null;
    }
  }
}

/** Both streams of one service: files, and the last `maxLines` lines in memory. */
export class OutputCapture {
  readonly files: Record<OutputStream, RotatingFile>;
  readonly #lines: OutputLine[] = [];
  readonly #maxLines: number;
  readonly #listeners = new Set<(stream: OutputStream, line: string, generation: number) => void>();
  #generation = 0;

  constructor(dir: string, rotation: { maxBytes: number; keep: number }, maxLines = 500) {
    this.files = {
      stdout: new RotatingFile(join(dir, 'stdout.log'), rotation.maxBytes, rotation.keep),
      stderr: new RotatingFile(join(dir, 'stderr.log'), rotation.maxBytes, rotation.keep),
    };
    this.#maxLines = maxLines;
  }

  get paths(): { stdout: string; stderr: string } {
    return { stdout: this.files.stdout.path, stderr: this.files.stderr.path };
  }

  get droppedBytes(): number {
    return this.files.stdout.dropped + this.files.stderr.dropped;
  }

  /** Marks a new start in both files and takes the child's pipes. */
  attach(generation: number, separator: string, streams: Record<OutputStream, Readable | null>): void {
    this.#generation = generation;
    for (const name of ['stdout', 'stderr'] as const) {
      const file = this.files[name];
      file.writeLine(separator);
      const source = streams[name];
      if (source === null) continue;
      const decoder = new StringDecoder('utf8');
      let partial = '';
      const onLine = (line: string) => this.#line(name, line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line, generation);
      source.on('data', (chunk: Buffer) => {
        file.write(chunk);
        if (file.queuedBytes > HIGH_WATER && !source.isPaused()) {
          source.pause();
          file.onDrain = () => {
            file.onDrain = null;
            source.resume();
          };
        }
        const text = partial + decoder.write(chunk);
        let start = 0;
        for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
          onLine(text.slice(start, nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl));
          start = nl + 1;
        }
        partial = text.slice(start);
        if (partial.length > MAX_LINE) {
          onLine(partial);
          partial = '';
        }
      });
      source.once('end', () => {
        const rest = partial + decoder.end();
        if (rest.length > 0) onLine(rest);
      });
    }
  }

  /** Writes a line of our own (e.g. "stopped by request") into both files. */
  note(text: string): void {
    this.files.stdout.writeLine(text);
    this.files.stderr.writeLine(text);
  }

  /** The last `n` lines, oldest first. */
  last(n: number): OutputLine[] {
    return n <= 0 ? [] : this.#lines.slice(-Math.min(n, this.#maxLines));
  }

  linesSinceStart(): Array<{ stream: OutputStream; line: string }> {
    return this.#lines.filter((l) => l.generation === this.#generation);
  }

  /** The last `n` lines written by start `generation`. */
  lastOf(generation: number, n: number): OutputLine[] {
    const out: OutputLine[] = [];
    for (let i = this.#lines.length - 1; i >= 0 && out.length < n; i--) {
      const l = this.#lines[i] as OutputLine;
      if (l.generation === generation) out.push(l);
      else if (l.generation < generation) break;
    }
    return out.reverse();
  }

  /** Calls `listener` for every new line, with the start (generation) that wrote it. */
  onLine(listener: (stream: OutputStream, line: string, generation: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    await Promise.all([this.files.stdout.close(), this.files.stderr.close()]);
  }

  #line(stream: OutputStream, line: string, generation: number): void {
    this.#lines.push({ time: Date.now(), stream, line, generation });
    // Trimmed in batches, so a chatty service costs O(1) per line.
    if (this.#lines.length >= 2 * this.#maxLines) this.#lines.splice(0, this.#lines.length - this.#maxLines);
    for (const listener of this.#listeners) listener(stream, line, generation);
  }
}
