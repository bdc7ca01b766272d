/**
 * A member of a fleet (see fleet.ts) over a plain socket to raw-server, with muxvisor's framing,
 * codec and batching (lib/transport.ts) and nothing else, as raw-client.js. It waits on
 * backpressure at the same mark as the library's `run.drain()` (half the 8 MiB high-water mark).
 * `node fleet-raw-client.js '<FleetSpec JSON>'`.
 */
import { decodeValue, encodeFrameWithValue, type Frame, Kind } from '../../protocol/index.js';
import { openSocket, Transport } from '../../lib/transport.js';
import { type FleetSpec, serveFleet } from './fleet.js';

const spec = JSON.parse(process.argv[2] as string) as FleetSpec;
const HIGH_WATER = 8 * 1024 * 1024;

// Owner of the in-flight calls: closing the transport rejects them all.
const waiting = new Map<number, { resolve(f: Frame): void; reject(e: Error): void }>();
const transport = new Transport(await openSocket(spec.socket as string, 60_000), {
  onFrame: (f) => {
    const call = waiting.get(f.id);
    waiting.delete(f.id);
    call?.resolve(f);
  },
  onClose: (error) => {
    for (const call of waiting.values()) call.reject(error ?? new Error('the raw server closed the connection'));
    waiting.clear();
  },
});
let nextId = 1;
const call = (kind: number, value: unknown) => new Promise<Frame>((resolve, reject) => {
  const id = nextId++;
  waiting.set(id, { resolve, reject });
  transport.send(encodeFrameWithValue({ kind, flags: 0, id, channel: kind === Kind.Ping ? 0 : 1 }, value));
});
const publishHeader = { kind: Kind.Publish, flags: 0, id: 0, channel: 1 };

await serveFleet(spec, {
  open: async () => {}, // the raw server counts per connection and starts again at each FINISH
  publish(record) {
    transport.send(encodeFrameWithValue(publishHeader, record));
    return transport.unconfirmedBytes < HIGH_WATER;
  },
  drain: () => transport.drained(HIGH_WATER / 2),
  finish: async () => (decodeValue((await call(Kind.Finish, undefined)).payload) as { records: number }).records,
  ping: () => call(Kind.Ping, undefined),
  request: () => call(Kind.Request, { op: 'echo', args: 1 }),
  close: async () => transport.destroy(),
});
