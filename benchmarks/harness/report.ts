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

export function formatTable(results: readonly CaseResult[]): string {
  const table = new Table({
    head: ['question', 'case', 'workload', 'muxvisor (median)', 'spread', 'baseline (median)', 'ratio'],
    style: { head: [], border: [] },
  });
  for (const r of results) {
    table.push([
      r.question,
      r.case,
      r.workload,
      `${formatNumber(r.contender.median)} ${r.unit}\n${r.contender.label}`,
      `${(r.contender.spread * 100).toFixed(1)} %`,
      r.baseline ? `${formatNumber(r.baseline.median)} ${r.unit}\n${r.baseline.label}` : '-',
      r.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}×`,
    ]);
  }
  return table.toString();
}

/** 1234567 -> "1.23M", 0.000123 -> "0.000123": three significant figures. */
export function formatNumber(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toPrecision(3)}G`;
  if (abs >= 1e6) return `${(value / 1e6).toPrecision(3)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toPrecision(3)}k`;
  return Number(value.toPrecision(3)).toString();
}
