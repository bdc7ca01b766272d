/** fast-check generators for msgpack values and protocol messages. */
import fc from 'fast-check';
import { Kind, type Message } from '../../protocol/index.js';

const key = fc.string({ maxLength: 12 }).filter((k) => k !== '__proto__');

/** Values that survive msgpack exactly (no -0, which msgpack writes as the integer 0). */
const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
  fc.maxSafeInteger(),
  fc.double().map((d) => (Object.is(d, -0) ? 0 : d)),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  fc.date({ min: new Date(-1e14), max: new Date(1e14), noInvalidDate: true }),
);

export const msgpackValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('array'), tie('map')),
  array: fc.array(tie('value'), { maxLength: 6 }),
  map: fc.dictionary(key, tie('value'), { maxKeys: 6 }),
})).value;

const u32 = fc.integer({ min: 1, max: 0xffff_ffff });
const text = fc.string({ maxLength: 30 });

export const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({
    kind: fc.constant(Kind.Hello), versions: fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 9, max: 0xffff })),
    token: fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), maxLength: 64 }), pid: fc.nat(), name: text, caps: fc.array(text, { maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant(Kind.Welcome), version: fc.integer({ min: 1, max: 0xffff }), connection: fc.nat(),
    server: fc.record({ name: text, version: text, pid: fc.nat() }), caps: fc.array(text, { maxLength: 3 }),
    limits: fc.record({ maxPayloadBytes: fc.nat(), maxInFlight: fc.nat() }),
  }),
  fc.record({ kind: fc.constant(Kind.Goodbye), reason: text }),
  fc.record({ kind: fc.constantFrom(Kind.Ping, Kind.Pong), id: u32, data: msgpackValue }, { requiredKeys: ['kind', 'id'] }),
  fc.record({
    kind: fc.constant(Kind.Error), id: fc.nat({ max: 0xffff_ffff }), fatal: fc.boolean(),
    error: fc.record({ code: text, message: text, data: msgpackValue }, { requiredKeys: ['code', 'message'] }),
  }),
  fc.record(
    { kind: fc.constant(Kind.Request), id: u32, channel: fc.nat({ max: 0xffff_ffff }), op: text, args: msgpackValue, timeoutMs: fc.nat({ max: 0xffff_ffff }) },
    { requiredKeys: ['kind', 'id', 'channel', 'op'] },
  ),
  fc.record({ kind: fc.constant(Kind.Response), id: u32, result: msgpackValue }, { requiredKeys: ['kind', 'id'] }),
  fc.record({ kind: fc.constant(Kind.Cancel), id: u32, reason: text }, { requiredKeys: ['kind', 'id'] }),
  fc.record({ kind: fc.constant(Kind.Open), id: u32, run: text, handler: text, config: msgpackValue, dedicated: fc.boolean() }, { requiredKeys: ['kind', 'id', 'run'] }),
  fc.record({ kind: fc.constant(Kind.Attach), id: u32, run: text }),
  fc.record({ kind: fc.constant(Kind.Publish), channel: u32, record: msgpackValue }),
  fc.record({ kind: fc.constantFrom(Kind.Sync, Kind.Detach), id: u32, channel: u32 }),
  fc.record(
    { kind: fc.constant(Kind.Finish), id: u32, channel: u32, status: fc.constantFrom('ok' as const, 'failed' as const, 'interrupted' as const), exitCode: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), reason: text },
    { requiredKeys: ['kind', 'id', 'channel'] },
  ),
  fc.record({ kind: fc.constant(Kind.Event), id: u32, topic: text, seq: fc.nat(), time: fc.nat(), data: msgpackValue }, { requiredKeys: ['kind', 'id', 'topic', 'seq', 'time'] }),
) as fc.Arbitrary<Message>;

/** Cut points for re-chunking a buffer of `length` bytes: sorted, distinct, inside it. */
export function cutPoints(maxCuts = 20): fc.Arbitrary<number[]> {
  return fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: maxCuts });
}

export function rechunk(bytes: Buffer, fractions: readonly number[]): Buffer[] {
  const cuts = [...new Set(fractions.map((f) => Math.floor(f * bytes.length)))].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.subarray(at, cut));
    at = cut;
  }
  return chunks;
}
