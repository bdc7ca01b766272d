/**
 * A process that holds as many connections to the supervisor as it will take: the exhaustion
 * section's load on its file descriptors.
 *
 * Spec (argv[2], JSON): `{ home, max, refusals, timeoutMs }`. It connects (never starting a
 * supervisor), one connection after another, each with a deadline of `timeoutMs`, until `max` are
 * open or a connect fails; then it tries `refusals - 1` more, to see that each is refused the
 * same way, and prints `{"event":"holding", opened, refusals: [{code, message, ms}]}`.
 * Then, on stdin: `ping` pings every connection it holds (`{"event":"pinged", ok, failed}`),
 * `close N` closes N of them (`{"event":"closed", open}`), `exit` (or stdin's end) closes all
 * and exits 0.
 */
import { createInterface } from 'node:readline';
import { type Client, connect } from '../../../lib/index.js';

export interface Refusal {
  code: string;
  message: string;
  /** How long the connect took to fail. */
  ms: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as { home: string; max: number; refusals: number; timeoutMs: number };
const held: Client[] = [];
const refusals: Refusal[] = [];

function say(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** One connect: the client, or the refusal it met. */
async function attempt(): Promise<Client | Refusal> {
  const started = performance.now();
  try {
    return await connect({ home: spec.home, name: `fd-holder-${held.length}`, start: false, timeoutMs: spec.timeoutMs, handleExit: false });
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return { code: e.code ?? 'not a MuxvisorError', message: e.message ?? String(error), ms: Math.round(performance.now() - started) };
  }
}

while (held.length < spec.max) {
  const got = await attempt();
  if ('code' in got) {
    refusals.push(got);
    break;
  }
  held.push(got);
}
while (refusals.length > 0 && refusals.length < spec.refusals) {
  const got = await attempt();
  if ('code' in got) refusals.push(got);
  else held.push(got); // a place came free meanwhile: keep it
}
say({ event: 'holding', opened: held.length, refusals });

const input = createInterface({ input: process.stdin });
for await (const line of input) {
  const [word, arg] = line.trim().split(/\s+/);
  if (word === 'ping') {
    const results = await Promise.allSettled(held.map((c) => c.ping({ timeoutMs: spec.timeoutMs })));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [`${(r.reason as { code?: string }).code}: ${(r.reason as Error).message}`] : []));
    say({ event: 'pinged', ok: results.length - failed.length, failed: failed.slice(0, 5), failedCount: failed.length });
  } else if (word === 'close') {
    const gone = held.splice(0, Number(arg));
    await Promise.all(gone.map((c) => c.close().catch(() => undefined)));
    say({ event: 'closed', open: held.length });
  } else if (word === 'exit') {
    break;
  }
}
for (const c of held) c.destroy();
process.exit(0);
