/**
 * The baseline client: the same workloads as bench-client, over a plain socket to raw-server,
 * with muxvisor's framing, codec and batching (lib/transport.ts) and nothing else.
 */
import { decodeValue, encodeFrameWithValue, encodeValue, type Frame, Kind } from '../../protocol/index.js';
import { openSocket, Transport } from '../../lib/transport.js';
import { pipelined, publishMany, roundTrips } from './measure.js';
import { printResult, type ProgramSpec, recordOf } from './spec.js';

const spec = JSON.parse(process.argv[2] as string) as ProgramSpec;
const waiting = new Map<number, (f: Frame) => void>();
const transport = new Transport(await openSocket(spec.socket as string, 5_000), {
  onFrame: (f) => {
    const resolve = waiting.get(f.id);
    waiting.delete(f.id);
    resolve?.(f);
  },
  onClose: () => {},
});
let nextId = 1;
const call = (kind: number, value: unknown) => new Promise<Frame>((resolve) => {
  const id = nextId++;
  waiting.set(id, resolve);
  transport.send(encodeFrameWithValue({ kind, flags: 0, id, channel: kind === Kind.Ping ? 0 : 1 }, value));
});
const echo = () => call(Kind.Request, { op: 'echo', args: 1 });

switch (spec.task) {
  case 'publish': {
    const record = recordOf(spec.recordBytes);
    const header = { kind: Kind.Publish, flags: 0, id: 0, channel: 1 };
    const highWater = 8 * 1024 * 1024;
    printResult(await publishMany(spec.n, record, (r) => {
      transport.send(encodeFrameWithValue(header, r));
      return transport.unconfirmedBytes < highWater;
    }, () => transport.drained(), async () => (decodeValue((await call(Kind.Finish, undefined)).payload) as { records: number }).records, encodeValue(record).length));
    break;
  }
  case 'roundtrip':
    printResult(await roundTrips(spec.n, spec.target === 'ping' ? () => call(Kind.Ping, undefined) : echo));
    break;
  case 'pipelined':
    for (let i = 0; i < 2000; i++) await echo();
    printResult(await pipelined(spec.n, spec.window, echo));
    break;
  default:
    throw new Error(`the raw baseline has no ${spec.task} workload`);
}
transport.destroy();
