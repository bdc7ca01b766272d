/**
 * publish: records per second from one client process into a run, end to end: from the first
 * publish until finish answers (the log complete and fsynced). Baselines: the same frames,
 * batched the same way, to a raw server that only counts them; and the same records hand-rolled
 * with msgpackr alone (its streams over a plain socket) to a server that only counts them.
 */
import { runProgram } from '../harness/child.js';
import { startSupervisorAndBaselines } from '../harness/fixtures.js';
import type { Case, Question } from '../harness/question.js';

export const publish: Question = {
  name: 'publish',
  title: 'publish throughput, one client, into a run and durable after finish',
  async setup({ quick }) {
    const { supervisor, raw, msgpackr, stop } = await startSupervisorAndBaselines();
    const sizes = quick ? [100] : [100, 1024];
    const n = (bytes: number) => (quick ? 20_000 : Math.round(Math.min(2_000_000, 400e6 / bytes)));
    const cases: Case[] = sizes.map((bytes) => ({
      name: `~${bytes} B records`, unit: 'records/s', higherIsBetter: true,
      metrics: [{ key: 'perSec', unit: 'records/s', higherIsBetter: true }, { key: 'mbPerSec', unit: 'MB/s', higherIsBetter: true }],
      contender: { label: 'muxvisor: publish → worker → log, then finish', run: () => runProgram('bench-client.js', { task: 'publish', n: n(bytes), recordBytes: bytes, home: supervisor.address }) },
      baseline: { label: 'raw socket, same framing and batching', run: () => runProgram('raw-client.js', { task: 'publish', n: n(bytes), recordBytes: bytes, socket: raw.address }) },
      otherBaselines: [{ label: 'msgpackr point to point', run: () => runProgram('msgpackr-client.js', { task: 'publish', n: n(bytes), recordBytes: bytes, socket: msgpackr.address }) }],
    }));
    return {
      workload: sizes.map((b) => `${n(b).toLocaleString('en')} × ~${b} B`).join(', '),
      cases,
      teardown: stop,
    };
  },
};
