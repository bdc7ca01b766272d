/**
 * Hostile input (issue 7): a fuzzer speaks to a live supervisor, started as users start it,
 * through its socket, for `--fuzz-cases` cases (fuzz/driver.ts lists the families), while the
 * canary works beside it. Each case must be answered or closed with a typed error (fuzz/case.ts).
 * Around it all:
 * - the supervisor is the same process at the end, and its logs hold no error or crash line;
 * - its RSS, sampled every 50 ms, stays under SUPERVISOR_RSS_BOUND;
 * - its main thread is never more than 100 ms late (status.eventLoopDelay, timing);
 * - the canary sees no error, loses nothing, and no PING or request of its takes longer than
 *   100 ms (timing; a SYNC, which waits for fsync, 10 s: canary.ts). It runs at a higher priority
 *   than the fuzzer and the supervisor (CANARY_NICENESS), as a user's foreground work would;
 * - afterwards every fuzz connection is gone, no run is left open, no request pending, no worker
 *   failed, its file descriptors are back where they were, and a fresh client can open a run,
 *   publish, sync and finish.
 */
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { connect } from '../../../lib/index.js';
import { processAlive } from '../../../lib/daemon.js';
import { judgeCanary, startCanary } from '../canary.js';
import { fdCount, pause, rssBytes } from '../context.js';
import type { Section } from '../section.js';
import type { SectionContext } from '../context.js';
import { FuzzConn } from '../fuzz/conn.js';
import { runFuzz, running } from '../fuzz/driver.js';
import { freshClientWorks, sampleLoopDelay, sampleRss, troubleInLogs } from '../fuzz/health.js';
import { PUSHBACK_BOUND_BYTES } from '../fuzz/slow.js';
import { helloFrame } from '../fuzz/wire.js';

/**
 * The supervisor's memory while fuzzed, from its parts: ~80 MB idle; 16 dedicated worker threads
 * (its own limit, ~12 MB each: ~190 MB); two heavy cases at once, each with a 16 MiB frame in,
 * its 16 MiB answer out, or a slow reader's ~10 MB; and what the allocator keeps after such
 * peaks (after fuzzing, with a JS heap of 9 MB, RSS stays at 300-410 MB: it plateaus, 3 rounds
 * of 1500 cases gave 373, 415, 407 MB after a forced full GC). Peaks measured: 330-480 MB at 400
 * cases, 581 MB at 5000.
 */
const SUPERVISOR_RSS_BOUND = 700 * 1024 * 1024;
/** File descriptors the supervisor may hold after the fuzzing beyond those it held before. */
const FD_SLACK = 4;
/**
 * How long the descriptors may take to come back after the last run finished: the threads of up
 * to 16 dedicated workers are stopped then, and on two busy cores that took up to 3 s.
 */
const FD_SETTLE_MS = 10_000;
const MB = 1024 * 1024;

