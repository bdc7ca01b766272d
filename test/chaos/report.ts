/**
 * What a chaos run reports: per section its counters, its measured figures (some with a bound),
 * and its violations; the totals a person reads at a glance; the JSON document for tools.
 *
 * Counter names that the totals understand (sections use them, never other spellings):
 * `episodes`, `kill <kind>` (one per kill, by kind), `records checked`, `fuzz cases`.
 */
import { execFileSync } from 'node:child_process';
import { cpus, release, totalmem } from 'node:os';
import Table from 'cli-table3';

export interface Violation {
  section: string;
  /** A short stable name of the promise that was broken, e.g. `acknowledged record missing`. */
  check: string;
  /** What was seen, with the numbers. */
  message: string;
  data?: unknown;
}

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The bound it must keep, when it has one. */
  max?: number;
  min?: number;
  /**
   * False when the bound is shown but not enforced: timing bounds in `--quick`, which shares its
   * machine with the rest of `npm test`.
   */
  judged: boolean;
  note?: string;
}

export interface SectionReport {
  name: string;
  title: string;
  durationMs: number;
  /** Why the section did not run (or ran in part), or null. */
  skipped: string | null;
  counters: Record<string, number>;
  figures: Figure[];
  violations: Violation[];
}

export interface ChaosReport {
  schema: 1;
  seed: number;
  quick: boolean;
  startedAt: string;
  durationMs: number;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; kernel: string };
  commit: string | null;
  sections: SectionReport[];
  totals: { episodes: number; kills: Record<string, number>; recordsChecked: number; fuzzCases: number; checks: number; violations: number };
}

export function machine(): ChaosReport['machine'] {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
  };
}

export function commit(cwd: string): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function totals(sections: readonly SectionReport[]): ChaosReport['totals'] {
  const t: ChaosReport['totals'] = { episodes: 0, kills: {}, recordsChecked: 0, fuzzCases: 0, checks: 0, violations: 0 };
  for (const s of sections) {
    t.violations += s.violations.length;
    for (const [name, n] of Object.entries(s.counters)) {
      if (name === 'episodes') t.episodes += n;
      else if (name === 'records checked') t.recordsChecked += n;
      else if (name === 'fuzz cases') t.fuzzCases += n;
      else if (name === 'checks') t.checks += n;
      else if (name.startsWith('kill ')) t.kills[name.slice(5)] = (t.kills[name.slice(5)] ?? 0) + n;
    }
  }
  return t;
}

const number = (n: number) => (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 }));

function bound(f: Figure): string {
  const parts = [];
  if (f.max !== undefined) parts.push(`≤ ${number(f.max)}`);
  if (f.min !== undefined) parts.push(`≥ ${number(f.min)}`);
  if (parts.length === 0) return '';
  return `${parts.join(', ')}${f.judged ? '' : ' (shown, not judged)'}`;
}

/** The summary a person reads: the totals first, then each section's figures, then every violation. */
export function formatSummary(report: ChaosReport): string {
  const t = report.totals;
  const kills = Object.entries(t.kills).sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ${n}`).join(', ');
  const lines = [
    `chaos ${report.quick ? '--quick ' : ''}--seed ${report.seed}: ${t.violations === 0 ? 'no violations' : `${t.violations} VIOLATION${t.violations === 1 ? '' : 'S'}`} in ${(report.durationMs / 1000).toFixed(1)} s`,
    `  episodes ${number(t.episodes)} · kills ${number(Object.values(t.kills).reduce((a, b) => a + b, 0))}${kills ? ` (${kills})` : ''}`,
    `  records checked ${number(t.recordsChecked)} · fuzz cases ${number(t.fuzzCases)} · checks ${number(t.checks)} · violations ${t.violations}`,
    `  ${report.machine.cpus} × ${report.machine.cpuModel}, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}${report.commit ? `, commit ${report.commit}` : ''}`,
    '',
  ];
  for (const s of report.sections) {
    const table = new Table({ head: [`${s.title} (${(s.durationMs / 1000).toFixed(1)} s)`, 'value', 'bound'], style: { head: [], border: [] } });
    for (const [name, n] of Object.entries(s.counters)) table.push([name, number(n), '']);
    for (const f of s.figures) {
      const broken = f.judged && ((f.max !== undefined && f.value > f.max) || (f.min !== undefined && f.value < f.min));
      table.push([`${f.name}${f.note ? ` (${f.note})` : ''}`, `${number(f.value)} ${f.unit}${broken ? '  ✗' : ''}`, bound(f)]);
    }
    if (s.skipped) table.push([{ colSpan: 3, content: `skipped: ${s.skipped}` }]);
    lines.push(table.toString());
    for (const v of s.violations) lines.push(`  ✗ ${v.check}: ${v.message}`);
    lines.push('');
  }
  return lines.join('\n');
}
