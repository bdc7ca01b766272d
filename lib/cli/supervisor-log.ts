/**
 * The supervisor's own log (`<home>/logs/supervisor.log`, pino JSON lines), read straight from
 * the file so that it can be read when the supervisor is dead, which is when it matters most.
 * Lines are made human-readable by pino-pretty; with `--json` they pass through as they are.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

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

/** The last `n` lines of the file (all when `n` is Infinity), and the offset where it ended. */
export function lastLines(path: string, n: number): { lines: LogLine[]; end: number } {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return { lines: [], end: 0 };
  }
  // Read backwards in chunks until there are enough newlines.
  const fd = openSync(path, 'r');
  try {
    let start = size;
    let text = '';
    const chunk = 64 * 1024;
    while (start > 0 && (n === Infinity || text.split('\n').length <= n + 1)) {
      const from = Math.max(0, start - chunk);
      const buf = Buffer.alloc(start - from);
      readSync(fd, buf, 0, buf.length, from);
      text = buf.toString('utf8') + text;
      start = from;
    }
    const all = text.split('\n').filter((l) => l.length > 0);
    return { lines: (n === Infinity ? all : all.slice(-n)).map(parseLine), end: size };
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
  let partial = '';
  while (!signal.aborted) {
    let size = 0;
    try {
      size = statSync(path).size;
    } catch {
      size = 0;
    }
    if (size < at) {
      at = 0;
      partial = '';
    }
    if (size > at) {
      const fd = openSync(path, 'r');
      try {
        const buf = Buffer.alloc(size - at);
        const got = readSync(fd, buf, 0, buf.length, at);
        at += got;
        const text = partial + buf.subarray(0, got).toString('utf8');
        const parts = text.split('\n');
        partial = parts.pop() ?? '';
        for (const p of parts) if (p.length > 0) onLine(parseLine(p));
      } finally {
        closeSync(fd);
      }
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, intervalMs);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
