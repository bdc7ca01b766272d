/**
 * The soak: `soakClients` processes publish ~100-byte records at full speed for `soakSeconds`,
 * each in a rotation of runs (open, publish N, sync, finish, check exactly N, remove the run's
 * directory), beside a canary. The supervisor's RSS and fd count are sampled every second.
 *
 * What is judged, comparing the first period of the soak with the last (a period is the first
 * and last minute in a full run, a third of the soak in a shorter one):
 * - every run held exactly what was published (sync, finish, and every tenth run runs.verify);
 *   no client saw an error; the canary saw none and lost nothing;
 * - memory, after the warm-up: the last period's median RSS ≤ the middle period's + 64 MB
 *   (RSS_GROWTH_BOUND), judged in full runs (a short soak is warm-up from end to end); the
 *   first period's is shown; and in every run the peak ≤ 1 GiB (RSS_PEAK_BOUND);
 * - descriptors: the last period's max ≤ the first's + FD_SOAK_SLACK, and back to the baseline
 *   once the clients are gone;
 * - latency (a timing bound, judged in full runs only): the canary's p99 in the last period ≤
 *   max(2 × its p99 in the first, first + 5 ms).
 *
 * Disk is bounded by removing each finished, checked run's directory (the supervisor forgets a
 * run once it is finished: nothing of it reads the directory again, and `runs` lists skip a
 * directory that is gone). The peak size of runs/ is a figure.
 */
import { statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { judgeCanary, startCanary } from '../canary.js';
import { fdCount, type SectionContext } from '../context.js';
import type { CanaryResult, CanaryWindow } from '../programs/canary.js';
import type { SoakResult, SoakSpec } from '../programs/soak-client.js';
import { FD_SLACK } from './connections.js';
import { awaitEvent, tell } from './processes.js';
import { MB, median, round, sample } from './sampler.js';

/** How much the supervisor's median RSS may grow from the first period to the last. */
export const RSS_GROWTH_BOUND = 64 * MB;
/** The most the supervisor may hold at any moment of the soak (observed: about 350 MB with 100 clients). */
export const RSS_PEAK_BOUND = 1024 * MB;
/** How many more descriptors the last period may hold (median) than the first (runs opening and closing). */
export const FD_SOAK_SLACK = 16;

export async function soak(ctx: SectionContext): Promise<void> {
  const home = ctx.home();
  const supervisor = await ctx.startSupervisor(home, 'load supervisor started');
  if (supervisor === null) return;
  const seconds = ctx.options.soakSeconds;
  const periodMs = Math.min(60_000, (seconds * 1000) / 3);
  const canaryWindowMs = ctx.quick ? 1_000 : 10_000;
  const canary = await startCanary(ctx, home.home, { windowMs: canaryWindowMs });
  const canaryReady = Date.now();

  const clients = Array.from({ length: ctx.options.soakClients }, () => {
    const spec: SoakSpec = {
      home: home.home, seconds, seed: ctx.rng.int(0, 0x7fffffff), minRecords: 1_000, maxRecords: ctx.quick ? 3_000 : 10_000,
      verifyEvery: 10, removeFinished: true, windowMs: periodMs,
    };
    return ctx.program('soak-client', spec, { stdio: ['pipe', 'pipe', 'pipe'] });
  });
  await awaitEvent(clients, 'ready', 180_000, ctx.signal);
  const fds0 = fdCount(supervisor) ?? 0;

  const sampler = sample(supervisor, home.layout.runsDir);
  const goAt = Date.now();
  tell(clients, 'go');
  ctx.signal.addEventListener('abort', () => tell(clients, 'stop'), { once: true });
  let results: SoakResult[];
  try {
    results = await awaitEvent<SoakResult>(clients, 'result', seconds * 1000 + 180_000);
  } finally {
    sampler.stop();
  }
  const wallMs = Date.now() - goAt;
  const canaryResult = await canary.stop();

  // What the clients saw.
  const records = results.reduce((sum, r) => sum + r.records, 0);
  const runs = results.reduce((sum, r) => sum + r.runs, 0);
  const mismatches = results.flatMap((r) => r.mismatches);
  const mismatchCount = results.reduce((sum, r) => sum + r.mismatchCount, 0);
  const errorCount = results.reduce((sum, r) => sum + r.errorCount, 0);
  ctx.count('soak runs', runs);
  ctx.count('records checked', results.reduce((sum, r) => sum + r.verifiedRecords, 0));
  ctx.check(records > 0 && runs >= clients.length, 'soak published', () => `${clients.length} clients finished ${runs} runs with ${records} records in ${seconds} s: not every client got through a run`);
  ctx.check(mismatchCount === 0, 'soak run count mismatch', () => `${mismatchCount} runs did not hold what was published: ${mismatches.slice(0, 5).join(' | ')}`);
  ctx.check(errorCount === 0, 'soak client error', () => `soak clients saw ${errorCount} errors: ${results.flatMap((r) => r.errors).slice(0, 5).join(' | ')}`);

  // Memory and descriptors, first period against last.
  const end = seconds * 1000;
  const first = sampler.samples.filter((s) => s.atMs < periodMs);
  const last = sampler.samples.filter((s) => s.atMs >= end - periodMs && s.atMs <= end);
  const period = periodMs >= 60_000 ? 'minute' : `${round(periodMs / 1000)} s`;
  if (ctx.check(first.length > 0 && last.length > 0, 'soak sampled', () => `no samples of the supervisor in the first or last ${period} (${sampler.samples.length} in all)`)) {
    // Memory is judged after the warm-up: the supervisor's RSS climbs for the first minute or so
    // (heaps and the allocator's arenas sizing up to the load) and then stays flat; a leak keeps
    // climbing. So the last period is held against the middle one; the first is shown.
    const middle = sampler.samples.filter((s) => s.atMs >= end / 2 - periodMs / 2 && s.atMs < end / 2 + periodMs / 2);
    const rssFirst = median(first.map((s) => s.rss));
    const rssMiddle = median(middle.map((s) => s.rss));
    const rssLast = median(last.map((s) => s.rss));
    const rssMax = Math.max(...sampler.samples.map((s) => s.rss));
    ctx.figure(`soak supervisor RSS, first ${period} (median)`, round(rssFirst / MB), 'MB', { note: 'warm-up: shown, not judged' });
    ctx.figure(`soak supervisor RSS, middle ${period} (median)`, round(rssMiddle / MB), 'MB');
    // A short soak is warm-up from end to end: its growth is shown, not judged.
    const growthBound = round((rssMiddle + RSS_GROWTH_BOUND) / MB);
    ctx.figure(`soak supervisor RSS, last ${period} (median)`, round(rssLast / MB), 'MB', ctx.quick
      ? { note: `a short soak is all warm-up: not judged (in a full run: ≤ the middle median + ${RSS_GROWTH_BOUND / MB} MB = ${growthBound})` }
      : { max: growthBound, note: `bound: the middle ${period}'s median + ${RSS_GROWTH_BOUND / MB} MB` });
    ctx.figure('soak supervisor RSS, peak', round(rssMax / MB), 'MB', { max: RSS_PEAK_BOUND / MB, note: 'no runaway, in any run' });
    // Judged on medians: a leak raises the level, while the descriptors that runs opening and
    // finishing hold for a moment (their files, and the directories they fsync through the thread
    // pool) come in bursts: a minute's max varied by 60 with no trend. The descriptors left after
    // the soak are checked exactly, below.
    const fdsFirst = median(first.map((s) => s.fds));
    const fdsLast = median(last.map((s) => s.fds));
    ctx.figure(`soak supervisor fds, first ${period} (median; max ${Math.max(...first.map((s) => s.fds))})`, fdsFirst, 'fds');
    ctx.figure(`soak supervisor fds, last ${period} (median; max ${Math.max(...last.map((s) => s.fds))})`, fdsLast, 'fds', { max: fdsFirst + FD_SOAK_SLACK, note: `bound: the first ${period}'s median + ${FD_SOAK_SLACK}` });
  }
  const every = Math.max(1, Math.round(sampler.samples.length / 30));
  ctx.log(`supervisor RSS MB / fds, every ${every} s: ${sampler.samples.filter((_, i) => i % every === 0).map((s) => `${Math.round(s.rss / MB)}/${s.fds}`).join(' ')}`);
  let fds2 = fdCount(supervisor) ?? 0;
  for (let waited = 0; fds2 > fds0 + FD_SLACK && waited < 10_000; waited += 100) {
    await sleep(100);
    fds2 = fdCount(supervisor) ?? 0;
  }
  ctx.check(fds2 <= fds0 + FD_SLACK, 'soak fds back after clients', () => `the supervisor held ${fds0} descriptors before the soak, ${fds2} 10 s after its clients left (slack ${FD_SLACK})`);

  // Throughput.
  const perPeriod = (index: number) => results.reduce((sum, r) => sum + (r.recordsPerWindow[index] ?? 0), 0);
  const periods = Math.round(end / periodMs);
  ctx.figure('soak records', records, 'records', { note: `${runs} runs by ${clients.length} clients in ${round(wallMs / 1000)} s` });
  ctx.figure('soak records/s', Math.round(records / (wallMs / 1000)), 'records/s');
  ctx.figure(`soak records/s, first ${period}`, Math.round(perPeriod(0) / (periodMs / 1000)), 'records/s', { note: 'runs finished in it' });
  ctx.figure(`soak records/s, last ${period}`, Math.round(perPeriod(periods - 1) / (periodMs / 1000)), 'records/s');

  // Latency, first period against last. Other processes on the machine count in it too.
  ctx.figure('machine load average at the end of the soak', round(loadavg()[0] ?? 0, 2), 'runnable', { note: '1-minute average: the soak, its canary and whatever else runs on the machine' });
  judgeCanary(ctx, canaryResult, 1_000, 'soak canary');
  if (canaryResult !== null) canaryPeriods(ctx, canaryResult, goAt - canaryReady, periodMs, end, period);

  // Disk.
  const bytes = results.reduce((sum, r) => sum + r.bytes, 0);
  ctx.figure('soak run logs written', round(bytes / MB), 'MB', { note: 'each run directory removed once finished and checked' });
  ctx.figure('soak runs/ peak size', round(sampler.peakDiskBytes() / MB), 'MB');
  ctx.figure('soak supervisor log size', round(sizeOf(home.layout.supervisorLog) / MB, 2), 'MB');
}

/** The canary's windows that began in the first and in the last period, and the timing bound. */
function canaryPeriods(ctx: SectionContext, r: CanaryResult, offsetMs: number, periodMs: number, endMs: number, period: string): void {
  const within = (from: number, to: number) => r.windows.filter((w) => w.atMs - offsetMs >= from && w.atMs - offsetMs < to);
  const first = within(0, periodMs);
  const last = within(endMs - periodMs, endMs);
  if (!ctx.check(first.length > 0 && last.length > 0, 'soak canary windows', () => `the canary has no window in the first or last ${period} (${r.windows.length} windows)`)) return;
  const p50 = (ws: CanaryWindow[]) => round(median(ws.map((w) => w.p50Ms)), 2);
  const p99 = (ws: CanaryWindow[]) => round(Math.max(...ws.map((w) => w.p99Ms)), 2);
  const firstP99 = p99(first);
  const bound = round(Math.max(2 * firstP99, firstP99 + 5), 2);
  ctx.figure(`soak canary p50, first ${period}`, p50(first), 'ms', { note: 'median of its windows' });
  ctx.figure(`soak canary p50, last ${period}`, p50(last), 'ms');
  ctx.figure(`soak canary p99, first ${period}`, firstP99, 'ms', { note: 'the highest of its windows' });
  ctx.figure(`soak canary p99, last ${period}`, p99(last), 'ms', { max: bound, timing: true, note: 'bound: max(2 × first, first + 5 ms)' });
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
