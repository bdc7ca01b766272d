/**
 * A full disk: the whole home (run logs, meta.json, the supervisor's own log) on a tmpfs of
 * 8 MiB, filled on purpose with a file that is removed again to free space. The supervisor is
 * started the way users start it (`muxvisor start`); writers are client processes
 * (programs/disk-writer.ts). Four scenes, each on its own run:
 * - A, space comes back: writers publish with periodic syncs until a SYNC fails, go on a little,
 *   space is freed, they sync and finish. Nothing may be lost, not even the unacknowledged.
 * - B, FINISH on a full disk: answered MUXVISOR_STORAGE at once, written once there is room.
 * - C, a flood into a full disk: the run fails once 32 MiB wait, the supervisor's memory stays
 *   bounded, and the run's end says why.
 * - D, the supervisor SIGKILLed on a full disk: the next one recovers the run, acknowledged
 *   records kept, as crashed.
 * Meanwhile the supervisor must stay up and answer, and not flood its log.
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Client, connect, ErrorCode } from '../../../lib/index.js';
import { waitForExit } from '../../../lib/daemon.js';
import type { TempHome } from '../../helpers/home.js';
import { fill, freeBytes, mountTmpfs, unmount } from '../../helpers/tmpfs.js';
import { pause, rssBytes, type SectionContext, type Spawned } from '../context.js';
import type { DiskWriterSpec } from '../programs/disk-writer.js';
import type { Rng } from '../random.js';
import { type ChildEvent, ended, tell, waitEvent } from './talk.js';
import { checkRunLog, linesSince, logLines, readMeta } from './logs.js';

const DISK_BYTES = 8 * 1024 * 1024;
const WAIT_MS = 30_000;
/** What the supervisor keeps unwritten per run before failing it (storage-trouble.ts). */
const MAX_UNWRITTEN = 32 * 1024 * 1024;

interface Scene {
  ctx: SectionContext;
  rng: Rng;
  home: TempHome;
  control: Client;
  pid: number;
  filler: string;
}

export async function fullDisk(ctx: SectionContext): Promise<void> {
  const rng = ctx.rng.fork();
  const home = ctx.home();
  const refused = mountTmpfs(home.home, DISK_BYTES);
  if (refused !== null) {
    ctx.skip(`full disk: ${refused}`);
    return;
  }
  let control: Client | null = null;
  try {
    if (await ctx.startSupervisor(home, 'disk: supervisor started') === null) return;
    control = await connect({ home: home.home, name: 'exhaustion-control', start: false, handleExit: false });
    const scene: Scene = { ctx, rng, home, control, pid: control.server.pid, filler: join(home.home, 'filler') };
    const logBefore = logLines(home.layout.supervisorLog);
    // The full run fills and frees the disk several times, with other sizes each time.
    const cycles = ctx.quick ? 1 : 4;
    for (let cycle = 0; cycle < cycles && !ctx.signal.aborted; cycle++) await timed(ctx, `scene A, cycle ${cycle}`, () => spaceComesBack(scene, cycle));
    await timed(ctx, 'scene B', () => finishOnFullDisk(scene));
    await timed(ctx, 'scene C', () => flood(scene));
    const logged = linesSince(logBefore, logLines(home.layout.supervisorLog));
    const status = await control.status();
    const dropped = (status.problems as string[]).filter((p) => p.includes('supervisor log were dropped'));
    ctx.check(dropped.length === 0, 'disk: supervisor log not flooded', () => `the supervisor dropped log lines while the disk was full: ${dropped.join('; ')}`);
    const failures = logged.byMsg.get('run log write failed') ?? 0;
    // About five lines a run (opened, finishing, finished, write failed, works again); one per failure was hundreds.
    const runs = cycles * (writersPerCycle(ctx) + 1) + 2;
    ctx.figure('disk: supervisor log lines (scenes A-C)', logged.lines, 'lines', { max: 10 + 8 * runs, note: `${runs} runs; ${failures} lines "run log write failed" (at most one per run per 5 s)` });
    await control.close();
    control = null;
    await timed(ctx, 'scene D', () => killedOnFullDisk(scene));
    const stop = await ctx.cli(['stop', '--home', home.home]);
    ctx.check(stop.code === 0, 'disk: supervisor stops', () => `muxvisor stop exited ${stop.code}: ${stop.stderr}`);
  } finally {
    control?.destroy();
    await home.stopSupervisor().catch(() => undefined);
    rmSync(join(home.home, 'filler'), { force: true });
    if (!unmount(home.home)) ctx.violation('disk: tmpfs unmounted', `could not unmount the tmpfs at ${home.home}`);
  }
}

