/**
 * The monitor's screen as lines: a pure function of what is known (the last snapshot, the
 * selection, the feedback of the last key) and of the terminal's size. No I/O here; the caller
 * writes the lines (terminal.ts).
 *
 * Contract: `renderFrame` returns at most `rows` lines, none wider than `columns - 1` visible
 * columns (the last column stays empty, so no terminal wraps or scrolls), and the selected
 * service's row is always among them when the services section shows any row.
 */
import { VERSION } from '../../../protocol/version.js';
import type { SupervisorEvent } from '../../events.js';
import type { ServiceStatus } from '../../services.js';
import { connectionsText } from '../commands/status.js';
import { age, bytes, clip, clock, type Colors, count, duration, exitText, percent, rate, stateColor, table } from '../format.js';
import type { Snapshot } from './snapshot.js';
import { clean, fit } from './text.js';

export interface Feedback {
  text: string;
  /** busy: under way; ok: done; error: failed (the message says why). */
  tone: 'busy' | 'ok' | 'error';
}

export interface View {
  /** The last snapshot; null until the first one arrives. */
  snapshot: Snapshot | null;
  /** The selected service's name; null when there is none. */
  selected: string | null;
  /** What the last start / stop / restart is doing or did. */
  feedback: Feedback | null;
  /** The last event, in words (`describeEvent`). */
  lastEvent: string | null;
  /** Why the last refresh failed, when it did: the older snapshot stays on screen meanwhile. */
  refreshError: string | null;
}

export interface Size {
  columns: number;
  rows: number;
}

export const KEYS_HELP = '↑/↓ select  ctrl+s start  ctrl+k stop  r restart  q quit';
const MAX_PROBLEMS = 3;

export function renderFrame(view: View, size: Size, c: Colors, now = Date.now()): string[] {
  const top = [...header(view, c), ''];
  const footer = [feedbackLine(view, c), c.dim(KEYS_HELP)];
  const s = view.snapshot;
  const room = Math.max(0, size.rows - top.length - footer.length);
  // What does not fit goes from the body's end, so the keys stay in view.
  const body = s === null ? [] : sections(s, view.selected, room, c, now).slice(0, room);
  const pad = Math.max(0, size.rows - top.length - body.length - footer.length);
  const lines = [...top, ...body, ...new Array<string>(pad).fill(''), ...footer];
  return lines.slice(0, Math.max(0, size.rows)).map((l) => fit(l, size.columns - 1));
}

function header(view: View, c: Colors): string[] {
  const s = view.snapshot?.status;
  const problems = [...((s?.problems as string[] | undefined) ?? [])].map(clean);
  if (s !== undefined && s.server?.version !== VERSION) problems.unshift(`the supervisor runs muxvisor ${s.server?.version}, this CLI is ${VERSION}`);
  if (view.refreshError !== null) problems.unshift(`refresh failed: ${clean(view.refreshError)}${view.snapshot === null ? '' : ` (showing the state at ${clock(view.snapshot.at).slice(11)})`}`);
  const lines: string[] = [];
  if (problems.length > 0) {
    lines.push(c.red(c.bold(`${problems.length} problem${problems.length === 1 ? '' : 's'}:`)));
    for (const p of problems.slice(0, MAX_PROBLEMS)) lines.push(c.red(`  ! ${p}`));
    if (problems.length > MAX_PROBLEMS) lines.push(c.red(`  … ${problems.length - MAX_PROBLEMS} more (muxvisor status)`));
  }
  if (s === undefined || view.snapshot === null) return [...lines, c.bold('muxvisor monitor'), c.dim('asking the supervisor…')];
  const r = s.rates ?? {};
  const label = (t: string) => c.dim(t);
  const byState = Object.entries((s.services?.byState ?? {}) as Record<string, number>).map(([k, v]) => `${v} ${stateColor(k, c)}`).join(', ');
  lines.push(`${c.bold(`muxvisor ${s.server?.version}`)}  ${label('pid')} ${s.server?.pid}  ${label('up')} ${duration(s.uptimeMs)}  ${stateColor(String(s.state), c)}  ${c.dim(`updated ${clock(view.snapshot.at).slice(11)}`)}`);
  lines.push([
    `${label('connections')} ${count(s.connections)}`,
    `${label('pending')} ${count(s.pendingRequests)}`,
    `${label('runs')} ${count(s.runs?.open)} open`,
    `${label('services')} ${count(s.services?.count)}${byState === '' ? '' : ` (${byState})`}`,
  ].join('  '));
  lines.push([
    `${label('supervisor')} cpu ${percent(r.cpuPercent)} rss ${bytes(s.process?.rssBytes)}`,
    `${label('records')} ${rate(r.recordsPerSec)}`,
    `${label('in')} ${bytes(r.bytesInPerSec)}/s`,
    `${label('out')} ${bytes(r.bytesOutPerSec)}/s`,
    `${label('requests')} ${rate(r.requestsPerSec)}`,
  ].join('  '));
  return lines;
}

