/**
 * Running the canary (programs/canary.ts) beside a section's mischief, and judging what it saw:
 * no error at all, every record it published kept, and (a timing bound, judged only in full runs)
 * no call slower than `stallMs`.
 */
import { setPriority } from 'node:os';
import type { CanaryResult } from './programs/canary.js';
import type { SectionContext, Spawned } from './context.js';

export interface Canary {
  child: Spawned;
  /** Tells it to stop, waits for its result (null when it died or printed none). */
  stop(): Promise<CanaryResult | null>;
}

/**
 * Starts a canary on `home` (whose supervisor must be running) and waits until it is ready.
 * `niceness` (a section that measures stalls gives a negative one) is the priority its main thread
 * runs at, when this process may set it: on two busy cores the OS otherwise leaves the canary
 * itself unscheduled for 80 ms at times, which would count as the supervisor's stall.
 */
export async function startCanary(ctx: SectionContext, home: string, spec: { intervalMs?: number; windowMs?: number; niceness?: number } = {}): Promise<Canary> {
  const { niceness, ...programSpec } = spec;
  const child = ctx.program('canary', { home, ...programSpec }, { stdio: ['pipe', 'pipe', 'pipe'] });
  if (niceness !== undefined && child.process.pid !== undefined) {
    try {
      setPriority(child.process.pid, niceness);
    } catch (error) {
      ctx.log(`the canary runs at the usual priority, not niceness ${niceness} (${(error as Error).message}): its figures include how late the OS runs it`);
    }
  }
  const deadline = Date.now() + 30_000;
  while (!child.stdout().includes('"ready"')) {
    if (Date.now() > deadline || child.done) {
      throw new Error(`the canary did not get ready within 30 s (exit ${child.process.exitCode}): ${child.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    child,
    async stop() {
      child.process.stdin?.end('stop\n');
      const timer = setTimeout(() => child.process.kill('SIGKILL'), 30_000);
      await child.exited;
      clearTimeout(timer);
      const last = child.stdout().trim().split('\n').at(-1) ?? '';
      try {
        const parsed = JSON.parse(last) as CanaryResult | { event: string };
        return 'calls' in parsed ? parsed : null;
      } catch {
        return null;
      }
    },
  };
}

/** The longest a canary's SYNC may take: it includes an fsync, whatever the disk is doing. */
const SYNC_BOUND_MS = 10_000;

/**
 * Checks a canary's result: it ended with a result, saw no error, its run kept every record;
 * records its figures. `stallMs` is the longest a PING or a request may take, and a SYNC at
 * least SYNC_BOUND_MS (timing bounds).
 */
export function judgeCanary(ctx: SectionContext, result: CanaryResult | null, stallMs: number, label = 'canary'): void {
  if (!ctx.check(result !== null, `${label} ended`, () => `the ${label} died or printed no result`)) return;
  const r = result as CanaryResult;
  ctx.count(`${label} calls`, r.calls);
  ctx.check(r.errorCount === 0, `${label} saw an error`, () => `the ${label} saw ${r.errorCount} errors: ${r.errors.join('; ')}`);
  ctx.check(r.finishedRecords === r.records, `${label} record missing`, () => `the ${label} published ${r.records} records, its finished run holds ${r.finishedRecords}`);
  ctx.figure(`${label} p50`, r.p50Ms, 'ms');
  ctx.figure(`${label} p99`, r.p99Ms, 'ms');
  // A stall is judged on the calls that wait for the supervisor alone. A SYNC waits for fsync
  // too, which takes what the disk takes (seconds on a busy virtual disk): it has its own bound.
  // The bound judges each call less how late the canary's own thread was meanwhile (beyondOwnMs):
  // on these VMs (kernel without preemption) a process that waits for nothing can go unscheduled
  // for 70-80 ms while the machine is busy (RELIABILITY.md section 8), at any priority; that
  // wait is the machine's, not the supervisor's. The whole times are reported beside it.
  const s = r.slowestMs;
  const b = r.beyondOwnMs;
  const own = (kind: keyof CanaryResult['ownLateMs']) => `the ${label}'s own thread was up to ${r.ownLateMs[kind]} ms late meanwhile`;
  ctx.figure(`${label} slowest PING`, s.ping, 'ms', { note: own('ping') });
  ctx.figure(`${label} slowest publish + request to its run`, s.request, 'ms', { note: own('request') });
  ctx.figure(`${label} slowest SYNC`, s.sync, 'ms', { note: `waits for fsync: the disk's time counts; ${own('sync')}` });
  const beyond = `the slowest call less how late the ${label}'s own thread was during it`;
  ctx.figure(`${label} PING, beyond its own lateness`, b.ping, 'ms', { max: stallMs, timing: true, note: beyond });
  ctx.figure(`${label} publish + request, beyond its own lateness`, b.request, 'ms', { max: stallMs, timing: true, note: beyond });
  ctx.figure(`${label} SYNC, beyond its own lateness`, b.sync, 'ms', { max: Math.max(stallMs, SYNC_BOUND_MS), timing: true, note: beyond });
  ctx.figure(`${label} own thread, latest`, r.ownWorstLateMs, 'ms', { note: `a ${label} timer due every 5 ms, late by the OS's scheduling or its own GC` });
}