async function timed(ctx: SectionContext, what: string, work: () => Promise<void>): Promise<void> {
  const started = performance.now();
  await work();
  ctx.log(`disk: ${what} took ${Math.round(performance.now() - started)} ms`);
}

function writersPerCycle(ctx: SectionContext): number {
  return ctx.quick ? 1 : 3;
}

function writer(s: Scene, spec: Partial<DiskWriterSpec> & Pick<DiskWriterSpec, 'run' | 'mode'>): Spawned {
  const full: DiskWriterSpec = {
    home: s.home.home, recordBytes: s.rng.int(100, 400), initial: s.rng.int(5, 50), syncEvery: s.rng.int(5, 40),
    roundsAfterFull: 3, after: 50, floodBytes: 0, timeoutMs: 10_000, ...spec,
  };
  return s.ctx.program('disk-writer', full, { stdio: ['pipe', 'pipe', 'pipe'] });
}

function logBytes(s: Scene, run: string): number {
  try {
    return statSync(join(s.home.home, 'runs', run, 'run.mvlog')).size;
  } catch {
    return 0;
  }
}

/** Scene A: publish and sync until the disk is full, go on a little, free space, sync, finish. */
async function spaceComesBack(s: Scene, cycle: number): Promise<void> {
  const { ctx } = s;
  const runs = Array.from({ length: writersPerCycle(ctx) }, (_, k) => `disk-a${cycle}-${k}`);
  const writers = runs.map((run) => writer(s, { run, mode: 'continue', roundsAfterFull: ctx.quick ? 3 : 10 }));
  await Promise.all(writers.map((w) => waitEvent(w, 'ready', WAIT_MS, ctx.signal)));
  const before = runs.reduce((sum, run) => sum + logBytes(s, run), 0);
  const headroom = s.rng.int(ctx.quick ? 128 : 512, ctx.quick ? 384 : 2048) * 1024;
  fill(s.filler, headroom);
  const free = freeBytes(s.home.home);
  for (const w of writers) tell(w, 'go');
  const waiting = await Promise.all(writers.map((w) => waitEvent(w, 'waiting', WAIT_MS, ctx.signal)));
  const written = runs.reduce((sum, run) => sum + logBytes(s, run), 0) - before;
  if (cycle === 0) ctx.figure('disk: bytes written before ENOSPC', written, 'bytes', { note: `${runs.length} writer(s); ${free} bytes free after the filler` });
  for (const [k, w] of writers.entries()) {
    const full = (await waitEvent(w, 'full', 1_000)).error as { code: string; message: string } | null;
    expectStorage(ctx, 'A: the SYNC that meets the full disk', runs[k] as string, full);
  }
  await whileFull(s, runs);
  rmSync(s.filler);
  const freedAt = performance.now();
  for (const w of writers) tell(w, 'freed');
  const synced = await Promise.all(writers.map((w) => waitEvent(w, 'synced', WAIT_MS, ctx.signal)));
  if (cycle === 0) ctx.figure('disk: first durable SYNC after space was freed', Math.round(performance.now() - freedAt), 'ms', { max: 2_000, timing: true });
  for (const [k, w] of writers.entries()) {
    const run = runs[k] as string;
    const finished = await waitEvent(w, 'finished', WAIT_MS, ctx.signal);
    const done = await waitEvent(w, 'done', WAIT_MS, ctx.signal);
    const published = Number(finished.published);
    const result = finished.result as { status?: string; records?: number } | undefined;
    ctx.check((synced[k]?.result as { records?: number } | undefined)?.records === Number(waiting[k]?.published), `A: ${run} kept what it could not write`, () => `after space was freed, SYNC said ${JSON.stringify(synced[k]?.result)}; ${String(waiting[k]?.published)} records had been published`);
    ctx.check(result?.status === 'ok' && result.records === published, `A: ${run} finished ok`, () => `FINISH after space was freed: ${JSON.stringify(finished)}`);
    const errors = (done.errors as Array<{ op: string; code: string; message: string }>);
    const other = errors.filter((e) => e.code !== ErrorCode.Storage);
    ctx.check(other.length === 0, `A: ${run} saw only MUXVISOR_STORAGE`, () => `the writer saw other errors: ${JSON.stringify(other.slice(0, 3))}`);
    checkRunLog(ctx, s.home.home, run, { acked: Number(waiting[k]?.acked), exactly: published });
    ctx.check(readMeta(s.home.home, run)?.status === 'ok', `A: ${run} meta says ok`, () => `meta.json of ${run}: ${JSON.stringify(readMeta(s.home.home, run))}`);
    await ended(w);
  }
}

