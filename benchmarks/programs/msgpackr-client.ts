/**
 * The second baseline's client: the same workloads as bench-client, hand-rolled the way a Node
 * user would with msgpackr alone, to msgpackr-server over a plain Unix socket. Values go out
 * through a PackrStream piped into the socket (one socket write per value; the stream's own
 * backpressure) and come back through an UnpackrStream, with msgpackr's defaults (records on).
 * Replies are matched to calls by id. No muxvisor framing, batching or codec.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { PackrStream, UnpackrStream } from 'msgpackr';
import { encodeValue } from '../../protocol/index.js';
import type { PointToPointMessage } from './msgpackr-server.js';
import { pipelined, publishMany, roundTrips } from './measure.js';
import { printResult, type ProgramSpec, recordOf } from './spec.js';

const spec = JSON.parse(process.argv[2] as string) as ProgramSpec;
const socket = connect(spec.socket as string);
await once(socket, 'connect');

const out = new PackrStream();
const send = (message: PointToPointMessage) => out.write(message);
const waiting = new Map<number, (value: unknown) => void>();
out.pipe(socket);
socket.pipe(new UnpackrStream()).on('data', ([id, value]: [number, unknown]) => {
  const resolve = waiting.get(id);
  waiting.delete(id);
  resolve?.(value);
});

// Without this, a server that goes away mid-workload would leave calls (or a drain) pending and
// the process would exit 0 with nothing printed, as soon as the event loop ran dry.
let finished = false;
socket.on('close', () => {
  if (finished) return;
  process.stderr.write(`msgpackr-client: the server closed the connection mid-workload (${waiting.size} calls pending)\n`);
  process.exit(1);
});

let nextId = 1;
const call = (make: (id: number) => PointToPointMessage) => new Promise<unknown>((resolve) => {
  const id = nextId++;
  waiting.set(id, resolve);
  send(make(id));
});
const echo = () => call((id) => ['request', id, { op: 'echo', args: 1 }]);

switch (spec.task) {
  case 'publish': {
    const record = recordOf(spec.recordBytes);
    // MB/s counts the record as muxvisor encodes it, so that all three sides report the same unit.
    printResult(await publishMany(spec.n, record, (r) => send(['publish', 0, r]), async () => {
      await once(out, 'drain');
    }, async () => ((await call((id) => ['finish', id])) as { records: number }).records, encodeValue(record).length));
    break;
  }
  case 'roundtrip':
    printResult(await roundTrips(spec.n, spec.target === 'ping' ? () => call((id) => ['ping', id]) : echo));
    break;
  case 'pipelined':
    for (let i = 0; i < 2000; i++) await echo();
    printResult(await pipelined(spec.n, spec.window, echo));
    break;
  default:
    throw new Error(`the msgpackr baseline has no ${spec.task} workload`);
}
finished = true;
socket.destroy();