interface Section {
  /** Shown when the section has no rows, instead of a table. */
  empty: string;
  title: string;
  head: string;
  rows: string[];
  /** The row to keep in view (and highlighted); null for none. */
  selected: number | null;
}

function sections(s: Snapshot, selected: string | null, budget: number, c: Colors, now: number): string[] {
  const all = [servicesSection(s.services, selected, c, now), runsSection(s.runs, c, now), connectionsSection(s.connections, c)];
  const plan = planRows(all.map((x) => x.rows.length), budget);
  const lines: string[] = [];
  all.forEach((x, i) => {
    if (i > 0 && plan.gap) lines.push('');
    if (x.rows.length === 0) return void lines.push(`${c.bold(x.title)}  ${c.dim(x.empty)}`);
    if (plan.collapsed[i]) return void lines.push(`${c.bold(x.title)} (${x.rows.length})  ${c.dim('… no room: enlarge the terminal')}`);
    const k = plan.shown[i] as number;
    const start = x.selected === null || x.selected < k || k === 0 ? 0 : x.selected - k + 1;
    lines.push(`${c.bold(x.title)} (${x.rows.length})`, x.head);
    lines.push(...x.rows.slice(start, start + k).map((row, j) => (start + j === x.selected ? c.inverse(row) : row)));
    const hidden = x.rows.length - k;
    if (hidden > 0) lines.push(c.dim(`… ${hidden} more${start > 0 ? ` (${start} above)` : ''}`));
  });
  return lines;
}

/** Which sections show how many rows: `shown[i]` rows of section i, or one line when `collapsed[i]`. */
export interface RowPlan {
  shown: number[];
  collapsed: boolean[];
  /** A blank line between sections. */
  gap: boolean;
}

/**
 * Shares `budget` lines among sections of `counts` rows, the first section first. A section with
 * rows costs a title, a table head and a `… N more` line (which its last row replaces); an empty
 * one costs one line; the first section always shows one row (the selection). When that does not
 * fit, the last sections collapse to one line each (never the first), then the blank lines between
 * sections go. Rows are then handed out one at a time in turn, so every section shows some before
 * any shows all. The plan may exceed a budget too small for its minimum.
 */
export function planRows(counts: number[], budget: number): RowPlan {
  const collapsed = counts.map(() => false);
  const shown = counts.map((n, i): number => (i === 0 && n > 0 ? 1 : 0));
  let gap = true;
  const cost = (n: number, i: number) => (n === 0 || collapsed[i] ? 1 : 2 + (shown[i] as number) + (n > (shown[i] as number) ? 1 : 0));
  const fixed = () => counts.reduce((sum, n, i) => sum + cost(n, i), 0) + (gap ? counts.length - 1 : 0);
  for (let i = counts.length - 1; i > 0 && fixed() > budget; i--) if ((counts[i] as number) > 0) collapsed[i] = true;
  if (fixed() > budget) gap = false;
  let used = fixed();
  for (let progress = true; progress;) {
    progress = false;
    for (let i = 0; i < counts.length; i++) {
      const n = counts[i] as number;
      const k = shown[i] as number;
      if (collapsed[i] || k >= n) continue;
      const step = k + 1 === n ? 0 : 1;
      if (used + step > budget) continue;
      shown[i] = k + 1;
      used += step;
      progress = true;
    }
  }
  return { shown, collapsed, gap };
}