/** What must hold while the disk is full: the supervisor answers, old and new clients alike. */
async function whileFull(s: Scene, open: string[]): Promise<void> {
  const { ctx, control } = s;
  const status = await control.status();
  ctx.check((status.server as { pid: number }).pid === s.pid, 'disk: same supervisor', () => `status answered from pid ${(status.server as { pid: number }).pid}, not ${s.pid}`);
  ctx.check((await control.ping()) >= 0, 'disk: ping while full', () => 'no PONG');
  for (const run of open) {
    const got = (await control.request('runs.get', { run, summary: false })) as { state: string };
    ctx.check(got.state === 'open', `disk: ${run} still open while full`, () => `runs.get says ${got.state}`);
  }
  const other = await connect({ home: s.home.home, name: 'exhaustion-newcomer', start: false, handleExit: false });
  try {
    ctx.check((await other.ping()) >= 0, 'disk: a new client while full', () => 'no PONG');
    const error = await other.openRun('disk-cannot-open').then(() => null, (e: unknown) => e as { code: string; message: string });
    ctx.check(error?.code === ErrorCode.Storage && error.message.includes('ENOSPC'), 'disk: OPEN on a full disk', () => `OPEN on a full disk: ${error === null ? 'succeeded' : `${error.code}: ${error.message}`}`);
  } finally {
    await other.close();
  }
}

function expectStorage(ctx: SectionContext, what: string, run: string, error: { code: string; message: string } | null | undefined): void {
  const ok = error?.code === ErrorCode.Storage && error.message.startsWith(`run ${run}: `) && error.message.includes('ENOSPC');
  ctx.check(ok, `${what}: typed, names the run and ENOSPC`, () => `${what} on ${run}: ${error ? `${error.code}: ${error.message}` : 'no error'}`);
  if (ok) ctx.log(`${what}: ${error?.code}: ${error?.message}`);
}

/** Scene B: FINISH on a full disk is answered at once and written once there is room. */
async function finishOnFullDisk(s: Scene): Promise<void> {
  const { ctx } = s;
  const run = 'disk-b';
  const w = writer(s, { run, mode: 'finish-while-full' });
  await waitEvent(w, 'ready', WAIT_MS, ctx.signal);
  fill(s.filler, s.rng.int(16, 128) * 1024);
  tell(w, 'go');
  const full = await waitEvent(w, 'full', WAIT_MS, ctx.signal);
  const finished = await waitEvent(w, 'finished', WAIT_MS, ctx.signal);
  const error = finished.error as { code: string; message: string } | undefined;
  expectStorage(ctx, 'B: FINISH on a full disk', run, error);
  ctx.check(error?.message.includes("the run's end (ok) is not written yet") === true, 'B: FINISH error says it is kept', () => `FINISH on a full disk: ${error?.message}`);
  const live = (await s.control.request('runs.get', { run, summary: false })) as { state: string };
  ctx.check(live.state === 'finishing', 'B: run finishing while full', () => `runs.get says ${live.state}`);
  rmSync(s.filler);
  const meta = await finalMeta(s, run);
  ctx.check(meta?.status === 'ok' && Number(meta.finishRetries) > 0, 'B: finish written once there is room', () => `meta.json of ${run}: ${JSON.stringify(meta)}`);
  if (meta) ctx.figure('disk: FINISH delayed by the full disk', Number(meta.finishDelayedMs), 'ms', { note: 'from the first failed attempt to the FINISH entry written (retried every 250 ms)' });
  checkRunLog(ctx, s.home.home, run, { acked: Number(full.acked), exactly: Number(finished.published) });
  tell(w, 'exit');
  await ended(w);
}

