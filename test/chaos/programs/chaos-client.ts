/**
 * A chaos client: a user process that publishes into runs while the chaos section kills things
 * around it (and it). It reports every acknowledgment it gets, so that the checker can prove the
 * supervisor kept each one.
 *
 * Spec (argv[2], JSON): `{ home, tag, seed, syncEvery: [min, max], finishEvery: [min, max],
 * padBytes, shared: boolean }`.
 * - It connects (starting a supervisor when none answers, as a user process does), opens its own
 *   run `<tag>-g<n>` and, when `shared`, opens or attaches to `shared-<supervisor pid>`.
 * - Records are `{ p, s: seq, x: pad }`. The publisher `p` is `<tag>/<connection number>`: a new
 *   one for each connection, since records in flight when a connection is lost may be lost with
 *   it. `seq` counts from 0 per publisher and run, so in every run the records of one publisher
 *   must be exactly 0, 1, 2, ... with nothing missing or doubled.
 * - After `syncEvery` records (drawn from the seed) it syncs each run; after `finishEvery` it
 *   finishes its own run and opens the next one.
 * - When the connection is lost (the supervisor died or drained), it connects again and goes on
 *   in new runs.
 *
 * Lines on stdout (JSON, written synchronously so that none is lost to an exit):
 * - `{e:'opened', run, shared}`: it opened (or attached to) `run`;
 * - `{e:'ack', run, p, seq}`: a sync answered: every record of publisher `p` up to `seq` is durable;
 * - `{e:'finishing', run}` then `{e:'finished', run, p, seq, records, status}`;
 * - `{e:'left', run, code, error}`: it stopped publishing to a shared run another owner finished;
 * - `{e:'lost', runs, code, error}`: it gave up its connection (lost, or a call failed) with these runs open;
 * - `{e:'exiting', p, last: {run: seq}}`: just before `process.exit` (the `exit` command), the last
 *   seq published to each run in an earlier turn (the library promises those reach the supervisor).
 * Commands on stdin: `exit` (exit at once, mid-work) and `finish` (finish own runs, detach from
 * the shared one, close, exit 0).
 */
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { type Client, connect, ErrorCode, isMuxvisorError, type Run } from '../../../lib/index.js';
import { Rng } from '../random.js';

export interface ChaosClientSpec {
  home: string;
  tag: string;
  seed: number;
  syncEvery: [number, number];
  finishEvery: [number, number];
  padBytes: number;
  shared: boolean;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as ChaosClientSpec;
const rng = new Rng(spec.seed);
const pad = 'x'.repeat(spec.padBytes);
const say = (line: Record<string, unknown>) => writeSync(1, `${JSON.stringify(line)}\n`);

interface Lane {
  run: Run;
  shared: boolean;
  /** The next seq to publish. */
  seq: number;
}

let client: Client | null = null;
let lanes: Lane[] = [];
let generation = 0;
let connections = 0;
/** The publisher name of the current connection. */
let publisher = '';
let command: 'exit' | 'finish' | null = null;
/** What it is waiting for, printed on stderr at SIGUSR2 (the section asks when a client hangs). */
let phase = 'starting';
process.on('SIGUSR2', () => process.stderr.write(`chaos client ${spec.tag}: ${phase}; command ${command}; lanes ${lanes.map((l) => `${l.run.id}@${l.seq}`).join(' ')}\n`));

const commands = createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const word = line.trim();
  if (word === 'exit') {
    // Every seq published so far went out in an earlier turn than this one.
    say({ e: 'exiting', p: publisher, last: Object.fromEntries(lanes.map((l) => [l.run.id, l.seq - 1])) });
    process.exit(0);
  }
  if (word === 'finish') command = 'finish';
});

