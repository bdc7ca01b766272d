/**
 * The limit of open files: the supervisor started the way users start it, under
 * `prlimit --nofile=N:N` (the detached daemon inherits it; both limits, because Node raises the
 * soft one to the hard one at startup). A holder process (programs/fd-holder.ts) opens
 * connections until it is refused; then, at the cap, the clients already there must keep
 * working, runs are opened until descriptors run out, and connections must be taken again once
 * some close. The supervisor must never crash, and must not flood its log.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type Client, connect, ErrorCode, type Run } from '../../../lib/index.js';
import { processAlive } from '../../../lib/daemon.js';
import { cliPath, type SectionContext } from '../context.js';
import type { Refusal } from '../programs/fd-holder.js';
import { ended, tell, waitEvent } from './talk.js';
import { linesSince, logLines } from './logs.js';

const WAIT_MS = 30_000;
const CONNECT_MS = 3_000;

interface Limit {
  fileLimit: number;
  baseline: number;
  reserve: number;
  maxConnections: number;
}

export async function fileLimit(ctx: SectionContext): Promise<void> {
  const limit = ctx.quick ? 128 : 1024;
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
  } catch {
    ctx.skip('fd limit: prlimit (util-linux) is not installed');
    return;
  }
  const home = ctx.home();
  const starter = ctx.spawn('prlimit', [`--nofile=${limit}:${limit}`, process.execPath, cliPath, 'start', '--home', home.home, '--idle-timeout-ms', '0'], { env: { ...process.env, NO_COLOR: '1' } });
  const { code } = await starter.exited;
  if (!ctx.check(code === 0, 'fds: supervisor started under prlimit', () => `prlimit ... muxvisor start exited ${code}: ${starter.stderr()}`)) return;
  const pid = home.supervisorPid() as number;
  const soft = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1];
  if (Number(soft) !== limit) {
    ctx.skip(`fd limit: the supervisor's limit of open files is ${soft}, not the ${limit} prlimit set`);
    return;
  }
  const logBefore = logLines(home.layout.supervisorLog);
  const control = await connect({ home: home.home, name: 'exhaustion-fd-control', start: false, handleExit: false });
  try {
    const cap = (await control.status()).connectionLimit as Limit;
    ctx.check(cap.fileLimit === limit && cap.maxConnections === limit - cap.baseline - cap.reserve, 'fds: the cap follows the limit', () => `connectionLimit: ${JSON.stringify(cap)}`);
    ctx.figure('fds: connections at the cap', cap.maxConnections, 'connections', { note: `limit of open files ${limit}: ${cap.baseline} open at start, ${cap.reserve} kept for runs and workers` });
    const holder = ctx.program('fd-holder', { home: home.home, max: cap.maxConnections + 50, refusals: 5, timeoutMs: CONNECT_MS }, { stdio: ['pipe', 'pipe', 'pipe'] });
    const holding = await waitEvent(holder, 'holding', WAIT_MS, ctx.signal);
    const refusals = holding.refusals as Refusal[];
    ctx.check(Number(holding.opened) + 1 === cap.maxConnections, 'fds: refused exactly at the cap', () => `the holder opened ${String(holding.opened)} connections beside the control one; the cap is ${cap.maxConnections}`);
    checkRefusals(ctx, refusals, cap);
    await atTheCap(ctx, home.home, control, holder, Number(holding.opened));
    const runsOpened = await runsUntilRefused(ctx, home.home, control, holder);
    // Recovery: as soon as some close, new clients are taken again.
    tell(holder, 'close 10');
    await waitEvent(holder, 'closed', WAIT_MS, ctx.signal, 1);
    const closedAt = performance.now();
    let again: Client | null = null;
    for (let tries = 0; again === null && performance.now() - closedAt < 10_000; tries++) {
      again = await connect({ home: home.home, name: 'exhaustion-fd-again', start: false, timeoutMs: CONNECT_MS, handleExit: false }).catch(() => null);
    }
    ctx.figure('fds: time to take a client again after 10 closed', Math.round(performance.now() - closedAt), 'ms', { max: 1_000, timing: true });
    if (ctx.check(again !== null, 'fds: clients taken again after some close', () => 'no connect succeeded within 10 s of 10 connections closing')) {
      const run = await (again as Client).openRun('fd-after');
      run.publish({ i: 0 });
      ctx.check((await run.finish()).records === 1, 'fds: the new client works', () => 'its run did not record its record');
      await (again as Client).close();
    }
    tell(holder, 'exit');
    await ended(holder);
    const status = await control.status();
    ctx.check((status.server as { pid: number }).pid === pid && processAlive(pid), 'fds: the supervisor never crashed', () => `status from pid ${(status.server as { pid: number }).pid}, started as ${pid}`);
    const logged = linesSince(logBefore, logLines(home.layout.supervisorLog));
    const refusedLines = logged.byMsg.get('refused connections over the cap') ?? 0;
    ctx.check(refusedLines <= 2, 'fds: refusals logged sparingly', () => `${refusedLines} lines "refused connections over the cap" for ${refusals.length + 2} refusals`);
    ctx.figure('fds: supervisor log lines', logged.lines, 'lines', { max: 30 + 5 * runsOpened, note: `${runsOpened} runs opened and finished; ${JSON.stringify(Object.fromEntries(logged.byMsg))}` });
  } finally {
    await control.close().catch(() => undefined);
  }
  const stop = await ctx.cli(['stop', '--home', home.home]);
  ctx.check(stop.code === 0, 'fds: supervisor stops', () => `muxvisor stop exited ${stop.code}: ${stop.stderr}`);
}

/** Every refusal: MUXVISOR_OVERLOADED with the numbers, well before the connect's deadline. */
function checkRefusals(ctx: SectionContext, refusals: Refusal[], cap: Limit): void {
  ctx.check(refusals.length === 5, 'fds: every connect beyond the cap refused', () => `${refusals.length} refusals of 5 attempts`);
  const expected = `too many connections: ${cap.maxConnections} open, the supervisor takes ${cap.maxConnections} (its limit of open files is ${cap.fileLimit}, ${cap.reserve} of them kept for runs and workers)`;
  for (const r of refusals) {
    ctx.check(r.code === ErrorCode.Overloaded && r.message.startsWith(expected), 'fds: refusal typed, with the numbers', () => `a connect beyond the cap failed with ${r.code}: ${r.message}`);
  }
  if (refusals[0]) ctx.log(`refusal: ${refusals[0].code}: ${refusals[0].message}`);
  ctx.figure('fds: slowest refusal', Math.max(0, ...refusals.map((r) => r.ms)), 'ms', { max: CONNECT_MS / 2, note: 'a refusal, not a deadline' });
}