function servicesSection(services: ServiceStatus[], selected: string | null, c: Colors, now: number): Section {
  const rows = services.map((x) => [
    x.name === selected ? '›' : ' ',
    clean(x.name),
    stateColor(x.state, c),
    x.pid ?? '-',
    x.pid !== null && x.startedAt !== null ? duration(now - x.startedAt) : '-',
    x.restarts,
    x.pid === null ? '-' : percent(x.usage?.cpuPercent),
    x.pid === null ? '-' : bytes(x.usage?.memoryBytes),
    clean(x.url ?? (Object.entries(x.ports ?? {}).map(([k, v]) => `${k}:${v}`).join(' ') || '-')),
    exitText(x.lastExit),
    clip(clean(x.reason), 60),
  ]);
  const [head = '', ...lines] = table(['', 'service', 'state', 'pid', 'up', 'restarts', 'cpu', 'mem', 'url / ports', 'last exit', 'reason'], rows, c).split('\n');
  const index = services.findIndex((x) => x.name === selected);
  return { title: 'Services', empty: 'none', head, rows: rows.length === 0 ? [] : lines, selected: index < 0 ? null : index };
}

function runsSection(runs: Array<Record<string, any>>, c: Colors, now: number): Section {
  const rows = runs.map((r) => [
    clean(r.run),
    stateColor(String(r.state), c),
    count(r.records),
    bytes(r.bytes),
    clip(((r.owners ?? []) as Array<{ pid: number; name: string }>).map((o) => `${clean(o.name)} (${o.pid})`).join(', ') || '-', 60),
    clean(r.handler ?? '-'),
    age(r.openedAt, now),
  ]);
  const [head = '', ...lines] = table(['run', 'state', 'records', 'bytes', 'owners', 'handler', 'age'], rows, c).split('\n');
  return { title: 'Open runs', empty: 'none', head, rows: rows.length === 0 ? [] : lines, selected: null };
}

function connectionsSection(list: Array<Record<string, any>>, c: Colors): Section {
  if (list.length === 0) return { title: 'Connections', empty: 'none', head: '', rows: [], selected: null };
  const [head = '', ...lines] = connectionsText(list.map((x) => ({ ...x, name: clean(x.name) })), c).split('\n');
  return { title: 'Connections', empty: 'none', head, rows: lines, selected: null };
}

function feedbackLine(view: View, c: Colors): string {
  const f = view.feedback;
  if (f !== null) return f.tone === 'error' ? c.red(clean(f.text)) : f.tone === 'ok' ? c.green(clean(f.text)) : c.yellow(clean(f.text));
  return view.lastEvent === null ? '' : c.dim(`last event: ${clean(view.lastEvent)}`);
}

/** An event in words: `12:00:01 service web running → stopping (stop requested)`. */
export function describeEvent(e: SupervisorEvent): string {
  const d = e.data as Record<string, any>;
  const when = clock(e.time).slice(11);
  switch (e.topic) {
    case 'service': return `${when} service ${d.service} ${d.previous ?? '-'} → ${d.state}${d.reason ? ` (${d.reason})` : ''}`;
    case 'run': return `${when} run ${d.run} ${d.event}${d.status ? ` ${d.status}` : ''}`;
    default: return `${when} supervisor ${d.event ?? 'event'}${d.reason ? ` (${d.reason})` : ''}`;
  }
}
