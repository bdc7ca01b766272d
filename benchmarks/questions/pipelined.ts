/**
 * pipelined: requests per second to a run's handler with 16, 256 and 1,024 in flight.
 * Baselines: the same frames to a raw server that answers at once; and the same calls
 * hand-rolled with msgpackr alone (its streams over a plain socket).
 */
import { runProgram } from '../harness/child.js';
import { startSupervisorAndBaselines } from '../harness/fixtures.js';
import type { Question } from '../harness/question.js';

export const pipelined: Question = {
  name: 'pipelined',
  title: 'pipelined requests to a run handler',
  async setup({ quick }) {
    const { supervisor, raw, msgpackr, stop } = await startSupervisorAndBaselines();
    const n = quick ? 10_000 : 500_000;
    return {
      workload: `${n.toLocaleString('en')} requests`,
      cases: [16, 256, 1024].map((window) => ({
        name: `${window} in flight`, unit: 'requests/s', higherIsBetter: true,
        contender: { label: 'muxvisor REQUEST echo on a run', run: async () => (await runProgram<{ perSec: number }>('bench-client.js', { task: 'pipelined', n, window, home: supervisor.address })).perSec },
        baseline: { label: 'raw socket, same framing and batching', run: async () => (await runProgram<{ perSec: number }>('raw-client.js', { task: 'pipelined', n, window, socket: raw.address })).perSec },
        otherBaselines: [{ label: 'msgpackr point to point', run: async () => (await runProgram<{ perSec: number }>('msgpackr-client.js', { task: 'pipelined', n, window, socket: msgpackr.address })).perSec }],
      })),
      teardown: stop,
    };
  },
};
