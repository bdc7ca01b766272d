/** runs: how long opening and finishing a run takes (log created, then closed and fsynced). */
import { runProgram } from '../harness/child.js';
import { startSupervisor } from '../harness/fixtures.js';
import type { Question } from '../harness/question.js';

export const runs: Question = {
  name: 'runs',
  title: 'run open + finish, one after another',
  async setup({ quick }) {
    const supervisor = await startSupervisor();
    const n = quick ? 20 : 500;
    return {
      workload: `${n} runs opened and finished`,
      cases: [{
        name: 'open+finish', unit: 'ms', higherIsBetter: false,
        metrics: [{ key: 'p50', unit: 'ms', higherIsBetter: false }, { key: 'p99', unit: 'ms', higherIsBetter: false }, { key: 'perSec', unit: 'runs/s', higherIsBetter: true }],
        contender: { label: 'muxvisor openRun + finish', run: () => runProgram('bench-client.js', { task: 'open-finish', n, home: supervisor.address }) },
      }],
      teardown: () => supervisor.stop(),
    };
  },
};
