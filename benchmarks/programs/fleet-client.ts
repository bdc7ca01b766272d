/**
 * A member of a fleet (see fleet.ts) using the muxvisor library against a real supervisor: one
 * connection, and a run of its own each round. `node fleet-client.js '<FleetSpec JSON>'`.
 */
import { connect, type Run } from '../../lib/index.js';
import { type FleetSpec, serveFleet } from './fleet.js';

const spec = JSON.parse(process.argv[2] as string) as FleetSpec;
// A hundred members connect at once on two cores: allow more than the 10 s default.
const client = await connect({ home: spec.home, start: false, name: `bench-${spec.task}`, handleExit: false, exportEnv: false, timeoutMs: 60_000, requestTimeoutMs: 120_000 });
let rounds = 0;
let run: Run | undefined;
const current = () => {
  if (run === undefined) throw new Error('no run is open');
  return run;
};

await serveFleet(spec, {
  open: async () => {
    run = await client.openRun(`bench-${spec.task}-${process.pid}-${rounds++}`);
  },
  publish: (record) => current().publish(record),
  drain: () => current().drain(),
  finish: async () => (await current().finish()).records,
  ping: () => client.ping(),
  request: () => current().request('echo', 1),
  close: () => client.close(),
});
