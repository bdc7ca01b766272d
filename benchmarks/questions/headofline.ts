/**
 * headofline: what a quiet client feels while others flood the supervisor. The quiet client is
 * its own process with one request in flight: PINGs (answered by the supervisor's main thread),
 * then REQUEST `echo`s to its own run's handler (on a worker thread), each timed into an HDR
 * histogram (µs). The bar (issue): its p99 under 5 ms while 10 others flood.
 *
 * Each case starts its processes once per variant and keeps them across its repetitions (see
 * harness/fleet.ts). Each repetition, every one opens a run (the quiet client warms up on it),
 * then the flooders go; the quiet client starts once the flood has run for 300 ms, and the
 * flooders stop (and finish their runs) after it is done. Cases:
 * - no flood: the quiet client alone, for context.
 * - 10 publishing at nice 19: 10 processes publish ~100 B records into runs of their own as fast
 *   as backpressure allows.
 * - 10 pipelining at nice 19: 10 processes keep 256 REQUEST `echo`s each in flight to their own runs.
 * - 10 publishing at nice 0: as the first, at the quiet client's and the server's priority.
 * At nice 19 the flooders take the CPU the server and the quiet client leave: the server stays
 * saturated, and the figure is its own queueing, not the kernel's. At nice 0, 12 busy processes
 * share two cores and the server and the quiet client wait for time slices: the figure is then
 * mostly the scheduler's, for the baseline too (tens of ms), and the loops stop at their budget,
 * so the percentiles rest on fewer round trips (a few dozen when they take 50 ms or more).
 * `flood` is what the flooders got through, summed over them: records per second from their `go`
 * until their finish was answered, or requests per second from `go` until the last came back. It
 * shows that the load was real, and how heavy it was on each side.
 * Quick mode: 2 flooders instead of 10, and no nice-0 case.
 * Baseline: the same processes over plain sockets to the raw server, which answers at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Fleet, Fleets, launchFleet, type Member } from '../harness/fleet.js';
import { startSupervisorAndBaseline } from '../harness/fixtures.js';
import type { Case, Metric, Question } from '../harness/question.js';
import type { FleetSpec, FloodResult, QuietResult } from '../programs/fleet.js';

const WINDOW = 256;

type Flood = { task: 'flood'; recordBytes: number } | { task: 'flood-requests'; window: number };

interface Load {
  name: string;
  flood: Flood | null;
  nice: number;
}

export const headofline: Question = {
  name: 'headofline',
  title: 'a quiet client’s latency while others flood',
  async setup({ quick }) {
    const { supervisor, raw, stop } = await startSupervisorAndBaseline();
    const fleets = new Fleets();
    // Quick: two flooders; the many-process path still runs, in seconds.
    const flooders = quick ? 2 : 10;
    const n = quick ? 100 : 3_000;
    const warmup = quick ? 100 : 1_000;
    const budgetMs = quick ? 500 : 2_000;
    const settleMs = quick ? 50 : 300;
    const publishing: Flood = { task: 'flood', recordBytes: 100 };
    const loads: Load[] = [
      { name: 'no flood', flood: null, nice: 0 },
      { name: `${flooders} publishing at nice 19`, flood: publishing, nice: 19 },
      { name: `${flooders} pipelining at nice 19`, flood: { task: 'flood-requests', window: WINDOW }, nice: 19 },
      ...(quick ? [] : [{ name: `${flooders} publishing at nice 0`, flood: publishing, nice: 0 }]),
    ];
    const latency: Metric[] = ['PING', 'REQUEST'].flatMap((target) => ['p50', 'p90', 'p99'].map((p) => ({ key: `${target} ${p}`, unit: 'µs', higherIsBetter: false })));
    const cases: Case[] = loads.map(({ name, flood, nice }) => {
      const rep = (program: string, at: { home: string } | { socket: string }) => async () => {
        const quiet: FleetSpec = { task: 'quiet', n, warmup, budgetMs, ...at };
        const others: FleetSpec[] = flood ? Array.from({ length: flooders }, () => ({ ...flood, nice, ...at })) : [];
        return quietUnderFlood(await fleets.get(name, program, () => launchFleet<Figures>(program, [quiet, ...others], 120_000)), settleMs);
      };
      const unit = flood?.task === 'flood' ? 'records/s' : 'requests/s';
      return {
        name, unit: 'µs', higherIsBetter: false,
        metrics: flood ? [...latency, { key: 'flood', unit, higherIsBetter: true }] : latency,
        contender: { label: 'muxvisor: quiet client, one in flight', run: rep('fleet-client.js', { home: supervisor.address }) },
        baseline: { label: 'raw socket, answers at once', run: rep('fleet-raw-client.js', { socket: raw.address }) },
      };
    });
    return {
      workload: `${n.toLocaleString('en')} PINGs, then as many REQUESTs (each loop at most ${budgetMs / 1000} s), after ${warmup.toLocaleString('en')} of each to warm up; floods: ~100 B publishes, or ${WINDOW} requests in flight, per flooder`,
      cases,
      async teardown() {
        try {
          await fleets.destroyAll();
        } finally {
          await stop();
        }
      },
    };
  },
};

type Figures = QuietResult | FloodResult;

/** One repetition: the quiet client (the first member) measured while the others flood (if any). */
function quietUnderFlood(fleet: Fleet<Figures>, settleMs: number): Promise<Record<string, number>> {
  return fleet.round(120_000, async (members) => {
    const [quiet, ...flooders] = members as [Member<Figures>, ...Array<Member<Figures>>];
    for (const f of flooders) f.go();
    if (flooders.length > 0) await sleep(settleMs);
    quiet.go();
    const { ping, request } = (await quiet.result()) as QuietResult;
    for (const f of flooders) f.stop();
    const floods = (await Promise.all(flooders.map((f) => f.result()))) as FloodResult[];
    const figures: Record<string, number> = {
      'PING p50': ping.p50, 'PING p90': ping.p90, 'PING p99': ping.p99,
      'REQUEST p50': request.p50, 'REQUEST p90': request.p90, 'REQUEST p99': request.p99,
    };
    if (floods.length > 0) figures.flood = floods.reduce((sum, f) => sum + f.count / f.seconds, 0);
    return figures;
  });
}
