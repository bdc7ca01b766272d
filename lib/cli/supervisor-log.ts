/**
 * The supervisor's own log (`<home>/logs/supervisor.log`, pino JSON lines), read straight from
 * the file so that it can be read when the supervisor is dead, which is when it matters most.
 * Lines are made human-readable by pino-pretty; with `--json` they pass through as they are.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { pause } from './context.js';

export interface LogLine {
  /** The line as written (a JSON object, or text a crash left there). */
  raw: string;
  /** Parsed, when it is JSON. */
  entry: Record<string, unknown> | null;
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** The numeric pino level for a name (`warn` → 40); throws for an unknown name. */
export function levelNumber(name: string): number {
  const n = LEVELS[name.toLowerCase()];
  if (n === undefined) throw new Error(`unknown level \`${name}\` (known: ${Object.keys(LEVELS).join(', ')})`);
  return n;
}

export function parseLine(raw: string): LogLine {
  try {
    const entry = JSON.parse(raw) as unknown;
    return { raw, entry: typeof entry === 'object' && entry !== null ? entry as Record<string, unknown> : null };
  } catch {
    return { raw, entry: null };
  }
}

/** A formatter: `12:00:01.123 INFO (pid 42): run opened run=exp-1 conn=3`. */
export async function prettyPrinter(color: boolean): Promise<(line: LogLine) => string> {
  // Loaded here, not at start-up: only the commands that print the log pay for it.
  const { default: pinoPretty } = await import('pino-pretty');
  const pretty = pinoPretty.prettyFactory({ colorize: color, translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l', ignore: 'hostname', singleLine: true });
  return (line) => (line.entry === null ? line.raw : pretty(line.entry).replace(/\n$/, ''));
}

export interface LastLinesOptions {
  /** Only lines this accepts count and are returned. @default every line */
  keep?: (line: LogLine) => boolean;
  /**
   * Return a last line that has no newline yet (being written, or cut off by a crash) too. A
   * caller that follows the file leaves it out: it gets the line whole from `end` on.
   * @default false
   */
  partial?: boolean;
}

const CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * The last `n` lines of the file that `keep` accepts (all when `n` is Infinity), oldest first;
 * `end`, the offset just past its last newline (where following goes on); and its `size`. The
 * file is read backwards in chunks and each line is decoded whole, so memory holds the lines
 * asked for (not the file), and a character whose bytes straddle two chunks stays whole.
 */
export function lastLines(path: string, n: number, options: LastLinesOptions = {}): { lines: LogLine[]; end: number; size: number } {
  const keep = options.keep ?? (() => true);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { lines: [], end: 0, size: 0 };
  }
  try {
    const size = fstatSync(fd).size;
    const found: LogLine[] = []; // newest first
    let end = size;
    let atEnd = true; // the next line taken is the file's last one, which may have no newline
    const take = (bytes: Buffer) => {
      if (atEnd) {
        atEnd = false;
        end = size - bytes.length;
        if (bytes.length > 0 && !options.partial) return;
      }
      if (bytes.length === 0 || found.length >= n) return;
      const line = parseLine(bytes.toString('utf8'));
      if (keep(line)) found.push(line);
    };
    const done = () => !atEnd && found.length >= n;
    // `carry`: the bytes of a line whose start lies before the chunks read so far.
    let carry = Buffer.alloc(0);
    let pos = size;
    while (pos > 0 && !done()) {
      const from = Math.max(0, pos - CHUNK_BYTES);
      const chunk = Buffer.alloc(pos - from);
      const got = readSync(fd, chunk, 0, chunk.length, from);
      pos = from;
      const buf = carry.length > 0 ? Buffer.concat([chunk.subarray(0, got), carry]) : chunk.subarray(0, got);
      let stop = buf.length;
      for (let nl = buf.lastIndexOf(NEWLINE, stop - 1); nl >= 0 && !done(); nl = stop > 0 ? buf.lastIndexOf(NEWLINE, stop - 1) : -1) {
        take(buf.subarray(nl + 1, stop));
        stop = nl;
      }
      carry = Buffer.from(buf.subarray(0, stop));
    }
    if (pos === 0 && !done()) take(carry); // the file's first line
    return { lines: found.reverse(), end, size };
  } finally {
    closeSync(fd);
  }
}

/**
 * Calls `onLine` for every whole line appended to `path` from `offset` on, polling every
 * `intervalMs`, until `signal` aborts. A file that shrinks (replaced) is read again from its start.
 */
export async function followLines(path: string, offset: number, onLine: (line: LogLine) => void, signal: AbortSignal, intervalMs = 200): Promise<void> {
  let at = offset;
  // Bytes of a line not yet whole: kept as bytes, so a character cut by a read stays whole.
  let partial = Buffer.alloc(0);
  while (!signal.aborted) {
    let size = 0;
    try {
      size = statSync(path).size;
    } catch {
      size = 0;
    }
    if (size < at) {
      at = 0;
      partial = Buffer.alloc(0);
    }
    if (size > at) {
      const fd = openSync(path, 'r');
      try {
        const buf = Buffer.alloc(size - at);
        const got = readSync(fd, buf, 0, buf.length, at);
        at += got;
        const bytes = partial.length > 0 ? Buffer.concat([partial, buf.subarray(0, got)]) : buf.subarray(0, got);
        let start = 0;
        for (let nl = bytes.indexOf(NEWLINE); nl >= 0; nl = bytes.indexOf(NEWLINE, start)) {
          if (nl > start) onLine(parseLine(bytes.subarray(start, nl).toString('utf8')));
          start = nl + 1;
        }
        partial = Buffer.from(bytes.subarray(start));
      } finally {
        closeSync(fd);
      }
    }
    await pause(intervalMs, signal);
  }
}
