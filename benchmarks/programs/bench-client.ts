/**
 * The contender: a user process using the muxvisor library against a real supervisor.
 * `node bench-client.js '<ProgramSpec JSON>'` prints one JSON line with its figures.
 */
import { connect } from '../../lib/index.js';
import { encodeValue } from '../../protocol/index.js';
import { pipelined, publishMany, roundTrips, timedLoop } from './measure.js';
import { printResult, type ProgramSpec, recordOf } from './spec.js';

const spec = JSON.parse(process.argv[2] as string) as ProgramSpec;
const client = await connect({ home: spec.home, start: false, name: `bench-${spec.task}`, handleExit: false, exportEnv: false });
const runId = () => `bench-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

switch (spec.task) {
  case 'publish': {
    const run = await client.openRun(runId());
    const record = recordOf(spec.recordBytes);
    printResult(await publishMany(spec.n, record, (r) => run.publish(r), () => run.drain(), async () => (await run.finish()).records, encodeValue(record).length));
    break;
  }
  case 'roundtrip': {
    const run = await client.openRun(runId());
    const call = spec.target === 'ping' ? () => client.ping() : () => run.request('echo', 1);
    printResult(await roundTrips(spec.n, call));
    await run.finish();
    break;
  }
  case 'pipelined': {
    const run = await client.openRun(runId());
    for (let i = 0; i < 2000; i++) await run.request('echo', 1);
    printResult(await pipelined(spec.n, spec.window, () => run.request('echo', 1)));
    await run.finish();
    break;
  }
  case 'open-finish': {
    const base = runId();
    printResult(await timedLoop(spec.n, async (i) => (await client.openRun(`${base}-${i}`)).finish()));
    break;
  }
}
await client.close();
