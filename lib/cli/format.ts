/**
 * How the CLI prints: colour only to a terminal and never under NO_COLOR (picocolors decides
 * nothing here; we decide once and hand it the answer), tables by cli-table3, numbers in units a
 * person reads at a glance.
 */
import Table from 'cli-table3';
import picocolors from 'picocolors';

export type Colors = ReturnType<typeof picocolors.createColors>;

/** Colour when stdout is a terminal, NO_COLOR is unset or empty, TERM is not `dumb`, and not `--no-color`. */
export function wantColor(stream: NodeJS.WriteStream, flag: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!flag) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== '') return true;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

export function colors(enabled: boolean): Colors {
  return picocolors.createColors(enabled);
}

/** A table with a header row; borders are plain ASCII-free lines so it pastes well. */
export function table(head: string[], rows: Array<Array<string | number>>, c: Colors): string {
  const t = new Table({
    head: head.map((h) => c.bold(h)),
    style: { head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': 2 },
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '',
    },
  });
  for (const row of rows) t.push(row.map(String));
  return t.toString().split('\n').map((l) => l.trimEnd()).join('\n');
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** 950ms, 12.3s, 4m 05s, 3h 02m, 2d 04h. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${String(h % 24).padStart(2, '0')}h`;
}

/** Time since `at` (ms since the epoch), or `-`. */
export function age(at: number | null | undefined, now = Date.now()): string {
  return at === null || at === undefined ? '-' : duration(now - at);
}

export function percent(p: number | null | undefined): string {
  return p === null || p === undefined || !Number.isFinite(p) ? '-' : `${p.toFixed(p < 10 ? 1 : 0)}%`;
}

export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : Math.round(n).toLocaleString('en-US');
}

/** Per-second rate: `1,234/s`. */
export function rate(n: number | null | undefined): string {
  return n === null || n === undefined ? '-' : `${count(n)}/s`;
}

export function clock(at: number | null | undefined): string {
  if (at === null || at === undefined) return '-';
  const d = new Date(at);
  const pad = (v: number, w = 2) => String(v).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Colours a service or run state the way people expect: green good, yellow moving, red bad. */
export function stateColor(state: string, c: Colors): string {
  switch (state) {
    case 'running': case 'open': case 'ok': return c.green(state);
    case 'starting': case 'stopping': case 'backoff': case 'opening': case 'finishing': case 'interrupted': return c.yellow(state);
    case 'failed': case 'crashed': case 'exited': return c.red(state);
    default: return state;
  }
}

/** `code 1`, `SIGKILL`, or `-`. */
export function exitText(exit: { code: number | null; signal: string | null } | null | undefined): string {
  if (exit === null || exit === undefined) return '-';
  return exit.signal !== null ? exit.signal : `code ${exit.code}`;
}

/** Shortens to `max` characters with an ellipsis. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}
