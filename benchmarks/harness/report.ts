/** The table a person reads at the end of a run, and the JSON file tools read. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import os from 'node:os';
import Table from 'cli-table3';
import type { CaseResult } from './runner.js';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  platform: string;
  release: string;
  node: string;
  commit: string | null;
  /** True when the working tree had uncommitted changes: the commit alone does not say what ran. */
  dirty: boolean | null;
  muxvisor: string;
}

export function describeMachine(root: string): Machine {
  const git = (...args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const status = git('status', '--porcelain');
  const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { version: string };
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    platform: os.platform(),
    release: os.release(),
    node: process.version,
    commit: git('rev-parse', 'HEAD'),
    dirty: status === null ? null : status.length > 0,
    muxvisor: pkg.version,
  };
}

export interface Report {
  tool: 'muxvisor-bench';
  schema: 1;
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  repetitions: number;
  warmups: number;
  machine: Machine;
  results: CaseResult[];
}

export function writeReport(path: string, report: Report): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}

/**
 * The results grouped by question: a heading with the workload and what was compared, then one
 * row per case and figure. Columns for further baselines appear only when some case has them.
 */
export function formatTable(results: readonly CaseResult[]): string {
  const ratioOf = (ratio: number | undefined) => (ratio === undefined ? '-' : `${ratio.toFixed(2)}×`);
  const out: string[] = [];
  const questions = [...new Set(results.map((r) => r.question))];
  for (const question of questions) {
    const rows = results.filter((r) => r.question === question);
    const others = rows.some((r) => r.otherBaselines?.length);
    const labels = (pick: (r: CaseResult) => string | undefined) => [...new Set(rows.map(pick).filter((l): l is string => l !== undefined))].join(' | ');
    out.push(`${question}: ${rows[0]?.workload ?? ''}`);
    out.push(`  muxvisor: ${labels((r) => r.contender.label.replace(/^muxvisor:?\s*/, ''))}`);
    const base = labels((r) => r.baseline?.label);
    if (base) out.push(`  baseline: ${base}`);
    const other = labels((r) => r.otherBaselines?.map((o) => o.label).join(', '));
    if (other) out.push(`  also against: ${other}`);
    const table = new Table({
      head: ['case', 'muxvisor (median)', 'spread', 'baseline', 'ratio', ...(others ? ['also against', 'ratio'] : [])],
      style: { head: [], border: [], compact: true },
    });
    for (const r of rows) {
      const row = [
        r.case,
        `${formatNumber(r.contender.median)} ${r.unit}`,
        `${(r.contender.spread * 100).toFixed(1)} %`,
        r.baseline ? `${formatNumber(r.baseline.median)} ${r.unit}` : '-',
        r.baseline ? ratioOf(r.ratio) : '-',
      ];
      if (others) {
        const list = r.otherBaselines ?? [];
        row.push(list.length === 0 ? '-' : list.map((o) => `${formatNumber(o.median)} ${r.unit}`).join(', '), list.length === 0 ? '-' : list.map((o) => ratioOf(o.ratio)).join(', '));
      }
      table.push(row);
    }
    out.push(table.toString(), '');
  }
  return out.join('\n');
}

/** 1234567 -> "1.23M", 0.000123 -> "0.000123": three significant figures. */
export function formatNumber(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toPrecision(3)}G`;
  if (abs >= 1e6) return `${(value / 1e6).toPrecision(3)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toPrecision(3)}k`;
  return Number(value.toPrecision(3)).toString();
}