/** Scene C: a flood into a full disk fails the run at 32 MiB waiting; memory stays bounded. */
async function flood(s: Scene): Promise<void> {
  const { ctx } = s;
  const run = 'disk-c';
  const w = writer(s, { run, mode: 'flood', recordBytes: 64 * 1024, floodBytes: 4 * MAX_UNWRITTEN, initial: 10 });
  const ready = await waitEvent(w, 'ready', WAIT_MS, ctx.signal);
  const rssBefore = rssBytes(s.pid) ?? 0;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes(s.pid) ?? 0)), 20);
  fill(s.filler, 0);
  tell(w, 'go');
  let flooded: ChildEvent;
  try {
    flooded = await waitEvent(w, 'flooded', WAIT_MS, ctx.signal);
    await pause(100);
  } finally {
    clearInterval(sampler);
  }
  const growth = rssPeak - rssBefore;
  ctx.figure('disk: supervisor RSS growth under a flood into a full disk', Math.round(growth / 1024 / 1024), 'MiB', { max: 192, note: `${Math.round(Number(flooded.bytes) / 1024 / 1024)} MiB published before the run failed; a run keeps at most 32 MiB unwritten` });
  const warning = flooded.warning as { code: string; message: string } | null;
  ctx.check(warning !== null && warning.message.includes(`run ${run} is finishing (failed: `) && warning.message.includes('ENOSPC'), 'C: the flooding client is told the run failed', () => `warning: ${JSON.stringify(warning)}`);
  rmSync(s.filler);
  const meta = await finalMeta(s, run);
  ctx.check(meta?.status === 'failed' && String(meta.reason).includes(`more than the ${MAX_UNWRITTEN}`), 'C: run recorded as failed, with why', () => `meta.json of ${run}: ${JSON.stringify(meta)}`);
  checkRunLog(ctx, s.home.home, run, { acked: Number(ready.acked) });
  tell(w, 'exit');
  await ended(w);
}

/** Scene D: SIGKILL on a full disk with records waiting; the next supervisor recovers the run. */
async function killedOnFullDisk(s: Scene): Promise<void> {
  const { ctx } = s;
  const run = 'disk-d';
  const w = writer(s, { run, mode: 'continue', roundsAfterFull: 2 });
  await waitEvent(w, 'ready', WAIT_MS, ctx.signal);
  fill(s.filler, s.rng.int(16, 128) * 1024);
  tell(w, 'go');
  const waiting = await waitEvent(w, 'waiting', WAIT_MS, ctx.signal);
  process.kill(s.pid, 'SIGKILL');
  ctx.count('kill supervisor SIGKILL');
  await waitForExit(s.pid, 10_000);
  rmSync(s.filler);
  tell(w, 'freed');
  const started = performance.now();
  await ctx.startSupervisor(s.home, 'D: supervisor starts again');
  const again = await connect({ home: s.home.home, name: 'exhaustion-after-kill', start: false, handleExit: false });
  try {
    ctx.figure('disk: restart after SIGKILL on a full disk', Math.round(performance.now() - started), 'ms', { max: 5_000, timing: true });
    const meta = await finalMeta(s, run);
    ctx.check(meta?.status === 'crashed', 'D: run recovered as crashed', () => `meta.json of ${run}: ${JSON.stringify(meta)}`);
    checkRunLog(ctx, s.home.home, run, { acked: Number(waiting.acked) });
    const list = (await again.request('runs.list')) as { open: unknown[] };
    ctx.check(list.open.length === 0, 'D: no run left open', () => `open runs: ${JSON.stringify(list.open)}`);
    for (const earlier of ['disk-b', 'disk-c']) {
      ctx.check(readMeta(s.home.home, earlier)?.state === 'finished', `D: ${earlier} still finished`, () => `${JSON.stringify(readMeta(s.home.home, earlier))}`);
    }
  } finally {
    await again.close();
  }
  await ended(w);
}

/** meta.json of `run` once it says finished (null after 10 s). */
async function finalMeta(s: Scene, run: string): Promise<Record<string, unknown> | null> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const meta = readMeta(s.home.home, run);
    if (meta?.state === 'finished' || Date.now() > deadline || s.ctx.signal.aborted) return meta?.state === 'finished' ? meta : null;
    await pause(20, s.ctx.signal);
  }
}
