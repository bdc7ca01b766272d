/**
 * Several client processes, several runs each, many records: after finish every run log holds
 * exactly what was published, once each, in order (per publisher, for a shared run).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect } from '../../lib/index.js';
import { runFixture } from '../helpers/children.js';
import { tempHome } from '../helpers/home.js';
import { records, scan } from '../helpers/logs.js';

const home = tempHome();
let keeper: Client;
beforeAll(async () => {
  keeper = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
});
afterAll(async () => {
  await keeper?.close();
  await home.cleanup();
});

type Rec = { pub: string; run: string; seq: number };

describe('integrity', () => {
  it('keeps every record of 4 processes x 3 runs x 5000 records, once each, in order', async () => {
    const procs = Array.from({ length: 4 }, (_, p) =>
      runFixture('publish.mjs', [], { MUXVISOR_HOME: home.home, RUNS: [0, 1, 2].map((r) => `p${p}-r${r}`).join(','), RECORDS: '5000', TAG: `p${p}` }));
    const exits = await Promise.all(procs.map((c) => c.exited));
    expect(exits.map((e) => e.code), procs.map((c) => c.stderr()).join('\n')).toEqual([0, 0, 0, 0]);
    for (const [p, child] of procs.entries()) {
      const finished = child.lines.filter((l) => l.event === 'finished');
      expect(finished.map((l) => l.records)).toEqual([5000, 5000, 5000]);
      for (let r = 0; r < 3; r++) {
        const run = `p${p}-r${r}`;
        const got = records(home.home, run) as Rec[];
        expect(got.length).toBe(5000);
        expect(got.every((rec, i) => rec.seq === i && rec.pub === `p${p}` && rec.run === run), `run ${run} in order`).toBe(true);
        expect(scan(home.home, run)).toMatchObject({ torn: null, finished: true });
      }
    }
  });

  it('keeps each publisher\'s order in a run shared by four processes, with nothing lost or doubled', async () => {
    const opener = await keeper.openRun('shared-by-four');
    const procs = Array.from({ length: 4 }, (_, p) =>
      runFixture('publish.mjs', [], { MUXVISOR_HOME: home.home, RUNS: 'shared-by-four', ATTACH: '1', RECORDS: '3000', TAG: `a${p}`, FINISH: '0' }));
    const exits = await Promise.all(procs.map((c) => c.exited));
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0]);
    expect((await opener.finish()).records).toBe(12_000);
    const got = records(home.home, 'shared-by-four') as Rec[];
    for (let p = 0; p < 4; p++) {
      const mine = got.filter((r) => r.pub === `a${p}`).map((r) => r.seq);
      expect(mine).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    }
  });
});