/** At the cap: the clients there keep working; a client that may start a supervisor starts none. */
async function atTheCap(ctx: SectionContext, home: string, control: Client, holder: ReturnType<SectionContext['program']>, held: number): Promise<void> {
  ctx.check((await control.ping()) >= 0, 'fds: ping at the cap', () => 'no PONG');
  const run = await control.openRun('fd-at-cap');
  for (let i = 0; i < 200; i++) run.publish({ i });
  ctx.check((await run.sync()).records === 200, 'fds: sync at the cap', () => 'SYNC did not count 200 records');
  ctx.check((await run.finish()).records === 200, 'fds: finish at the cap', () => 'FINISH did not count 200 records');
  tell(holder, 'ping');
  const pinged = await waitEvent(holder, 'pinged', WAIT_MS, ctx.signal);
  ctx.check(pinged.ok === held && pinged.failedCount === 0, 'fds: every held connection answers at the cap', () => `pinged: ${JSON.stringify(pinged)}`);
  const started = performance.now();
  const error = await connect({ home, name: 'exhaustion-may-start', timeoutMs: 5_000, handleExit: false }).then((c) => (c.destroy(), null), (e: unknown) => e as { code: string });
  ctx.check(error?.code === ErrorCode.Overloaded && performance.now() - started < 2_500, 'fds: connect (may start one) refused, none started', () => `connect({start: true}) at the cap: ${error?.code ?? 'connected'} after ${Math.round(performance.now() - started)} ms`);
}

