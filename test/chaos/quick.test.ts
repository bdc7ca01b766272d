/**
 * `npm run chaos -- --quick`, inside npm test: the real program, every section, a fixed seed.
 * It must break no promise, and it must have done what it says (episodes run, every kind of kill
 * dealt, records checked, fuzz cases sent); a run that did nothing would pass vacuously.
 * Timing bounds are shown but not judged in --quick (this shares its machine with other tests).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ChaosReport } from './report.js';

const main = fileURLToPath(new URL('../../dist/test/chaos/main.js', import.meta.url));

function runChaos(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run chaos -- --quick', () => {
  it('breaks no promise while killing, fuzzing, exhausting and loading real supervisors', async () => {
    const { code, stdout, stderr } = await runChaos(['--quick', '--seed', '1', '--json']);
    const report = JSON.parse(stdout) as ChaosReport;
    const violations = report.sections.flatMap((s) => s.violations.map((v) => `${v.section}: ${v.check}: ${v.message}`));
    expect(violations, stderr.slice(-4_000)).toEqual([]);
    expect(code).toBe(0);
    expect(report.sections.map((s) => s.name)).toEqual(['integrity', 'fuzz', 'access', 'load', 'exhaustion']);
    // Every section ran and checked something; none skipped itself.
    expect(report.sections.filter((s) => (s.counters.checks ?? 0) === 0).map((s) => s.name)).toEqual([]);
    // Only the parts that need root (another uid, a tmpfs, prlimit) may skip, and only without it.
    const mayMissParts = process.getuid?.() === 0 ? [] : ['access', 'exhaustion'];
    expect(report.sections.filter((s) => s.skipped !== null && !mayMissParts.includes(s.name)).map((s) => `${s.name}: ${s.skipped}`)).toEqual([]);
    expect(report.totals.episodes).toBe(2);
    expect(Object.keys(report.totals.kills).sort()).toEqual(
      ['client SIGKILL', 'client SIGTERM', 'client exit', 'handler worker', 'service', 'supervisor SIGKILL', 'supervisor SIGTERM'].sort());
    expect(report.totals.recordsChecked).toBeGreaterThan(10_000);
    expect(report.totals.fuzzCases).toBe(400);
    expect(report.seed).toBe(1);
  }, 240_000);

  it('exits 2 with the reason on a bad argument', async () => {
    const { code, stderr } = await runChaos(['--only', 'nonsense']);
    expect(code).toBe(2);
    expect(stderr).toContain('nonsense');
  });
});