export const fuzz: Section = {
  name: 'fuzz',
  title: 'fuzz: hostile input to a live supervisor',
  async run(ctx) {
    const home = ctx.home();
    const supervisor = await ctx.startSupervisor(home, 'supervisor started');
    if (supervisor === null) return;
    const token = readFileSync(home.layout.tokenPath, 'utf8').trim();

    // The payload limit, from a WELCOME.
    const probe = await FuzzConn.open(home.layout.socketPath);
    probe.write(helloFrame(token));
    await probe.until(() => probe.received.length > 0, 5_000);
    const cap = ((probe.received[0]?.value as { limits?: { maxPayloadBytes?: number } } | undefined)?.limits?.maxPayloadBytes) ?? 0;
    probe.destroy();
    if (!ctx.check(cap > 0, 'handshake', () => `no WELCOME with limits: ${JSON.stringify(probe.received[0] ?? null)}`)) return;

    const control = await connect({ home: home.home, start: false, name: 'chaos-fuzz-control', handleExit: false, exportEnv: false });
    try {
      // Both shared worker threads exist from here on (each holds a few fds of its own).
      for (const name of ['warm-up-1', 'warm-up-2']) await (await control.openRun(`fuzz-${name}`)).finish();
      const fdsBefore = fdCount(supervisor) ?? 0;
      // The canary stands for the user's own work, which the OS schedules before the fuzzer's: a
      // stall it sees is then the supervisor's, not its own wait for a core (CANARY_NICENESS).
      const canary = await startCanary(ctx, home.home, { niceness: CANARY_NICENESS });
      const canaryReady = Date.now();
      const rssBefore = rssBytes(supervisor) ?? 0;
      const sampler = sampleRss(supervisor, 50, () => [...running].join(' | '));
      const loopDelay = sampleLoopDelay(control);
      ctx.log(`supervisor ${supervisor}: ${Math.round(rssBefore / MB)} MB, ${fdsBefore} fds; ${ctx.options.fuzzCases} cases`);
      // Building the cases (up to 16 MiB each) is this process's work, not the supervisor's: it
      // runs at a lower priority so that the canary measures what the supervisor does with them.
      const niced = lowerPriority(ctx);
      let stats;
      try {
        stats = await runFuzz(ctx, { socketPath: home.layout.socketPath, token, cap, control }, ctx.options.fuzzCases);
      } finally {
        if (niced) restorePriority(ctx);
      }
      const rss = sampler.stop();
      const delay = await loopDelay.stop();
      const seen = await canary.stop();
      judgeCanary(ctx, seen, 100);
      const worst = seen?.windows.reduce((a, b) => (b.maxMs > a.maxMs ? b : a));
      if (worst) {
        const from = canaryReady + worst.atMs;
        const during = stats.timeline.filter((t) => t.start < from + 1000 && t.end > from).map((t) => t.label);
        const byFamily = new Map<string, number>();
        for (const label of during) byFamily.set(label.split(':')[0] as string, (byFamily.get(label.split(':')[0] as string) ?? 0) + 1);
        ctx.log(`the canary's slowest second (${worst.maxMs} ms, at ${(worst.atMs / 1000).toFixed(1)} s) overlapped ${[...byFamily].map(([f, n]) => `${n} ${f}`).join(', ')}; the heavy ones: ${during.filter((l) => /huge|slow|length: a|dedicated|in-flight/.test(l)).join(' | ') || 'none'}`);
      }

      ctx.check(processAlive(supervisor) && home.supervisorPid() === supervisor, 'supervisor survived', () => `supervisor ${supervisor} is ${processAlive(supervisor) ? `alive but the pid file names ${home.supervisorPid()}` : 'gone'}`);
      const trouble = troubleInLogs(home.layout.supervisorLog, home.layout.daemonOut);
      ctx.check(trouble.length === 0, 'supervisor logged trouble', () => `${trouble.length} error/fatal lines, e.g. ${trouble.slice(0, 3).join(' | ')}`);
      ctx.figure('supervisor RSS before', Math.round(rssBefore / MB), 'MB');
      ctx.figure('supervisor peak RSS', Math.round(rss.peakBytes / MB), 'MB', { max: SUPERVISOR_RSS_BOUND / MB, note: `${rss.samples} samples, longest gap ${rss.longestGapMs} ms` });
      const after = (await control.request('status', undefined, { timeoutMs: 5_000 })) as {
        process: { rssBytes: number; heapUsedBytes: number }; eventLoopDelay: { maxMs: number; p99Ms: number };
      };
      ctx.figure('supervisor RSS after', Math.round(after.process.rssBytes / MB), 'MB', { note: `JS heap used ${Math.round(after.process.heapUsedBytes / MB)} MB` });
      // The supervisor's own view of a stall: how late its main thread ran what was due while the
      // cases ran (the canary's figure adds its own process's scheduling and the machine's).
      ctx.figure('supervisor event-loop delay, p99 since start', after.eventLoopDelay.p99Ms, 'ms');
      ctx.figure('supervisor event-loop delay, worst while fuzzing', delay.maxMs, 'ms', {
        max: 100, timing: true, note: `worst 1-s window of ${delay.samples} status samples, at ${(delay.atMs / 1000).toFixed(1)} s`,
      });
      ctx.log(`supervisor peak RSS ${Math.round(rss.peakBytes / MB)} MB while: ${rss.peakDuring || 'no case ran'}`);

      // Every fuzz connection gone, every run of theirs finished, nothing pending.
      let settled = { connections: -1, open: [] as string[], pending: -1, problems: [] as string[] };
      for (let i = 0; i < 50; i++) {
        const connections = ((await control.request('connections.list', undefined, { timeoutMs: 5_000 })) as unknown[]).length;
        const runs = (await control.request('runs.list', { recorded: false }, { timeoutMs: 5_000 })) as { open: Array<{ run: string }> };
        const status = (await control.request('status', undefined, { timeoutMs: 5_000 })) as { pendingRequests: number; problems: string[] };
        settled = { connections, open: runs.open.map((r) => r.run), pending: status.pendingRequests, problems: status.problems };
        if (connections === 1 && runs.open.length === 0 && status.pendingRequests === 0) break;
        await pause(100);
      }
      ctx.check(settled.connections === 1, 'fuzz connections left open', () => `${settled.connections - 1} connections besides the control one are still open after every case ended`);
      ctx.check(settled.open.length === 0, 'runs left open', () => `${settled.open.length} runs are still open after their connections closed: ${settled.open.slice(0, 5).join(', ')}`);
      ctx.check(settled.pending === 0, 'requests left pending', () => `${settled.pending} requests are pending with only the control connection left`);
      ctx.check(settled.problems.length === 0, 'supervisor reports problems', () => settled.problems.join('; '));
      // A dedicated worker's thread is stopped after its run finished, and takes a while to go
      // (its isolate is torn down): its descriptors are back within seconds, or they leaked.
      let fdsAfter = fdCount(supervisor) ?? 0;
      const fdsBy = Date.now() + FD_SETTLE_MS;
      while (fdsAfter > fdsBefore + FD_SLACK && Date.now() < fdsBy) {
        await pause(100);
        fdsAfter = fdCount(supervisor) ?? 0;
      }
      ctx.figure('supervisor fds after fuzzing', fdsAfter, 'fds', { max: fdsBefore + FD_SLACK, note: `${fdsBefore} before; counted once runs and connections had settled, again until back or ${FD_SETTLE_MS / 1000} s` });

      const fresh = await freshClientWorks(home.home, 100);
      ctx.check(fresh === null, 'fresh client after fuzzing', () => `a new client could not do a run's whole life: ${fresh}`);

      ctx.figure('fuzz duration', stats.ms / 1000, 's');
      ctx.figure('fuzz cases per second', Math.round(stats.cases / (stats.ms / 1000)), 'cases/s');
      for (const [name, value] of stats.observed) {
        const bound = name === 'slow reader bytes read before push-back' ? { max: PUSHBACK_BOUND_BYTES / MB } : {};
        const mb = name.includes('bytes');
        ctx.figure(`fuzz ${name}`, mb ? Math.round((value / MB) * 10) / 10 : value, mb ? 'MB' : '', bound);
      }
    } finally {
      await control.close().catch(() => {});
    }
  },
};