/**
 * Opens runs until descriptors run out: the one refused must be told why (MUXVISOR_STORAGE,
 * EMFILE), the supervisor keeps answering its clients, and finishing the runs frees them.
 * Returns how many runs were open.
 */
async function runsUntilRefused(ctx: SectionContext, home: string, control: Client, holder: ReturnType<SectionContext['program']>): Promise<number> {
  const runs: Run[] = [];
  let refusal: { code: string; message: string } | null = null;
  while (refusal === null && runs.length < 500) {
    try {
      runs.push(await control.openRun(`fd-run-${runs.length}`));
    } catch (error) {
      refusal = error as { code: string; message: string };
    }
  }
  ctx.figure('fds: runs opened at the cap before descriptors ran out', runs.length, 'runs');
  ctx.check(refusal?.code === ErrorCode.Storage && refusal.message.includes('EMFILE'), 'fds: OPEN with no descriptor left: typed', () => `OPEN at the limit: ${refusal ? `${refusal.code}: ${refusal.message}` : 'never refused'}`);
  if (refusal) ctx.log(`run refused: ${refusal.code}: ${refusal.message}`);
  // A run on a worker thread of its own: the thread cannot even load its modules.
  const dedicated = await control.openRun('fd-dedicated', { dedicated: true }).then((r) => (runs.push(r), null), (e: unknown) => e as { code: string; message: string });
  ctx.check(dedicated !== null && typeof dedicated.code === 'string' && dedicated.message.includes('EMFILE'), 'fds: OPEN of a dedicated run with no descriptor left: typed', () => `OPEN dedicated at the limit: ${dedicated ? `${dedicated.code}: ${dedicated.message}` : 'succeeded'}`);
  if (dedicated) ctx.log(`dedicated run refused: ${dedicated.code}: ${dedicated.message}`);
  ctx.check((await control.ping()) >= 0, 'fds: ping with no descriptor left', () => 'no PONG');
  tell(holder, 'ping');
  const pinged = await waitEvent(holder, 'pinged', WAIT_MS, ctx.signal, 1);
  ctx.check(pinged.failedCount === 0, 'fds: held connections answer with no descriptor left', () => `pinged: ${JSON.stringify(pinged)}`);
  // What a newcomer sees when descriptors ran out under the cap: one connection closes, runs take
  // what they can of the descriptors (a run needs two at once, to create its log), newcomers take
  // the rest, and then the OS refuses the accept: the client must still get a typed error, soon.
  tell(holder, 'close 1');
  await waitEvent(holder, 'closed', WAIT_MS, ctx.signal);
  for (let k = 0; k < 10; k++) {
    const more = await control.openRun(`fd-run-${runs.length}`).catch(() => null);
    if (more === null) break;
    runs.push(more);
  }
  const newcomers: Client[] = [];
  let newcomer: { code?: string; message?: string } | null = null;
  let ms = 0;
  while (newcomer === null && newcomers.length < 5) {
    const started = performance.now();
    await connect({ home, name: 'exhaustion-no-fd', start: false, timeoutMs: CONNECT_MS, handleExit: false }).then(
      (c) => newcomers.push(c),
      (e: unknown) => (newcomer = e as { code?: string; message?: string }),
    );
    ms = Math.round(performance.now() - started);
  }
  const seen = newcomer as { code?: string; message?: string } | null;
  ctx.check(seen !== null && typeof seen.code === 'string' && seen.code.startsWith('MUXVISOR_') && ms < CONNECT_MS, 'fds: connect with no descriptor left: typed, not a hang', () => `connect: ${JSON.stringify(seen)} after ${ms} ms (${newcomers.length} taken before)`);
  ctx.log(`connect with no descriptor left (${newcomers.length} taken first): ${seen?.code}: ${seen?.message} after ${ms} ms`);
  for (const c of newcomers) c.destroy();
  await Promise.all(runs.map((run) => run.finish()));
  return runs.length;
}