async function open(): Promise<void> {
  phase = 'connecting';
  client = await connect({ home: spec.home, name: `chaos-${spec.tag}`, timeoutMs: 30_000 });
  publisher = `${spec.tag}/${connections++}`;
  const own = await client.openRun(`${spec.tag}-g${generation++}`);
  lanes = [{ run: own, shared: false, seq: 0 }];
  say({ e: 'opened', run: own.id, shared: false, supervisor: client.server.pid });
  if (!spec.shared) return;
  const id = `shared-${client.server.pid}`;
  try {
    const run = await client.openRun(id).catch((error: unknown) => {
      if (isMuxvisorError(error) && error.code === ErrorCode.RunExists) return (client as Client).attachRun(id);
      throw error;
    });
    lanes.push({ run, shared: true, seq: 0 });
    say({ e: 'opened', run: id, shared: true, supervisor: client.server.pid });
  } catch (error) {
    // The shared run of this supervisor already ended (its owners all left): go on without it.
    if (!isMuxvisorError(error) || error.code === ErrorCode.ConnectionClosed) throw error;
  }
}

/**
 * Syncs one lane and reports the ack. A sync that failed because the run's worker thread failed
 * is tried again (the run resumes on a new worker with its records); a shared run that another
 * owner finished is left. Anything else is thrown (the connection is given up).
 */
async function syncLane(lane: Lane): Promise<void> {
  const last = lane.seq - 1;
  phase = `syncing ${lane.run.id}`;
  for (let attempt = 1; ; attempt++) {
    try {
      await lane.run.sync({ timeoutMs: 30_000 });
      say({ e: 'ack', run: lane.run.id, p: publisher, seq: last });
      return;
    } catch (error) {
      const code = isMuxvisorError(error) ? error.code : null;
      if (code === ErrorCode.WorkerFailed && attempt < 5) continue;
      if (code === ErrorCode.UnknownRun && lane.shared) {
        lanes.splice(lanes.indexOf(lane), 1);
        say({ e: 'left', run: lane.run.id, code, error: (error as Error).message });
        return;
      }
      throw error;
    }
  }
}

async function work(): Promise<void> {
  let untilSync = rng.int(...spec.syncEvery);
  let untilFinish = rng.int(...spec.finishEvery);
  for (let n = 0; command === null; n++) {
    for (const lane of lanes) {
      if (!lane.run.publish({ p: publisher, s: lane.seq, x: pad })) {
        phase = `draining ${lane.run.id}`;
        await lane.run.drain();
      }
      lane.seq++;
    }
    if (--untilSync === 0) {
      untilSync = rng.int(...spec.syncEvery);
      for (const lane of [...lanes]) await syncLane(lane);
    }
    phase = 'publishing';
    if (--untilFinish === 0) {
      untilFinish = rng.int(...spec.finishEvery);
      const own = lanes[0] as Lane;
      say({ e: 'finishing', run: own.run.id });
      phase = `finishing ${own.run.id}`;
      const done = await own.run.finish({ timeoutMs: 30_000 });
      say({ e: 'finished', run: own.run.id, p: publisher, seq: own.seq - 1, records: done.records, status: done.status });
      const next = await (client as Client).openRun(`${spec.tag}-g${generation++}`);
      lanes[0] = { run: next, shared: false, seq: 0 };
      say({ e: 'opened', run: next.id, shared: false, supervisor: (client as Client).server.pid });
    }
    // Let stdin and the socket be served now and then.
    if (n % 100 === 99) await new Promise((r) => setImmediate(r));
  }
}

for (;;) {
  try {
    if (client === null) await open();
    await work();
    break;
  } catch (error) {
    say({ e: 'lost', runs: lanes.map((l) => l.run.id), code: isMuxvisorError(error) ? error.code : 'Error', error: (error as Error).message });
    (client as Client | null)?.destroy();
    client = null;
    lanes = [];
    phase = 'pausing after a loss';
    await new Promise((r) => setTimeout(r, rng.int(20, 200)));
  }
}
phase = 'ending';

// `finish`: end cleanly. The own run is finished (ok); the shared one is left to its last owner.
const [own, ...rest] = lanes;
if (own) {
  say({ e: 'finishing', run: own.run.id });
  const done = await own.run.finish({ timeoutMs: 30_000 });
  say({ e: 'finished', run: own.run.id, p: publisher, seq: own.seq - 1, records: done.records, status: done.status });
}
for (const lane of rest) {
  await syncLane(lane);
  if (lanes.includes(lane)) await lane.run.detach({ timeoutMs: 30_000 });
}
await (client as Client | null)?.close();
// stdin stays open (the section holds it): stop reading it so the process can end.
commands.close();
process.stdin.destroy();
