/**
 * Slow readers: a client sends many requests whose answers are big and never reads its socket.
 * The supervisor must push back (stop reading that client once its answers pile up, PROTOCOL.md
 * section 11) instead of reading, answering and buffering without end. Judged from the side:
 * `connections.list` (asked on the control connection) shows how many bytes the supervisor has
 * read from the slow client; it must stop growing while the client still has much more to send,
 * and stay under a bound. When the client finally reads, every request is answered exactly once.
 */
import { Kind, MAX_DECODED_PAYLOAD_BYTES } from '../../../protocol/index.js';
import { pause } from '../context.js';
import { type CaseEnv, expectAnswers, type Family, type FuzzCase, type Outcome } from './case.js';
import { runId } from './bytes.js';
import { openOn } from './sessions.js';
import { frameOf, rawFrame } from './wire.js';

/** What the supervisor may read from a client that reads nothing (outputHighWaterBytes is 4 MiB). */
export const PUSHBACK_BOUND_BYTES = 24 * 1024 * 1024;

const bin = (size: number) => {
  const b = Buffer.alloc(size, 0x5a);
  b[0] = 0xc6;
  b.writeUInt32BE(size - 5, 1);
  return b;
};

export const slowReader: Family = {
  name: 'slow reader',
  weight: 3,
  make(rng): FuzzCase {
    const via = rng.pick(['ping', 'echo'] as const);
    // A request may carry at most MAX_DECODED_PAYLOAD_BYTES; a PING (only echoed) up to the frame limit.
    const size = via === 'echo' ? rng.pick([64 * 1024, MAX_DECODED_PAYLOAD_BYTES / 2, MAX_DECODED_PAYLOAD_BYTES - 64]) : rng.pick([64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024]);
    const total = rng.int(32, 72) * 1024 * 1024; // always more than the bound
    const count = Math.max(8, Math.floor(total / size));
    const run = runId(rng);
    return {
      family: 'slow reader',
      what: `${count} ${via} requests of ${size / 1024} KiB, never read`,
      heavy: true,
      run: (env) => slow(env, via, size, count, run),
    };
  },
};

async function slow(env: CaseEnv, via: 'ping' | 'echo', size: number, count: number, run: string): Promise<Outcome> {
  const conn = await env.welcomed();
  const connection = (conn.received[0]?.value as { connection?: number } | undefined)?.connection;
  const channel = via === 'echo' ? await openOn(env, conn, run, 1) : 0;
  if (channel === null || connection === undefined) return expectAnswers(env, conn, []);
  conn.socket.pause(); // from here on this client reads nothing
  const ids = Array.from({ length: count }, (_, i) => 10 + i);
  const payload = bin(size);
  for (const id of ids) {
    conn.write(via === 'ping' ? rawFrame({ kind: Kind.Ping, id }, payload) : frameOf(Kind.Request, { op: 'echo', args: payload.subarray(5) }, { id, channel }));
  }
  const written = conn.bytesWritten;
  // Wait until the supervisor stops reading: bytesIn unchanged over three looks 100 ms apart.
  let last = -1;
  let still = 0;
  let read = 0;
  const deadline = Date.now() + 10_000;
  while (still < 3 && Date.now() < deadline) {
    await pause(100);
    const list = (await env.target.control.request('connections.list', undefined, { timeoutMs: 5_000 })) as Array<{ conn: number; bytesIn: number }>;
    read = list.find((c) => c.conn === connection)?.bytesIn ?? -1;
    still = read === last ? still + 1 : 0;
    last = read;
  }
  env.observe('slow reader bytes read before push-back', read);
  if (still < 3) env.fail('slow reader not pushed back', `the supervisor was still reading a client that reads nothing after 10 s: ${read} of ${written} bytes read`);
  else if (read > PUSHBACK_BOUND_BYTES || (written > 2 * PUSHBACK_BOUND_BYTES && read >= written)) {
    env.fail('slow reader not pushed back', `the supervisor read ${read} of the ${written} bytes a client that reads nothing sent (bound ${PUSHBACK_BOUND_BYTES})`);
  }
  conn.socket.resume();
  return expectAnswers(env, conn, ids, (_id, a) => (a.kind === (via === 'ping' ? Kind.Pong : Kind.Response) ? null : `expected the ${via} answer, got ${a.error?.code ?? a.kind}`));
}
