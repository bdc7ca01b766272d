/**
 * roundtrip: latency of one request at a time, as an HDR histogram (p50 to p99.9), to the
 * supervisor itself (PING) and to a run's handler on its worker thread (REQUEST `echo`).
 * Baselines: the same frames to a raw server that answers at once; and the same calls hand-rolled
 * with msgpackr alone (its streams over a plain socket) to a server that answers at once.
 */
import { runProgram } from '../harness/child.js';
import { startSupervisorAndBaselines } from '../harness/fixtures.js';
import type { Metric, Question } from '../harness/question.js';

const percentiles: Metric[] = ['p50', 'p90', 'p99', 'p999'].map((key) => ({ key, unit: 'µs', higherIsBetter: false }));

export const roundtrip: Question = {
  name: 'roundtrip',
  title: 'request round trip, one in flight',
  async setup({ quick }) {
    const { supervisor, raw, msgpackr, stop } = await startSupervisorAndBaselines();
    const n = quick ? 500 : 20_000;
    return {
      workload: `${n.toLocaleString('en')} round trips after 1,000 warm-up`,
      cases: (['ping', 'run'] as const).map((target) => ({
        name: target === 'ping' ? 'ping (supervisor)' : 'request (run handler)', unit: 'µs', higherIsBetter: false, metrics: percentiles,
        contender: { label: target === 'ping' ? 'muxvisor PING' : 'muxvisor REQUEST echo on a run', run: () => runProgram('bench-client.js', { task: 'roundtrip', n, target, home: supervisor.address }) },
        baseline: { label: 'raw socket echo', run: () => runProgram('raw-client.js', { task: 'roundtrip', n, target, socket: raw.address }) },
        otherBaselines: [{ label: 'msgpackr point to point echo', run: () => runProgram('msgpackr-client.js', { task: 'roundtrip', n, target, socket: msgpackr.address }) }],
      })),
      teardown: stop,
    };
  },
};
