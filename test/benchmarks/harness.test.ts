import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { summarize } from '../../benchmarks/harness/stats.js';
import { formatNumber } from '../../benchmarks/harness/report.js';

const run = promisify(execFile);
const script = new URL('../../dist/benchmarks/run.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'muxvisor-bench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('benchmark harness', () => {
  it('is built (npm test builds before it runs the tests)', () => {
    expect(existsSync(script), `${script} is missing: run \`npm run build\``).toBe(true);
  });

  it('answers the codec question in --quick mode with sane figures beside a baseline, as a table and as JSON', async () => {
    const json = join(dir, 'quick.json');
    const { stdout } = await run(process.execPath, [script, '--quick', 'codec', '--json', json]);
    expect(stdout).toContain('codec');
    expect(stdout).toContain(`results: ${json}`);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report).toMatchObject({ tool: 'muxvisor-bench', schema: 1, quick: true, repetitions: 2 });
    expect(report.machine.node).toBe(process.version);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.results.map((r: { case: string }) => r.case)).toEqual(['encode', 'decode', 'encode+decode', 'decode check cost']);
    for (const r of report.results) {
      // Sanity, never speed: every figure is a positive finite rate, measured the asked number of times.
      for (const side of [r.contender, r.baseline]) {
        expect(side.samples).toHaveLength(2);
        for (const v of [side.median, side.min, side.max]) expect(Number.isFinite(v) && v > 0, `${r.case}: ${v}`).toBe(true);
        expect(side.min).toBeLessThanOrEqual(side.median);
        expect(side.median).toBeLessThanOrEqual(side.max);
      }
      expect(r.ratio).toBeCloseTo(r.contender.median / r.baseline.median, 10);
    }
  });

  it('answers the services question in --quick mode: sampling cost and start-to-ready beside their baselines', async () => {
    const json = join(dir, 'services.json');
    await run(process.execPath, [script, '--quick', 'services', '--json', json], { timeout: 120_000 });
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report.results.map((r: { case: string }) => r.case)).toEqual([
      'sampling tick, 10 processes cpuMs', 'sampling tick, 10 processes wallMs', 'start-to-ready, trivial service',
    ]);
    for (const r of report.results) {
      for (const side of [r.contender, r.baseline]) {
        expect(side.samples).toHaveLength(2);
        for (const v of side.samples) expect(Number.isFinite(v) && v > 0, `${r.case}: ${v}`).toBe(true);
      }
    }
  }, 150_000);

  it('measures publish and roundtrip beside both baselines, raw socket and msgpackr point to point, each with its own ratio', async () => {
    const json = join(dir, 'baselines.json');
    const { stdout } = await run(process.execPath, [script, '--quick', 'publish', 'roundtrip', '--json', json], { timeout: 90_000 });
    expect(stdout).toContain('also against');
    expect(stdout).toContain('msgpackr point to point');
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report.results.map((r: { question: string }) => r.question)).toEqual([
      ...Array(2).fill('publish'), ...Array(8).fill('roundtrip'),
    ]);
    for (const r of report.results) {
      // The primary baseline stays where tools read it; the others follow with their own ratios.
      expect(r.baseline.label, r.case).toMatch(/^raw socket/);
      expect(r.otherBaselines.map((o: { label: string }) => o.label), r.case).toEqual([expect.stringMatching(/^msgpackr point to point/)]);
      const [msgpackr] = r.otherBaselines;
      for (const side of [r.contender, r.baseline, msgpackr]) {
        expect(side.samples).toHaveLength(2);
        for (const v of [side.median, ...side.samples]) expect(Number.isFinite(v) && v > 0, `${r.case}, ${side.label}: ${v}`).toBe(true);
      }
      expect(r.ratio).toBeCloseTo(r.contender.median / r.baseline.median, 10);
      expect(msgpackr.ratio).toBeCloseTo(r.contender.median / msgpackr.median, 10);
    }
  }, 120_000);

  it('answers every other question in --quick mode (pipelined, fanin, headofline, runs, scale, startup) with sane figures', async () => {
    const json = join(dir, 'rest.json');
    const { stdout } = await run(process.execPath, [script, '--quick', 'pipelined', 'fanin', 'headofline', 'runs', 'scale', 'startup', '--json', json], { timeout: 150_000 });
    const report = JSON.parse(readFileSync(json, 'utf8'));
    const asked = ['pipelined', 'fanin', 'headofline', 'runs', 'scale', 'startup'];
    expect([...new Set(report.results.map((r: { question: string }) => r.question))]).toEqual(asked);
    for (const q of asked) expect(stdout).toContain(`${q}: `);
    const byCase = (name: string) => report.results.find((r: { question: string; case: string }) => `${r.question} ${r.case}` === name);
    // The cases each question promises (quick mode uses smaller counts in their names).
    for (const name of [
      'pipelined 16 in flight', 'pipelined 256 in flight', 'fanin 1 client perSec', 'fanin 4 clients fairness',
      'headofline no flood REQUEST p99', 'headofline 2 publishing at nice 19 REQUEST p99', 'runs open+finish p50',
      'scale 50 runs open rssMB', 'scale 50 idle connections rssMB', 'scale 50 idle connections p99',
      'startup cold connect ms', 'startup warm connect p50',
    ]) expect(byCase(name), name).toBeDefined();
    // Differences of two RSS readings move in whole pages in quick mode: finite, not necessarily > 0.
    const differences = /perRunKB|perConnKB|threadsMB/;
    for (const r of report.results) {
      for (const side of [r.contender, r.baseline, ...(r.otherBaselines ?? [])]) {
        if (side === undefined) continue;
        expect(side.samples, `${r.question} ${r.case}`).toHaveLength(2);
        for (const v of side.samples) {
          expect(Number.isFinite(v), `${r.question} ${r.case} ${side.label}: ${v}`).toBe(true);
          if (!differences.test(r.case)) expect(v, `${r.question} ${r.case} ${side.label}`).toBeGreaterThan(0);
        }
      }
      if (r.baseline) expect(r.ratio).toBeCloseTo(r.contender.median / r.baseline.median, 10);
      if (/fairness/.test(r.case)) for (const v of r.contender.samples) expect(v).toBeLessThanOrEqual(1 + 1e-9);
    }
    expect(byCase('fanin 1 client fairness').contender.median).toBeCloseTo(1, 9);
  }, 180_000);

  it('refuses an unknown question, naming the known ones', async () => {
    const failure = await run(process.execPath, [script, 'nope']).catch((e: { code: number; stderr: string }) => e);
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr).toMatch(/unknown question `nope` \(known: codec, publish, roundtrip, pipelined, fanin, headofline, runs, scale, startup, services\)/);
  });

  it('summarizes repetitions by median and spread', () => {
    expect(summarize([3, 1, 2])).toMatchObject({ median: 2, min: 1, max: 3, spread: 1 });
    expect(summarize([4, 1, 2, 3]).median).toBe(2.5);
    expect(() => summarize([])).toThrow();
  });

  it('prints figures with three significant digits', () => {
    expect(formatNumber(1_234_567)).toBe('1.23M');
    expect(formatNumber(45_678)).toBe('45.7k');
    expect(formatNumber(0.000123456)).toBe('0.000123');
  });
});
