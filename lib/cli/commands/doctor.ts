/**
 * `muxvisor doctor`: checks what breaks a home (modes and owners, a stale socket or pid file, a
 * hung supervisor or one of another version, a socket path too long, a full disk, huge logs,
 * stray environment variables) and prints one command to paste for each problem. It never starts
 * a supervisor and changes nothing. Exit code 7 when any check fails; warnings alone exit 0.
 * `--json`: `{home, cliVersion, supervisor: {running, pid, version}, ok, checks: [{id, title,
 * status, detail, fix}]}`.
 */
import type { Command } from 'commander';
import { VERSION } from '../../../protocol/version.js';
import { type Check, type CheckStatus, check } from '../doctor/check.js';
import { pidFileCheck, socketCheck, supervisorCheck, versionCheck } from '../doctor/daemon.js';
import { type Facts, gatherFacts } from '../doctor/facts.js';
import { dataDirsCheck, homeCheck, runtimeDirCheck, tokenCheck } from '../doctor/files.js';
import { daemonEntryCheck, diskCheck, homeEnvCheck, logsCheck, serviceEnvCheck, socketPathCheck } from '../doctor/space.js';
import { action, type Ctx } from '../context.js';
import { ExitCode, usageError } from '../exit-codes.js';
import type { Colors } from '../format.js';

/** The longest the doctor waits for a supervisor's WELCOME (less with a smaller `--timeout`). */
const PROBE_TIMEOUT_MS = 3_000;
/** `--min-free` when not given: 1 GiB. */
const DEFAULT_MIN_FREE = '1G';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the home for what breaks muxvisor (modes, stale socket or pid file, hung or old supervisor, disk, logs) and print the fix for each problem; starts nothing')
    .option('--min-free <bytes>', 'free disk space under which run logs are in danger: bytes, or with a suffix (500M, 2G, 1T); warns under 5 times this', DEFAULT_MIN_FREE)
    .addHelpText('after', '\nExit code 7 when a check fails; warnings alone exit 0.\n\nExamples:\n  $ muxvisor doctor\n  $ muxvisor doctor --json')
    .action(action(async (ctx, flags: { minFree: string }) => doctor(ctx, parseBytes('--min-free', flags.minFree))));
}

export interface DoctorReport {
  home: string;
  cliVersion: string;
  supervisor: { running: boolean; pid: number | null; version: string | null };
  /** False when any check failed. */
  ok: boolean;
  checks: Check[];
}

/** Every check, in the order they are printed. Each one only reads. */
export function runChecks(facts: Facts, minFree: number): Check[] {
  const { layout } = facts;
  return [
    guarded('home', 'home directory', () => homeCheck(layout)),
    guarded('runtime-dir', 'runtime directory', () => runtimeDirCheck(layout)),
    guarded('data-dirs', 'runs and logs directories', () => dataDirsCheck(layout)),
    guarded('token', 'token', () => tokenCheck(facts)),
    guarded('socket', 'socket', () => socketCheck(facts)),
    guarded('pid-file', 'pid file', () => pidFileCheck(facts)),
    guarded('supervisor', 'supervisor', () => supervisorCheck(facts)),
    guarded('version', 'version', () => versionCheck(facts)),
    guarded('socket-path', 'socket path length', () => socketPathCheck(layout)),
    guarded('disk', 'disk space', () => diskCheck(layout, minFree)),
    guarded('logs', 'logs', () => logsCheck(layout)),
    guarded('home-env', 'MUXVISOR_HOME', () => homeEnvCheck(layout)),
    guarded('service-env', 'MUXVISOR_SERVICE', () => serviceEnvCheck(layout)),
    guarded('daemon-entry', 'supervisor program', () => daemonEntryCheck()),
  ];
}

/**
 * A check that cannot even look (EACCES on a path, a statfs error) is a problem of its own: what
 * this user cannot read, a supervisor of this user cannot use either. It never ends the report.
 */
function guarded(id: string, title: string, run: () => Check): Check {
  try {
    return run();
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return check(id, title, 'fail', `cannot check: ${e.message ?? String(error)}`);
  }
}

async function doctor(ctx: Ctx, minFree: number): Promise<ExitCode> {
  const facts = await gatherFacts(ctx.layout, Math.min(ctx.timeoutMs, PROBE_TIMEOUT_MS));
  const checks = runChecks(facts, minFree);
  const { probe } = facts;
  const answered = probe.kind === 'answered' ? probe : null;
  const report: DoctorReport = {
    home: ctx.home,
    cliVersion: VERSION,
    supervisor: {
      running: answered !== null || facts.liveSupervisor !== null,
      pid: answered?.pid ?? facts.liveSupervisor,
      version: answered?.version ?? null,
    },
    ok: checks.every((c) => c.status !== 'fail'),
    checks,
  };
  if (ctx.json) ctx.outJson(report);
  else ctx.out(reportText(report, ctx.c));
  return report.ok ? ExitCode.Ok : ExitCode.Unhealthy;
}

const SYMBOLS: Record<CheckStatus, string> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };

function paint(status: CheckStatus, text: string, c: Colors): string {
  switch (status) {
    case 'ok': return c.green(text);
    case 'warn': return c.yellow(text);
    case 'fail': return c.red(text);
    case 'skip': return c.dim(text);
  }
}

/** One line per check, an indented `fix:` under each problem, then the verdict. */
export function reportText(report: DoctorReport, c: Colors): string {
  const s = report.supervisor;
  const who = s.pid === null ? 'no supervisor running' : `supervisor pid ${s.pid}${s.version === null ? '' : ` (muxvisor ${s.version})`}`;
  const lines = [c.bold(`muxvisor ${report.cliVersion} doctor: home ${report.home}, ${who}`)];
  const width = Math.max(...report.checks.map((k) => k.title.length));
  for (const k of report.checks) {
    lines.push(`${paint(k.status, SYMBOLS[k.status], c)} ${k.status === 'skip' ? c.dim(k.title.padEnd(width)) : k.title.padEnd(width)}  ${k.detail}`);
    if (k.fix !== null && (k.status === 'warn' || k.status === 'fail')) lines.push(`  ${' '.repeat(width)}  ${c.dim('fix:')} ${k.fix}`);
  }
  lines.push(verdict(report.checks, c));
  return lines.join('\n');
}

/** `everything looks right`, `1 problem`, `2 problems, 1 warning`, `3 warnings`. */
export function verdict(checks: readonly Check[], c: Colors): string {
  const fails = checks.filter((k) => k.status === 'fail').length;
  const warns = checks.filter((k) => k.status === 'warn').length;
  if (fails === 0 && warns === 0) return c.green('everything looks right');
  const parts: string[] = [];
  if (fails > 0) parts.push(`${fails} problem${fails === 1 ? '' : 's'}`);
  if (warns > 0) parts.push(`${warns} warning${warns === 1 ? '' : 's'}`);
  return fails > 0 ? c.red(c.bold(parts.join(', '))) : c.yellow(parts.join(', '));
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };

/** `1073741824`, `500M`, `2G`, `1.5GiB`, `10 GB` (binary units throughout) to bytes. */
export function parseBytes(option: string, text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(text);
  const value = match === null ? Number.NaN : Number(match[1]) * (UNITS[(match[2] as string).toUpperCase()] as number);
  if (!Number.isFinite(value)) throw usageError(`${option} must be a number of bytes, optionally with a suffix (500M, 2G, 1T), got \`${text}\``);
  return Math.floor(value);
}