/** The niceness the fuzzing thread runs at while it builds and sends cases. */
const FUZZ_NICENESS = 10;
/**
 * The canary's niceness (needs root; without it the canary runs at 0). At 0, on two cores shared
 * with the supervisor's threads and the fuzzer, the OS left the canary unscheduled for up to 80 ms
 * while its call was answered (its own 5 ms timer that late: `ownLateMs`). Even at -10 an idle
 * process is late by up to 70-80 ms at times while the fuzzer runs (the kernel does not preempt):
 * the stall bound judges each call less that (judgeCanary).
 */
const CANARY_NICENESS = -10;

function lowerPriority(ctx: SectionContext): boolean {
  try {
    setPriority(FUZZ_NICENESS);
    return true;
  } catch (error) {
    ctx.log(`could not lower the fuzzer's priority: ${(error as Error).message}`);
    return false;
  }
}

/** Back to the usual priority: what this process spawns later must not inherit the lower one. */
function restorePriority(ctx: SectionContext): void {
  try {
    setPriority(0);
  } catch (error) {
    // Raising a priority needs root: later sections then run, and spawn, at the lower one.
    ctx.log(`could not restore the priority after fuzzing (${(error as Error).message}): later sections run at niceness ${FUZZ_NICENESS}`);
  }
}
