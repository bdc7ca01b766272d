/**
 * fanin: total publish throughput, and how evenly it is shared, when 1, 10 or 100 client
 * processes publish ~100 B records at the same moment, each into a run of its own.
 *
 * N processes are started once per case and variant and kept across its repetitions (see
 * harness/fleet.ts; the uncounted warm-up repetition warms them). Each repetition, every one opens
 * a run, then all wait for one `go` (so connection set-up is not measured), publish `total / N`
 * records and finish.
 * - perSec: all records over the wall time from `go` to the last finish answered (the records
 *   then in the log and fsynced).
 * - fairness: Jain's index over the clients' own rates (records ÷ time from its `go` to its
 *   finish): (Σx)² ÷ (N·Σx²). 1 when all got the same rate; 1/N when one got everything; 1 by
 *   definition with one client. Chosen over slowest ÷ fastest, which one client alone decides:
 *   with 100 processes on two cores some hear `go` late and publish partly alone, which is the
 *   scheduler's doing, for the baseline too.
 * Baseline: the same N processes over plain sockets to the raw server (same framing, codec and
 * per-turn batching; the server only counts).
 */
import { type Fleet, Fleets, launchFleet } from '../harness/fleet.js';
import { startSupervisorAndBaseline } from '../harness/fixtures.js';
import type { Case, Question } from '../harness/question.js';
import { type BurstResult, nowMicros } from '../programs/fleet.js';

const RECORD_BYTES = 100;

export const fanin: Question = {
  name: 'fanin',
  title: 'publish throughput and fairness, many client processes at once',
  async setup({ quick }) {
    const { supervisor, raw, stop } = await startSupervisorAndBaseline();
    const fleets = new Fleets();
    // Quick still runs several processes at once, so the many-process path is exercised.
    const counts = quick ? [1, 4] : [1, 10, 100];
    const total = quick ? 8_000 : 1_000_000;
    const cases: Case[] = counts.map((clients) => {
      const name = `${clients} ${clients === 1 ? 'client' : 'clients'}`;
      const spec = { task: 'burst', n: Math.round(total / clients), recordBytes: RECORD_BYTES } as const;
      const rep = (program: string, at: { home: string } | { socket: string }) => async () => {
        const fleet = await fleets.get(name, program, () => launchFleet<BurstResult>(program, Array.from({ length: clients }, () => ({ ...spec, ...at })), 180_000));
        return fanIn(fleet, spec.n);
      };
      return {
        name, unit: 'records/s', higherIsBetter: true,
        metrics: [{ key: 'perSec', unit: 'records/s', higherIsBetter: true }, { key: 'fairness', unit: 'Jain index', higherIsBetter: true }],
        contender: { label: 'muxvisor: a run each, publish then finish', run: rep('fleet-client.js', { home: supervisor.address }) },
        baseline: { label: 'raw socket, same framing and batching', run: rep('fleet-raw-client.js', { socket: raw.address }) },
      };
    });
    return {
      workload: `${total.toLocaleString('en')} records of ~${RECORD_BYTES} B in all, shared evenly`,
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

/** One repetition: every member told to go at once, `n` records each. */
function fanIn(fleet: Fleet<BurstResult>, n: number): Promise<{ perSec: number; fairness: number }> {
  return fleet.round(120_000, async (members) => {
    const goUs = nowMicros();
    for (const m of members) m.go();
    const results = await Promise.all(members.map((m) => m.result()));
    const lastUs = Math.max(...results.map((r) => r.endUs));
    const rates = results.map((r) => r.records / ((r.endUs - r.startUs) / 1e6));
    return { perSec: (members.length * n) / ((lastUs - goUs) / 1e6), fairness: jain(rates) };
  });
}

/** Jain's fairness index of `rates`: (Σx)² ÷ (n·Σx²), from 1/n (one takes all) to 1 (even). */
export function jain(rates: readonly number[]): number {
  const sum = rates.reduce((a, x) => a + x, 0);
  const squares = rates.reduce((a, x) => a + x * x, 0);
  return (sum * sum) / (rates.length * squares);
}
