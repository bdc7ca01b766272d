/**
 * Families that attack the payload: msgpack nested far beyond the limit of 100 (and right at
 * it), values near the frame cap built to be expensive (millions of tiny values, a map of a
 * million keys, one 16 MiB string), and malformed msgpack (counts that lie, reserved bytes,
 * forbidden extensions and keys), each put where a different part of the supervisor reads it:
 * a PING, a PUBLISH, a supervisor REQUEST, a REQUEST to a run's worker, an OPEN's config, a
 * HELLO, a CANCEL, a SYNC, a PONG.
 */
import { DEFAULT_MAX_DEPTH, encodeValue, ErrorCode, Kind, MAX_DECODED_PAYLOAD_BYTES, MAX_HELLO_PAYLOAD_BYTES } from '../../../protocol/index.js';
import type { Rng } from '../random.js';
import { anyAnswer, type CaseEnv, errorWith, expectAnswers, expectFatal, type Family, type FuzzCase, type Outcome } from './case.js';
import type { FuzzConn, Received } from './conn.js';
import { runId } from './bytes.js';
import { deepValue, frameOf, helloBody, type HugeShape, hugeValue, MALFORMED, rawFrame } from './wire.js';

type Position = 'ping' | 'pong' | 'publish' | 'run publish' | 'request' | 'run request' | 'open' | 'hello' | 'cancel' | 'sync';

/** A fixmap of string keys to already-encoded values. */
function rawMap(entries: Array<[string, Buffer]>): Buffer {
  const parts: Buffer[] = [Buffer.from([0x80 | entries.length])];
  for (const [key, value] of entries) {
    const k = Buffer.from(key, 'latin1');
    parts.push(Buffer.from([0xa0 | k.length]), k, value);
  }
  return Buffer.concat(parts);
}

const str = (s: string) => Buffer.concat([Buffer.from([0xa0 | s.length]), Buffer.from(s, 'latin1')]);
const helloWith = (token: string, x: Buffer) => rawMap([...Object.entries(helloBody(token)).map(([k, v]): [string, Buffer] => [k, encodeValue(v)]), ['x', x]]);

/** Opens a run on `conn` and returns its channel (the OPEN's answer is read first). */
async function openRun(env: CaseEnv, conn: FuzzConn, rng: Rng): Promise<number | null> {
  conn.expect(0x7000_0001);
  conn.write(frameOf(Kind.Open, { run: runId(rng) }, { id: 0x7000_0001 }));
  await conn.until(() => conn.answered(0x7000_0001), 5_000);
  const channel = (conn.answers(0x7000_0001)[0]?.value as { channel?: number } | undefined)?.channel;
  if (typeof channel !== 'number') {
    env.fail('open refused', `a plain OPEN was not answered with a channel: ${JSON.stringify(conn.answers(0x7000_0001)[0] ?? null)}`);
    return null;
  }
  return channel;
}

/** Where the supervisor decodes the message whole: its payload has a smaller limit (PROTOCOL.md section 9). */
const DECODED: Partial<Record<Position, { limit: number; over: { fatal: string } | { answer: string } }>> = {
  request: { limit: MAX_DECODED_PAYLOAD_BYTES, over: { answer: ErrorCode.InvalidArgument } },
  'run request': { limit: MAX_DECODED_PAYLOAD_BYTES, over: { answer: ErrorCode.InvalidArgument } },
  open: { limit: MAX_DECODED_PAYLOAD_BYTES, over: { answer: ErrorCode.InvalidArgument } },
  cancel: { limit: MAX_DECODED_PAYLOAD_BYTES, over: { fatal: ErrorCode.FrameTooLarge } },
  hello: { limit: MAX_HELLO_PAYLOAD_BYTES, over: { fatal: ErrorCode.FrameTooLarge } },
};

/**
 * Puts `value` (msgpack bytes) where `position` says, sends it, and judges: over the limit of
 * what is decoded there, refused unread; else refused as `bad` when that is given; else answered.
 */
async function deliver(env: CaseEnv, rng: Rng, position: Position, value: Buffer, bad: string | null): Promise<Outcome> {
  const token = env.target.token;
  const conn = position === 'hello' ? await env.connect() : await env.welcomed();
  const runChannel = position === 'run request' || position === 'run publish' ? await openRun(env, conn, rng) : 0;
  if (runChannel === null) return 'answered';
  const id = 11;
  const frames: Record<Position, () => Buffer> = {
    ping: () => rawFrame({ kind: Kind.Ping, id }, value),
    pong: () => rawFrame({ kind: Kind.Pong, id }, value),
    publish: () => rawFrame({ kind: Kind.Publish, channel: 1 }, value),
    'run publish': () => Buffer.concat([rawFrame({ kind: Kind.Publish, channel: runChannel }, value), rawFrame({ kind: Kind.Sync, id, channel: runChannel })]),
    request: () => rawFrame({ kind: Kind.Request, id }, rawMap([['op', str('status')], ['args', value]])),
    'run request': () => rawFrame({ kind: Kind.Request, id, channel: runChannel }, rawMap([['op', str('echo')], ['args', value]])),
    open: () => rawFrame({ kind: Kind.Open, id }, rawMap([['run', str(runId(rng))], ['config', value]])),
    hello: () => rawFrame({ kind: Kind.Hello }, helloWith(token, value)),
    cancel: () => rawFrame({ kind: Kind.Cancel, id }, rawMap([['reason', value]])),
    sync: () => rawFrame({ kind: Kind.Sync, id, channel: 1 }, value),
  };
  const frame = frames[position]();
  conn.write(frame);
  const decoded = DECODED[position];
  const payload = frame.readUInt32LE(4);
  if (decoded !== undefined && payload > decoded.limit) {
    if ('fatal' in decoded.over) return expectFatal(env, conn, [decoded.over.fatal], true);
    return expectAnswers(env, conn, [id], errorWith(decoded.over.answer));
  }
  if (bad !== null) return expectFatal(env, conn, [bad], true);
  switch (position) {
    case 'hello':
      return expectAnswers(env, conn, [], () => null).then((o) => {
        if (!conn.received.some((r) => r.kind === Kind.Welcome)) env.fail('valid hello refused', `a HELLO with an extra field of ${value.length} bytes got no WELCOME`);
        return o;
      });
    case 'pong':
    case 'publish':
      return expectAnswers(env, conn, []);
    case 'run publish':
      return expectAnswers(env, conn, [id], (_i, a: Received) => ((a.value as { records?: number } | undefined)?.records === 1 ? null : `the SYNC after one record said ${JSON.stringify(a.value ?? a.error)}`));
    case 'ping':
      return expectAnswers(env, conn, [id], (_i, a) => (a.kind === Kind.Pong && a.length === value.length ? null : `expected a PONG of ${value.length} bytes, got kind ${a.kind} of ${a.length}`));
    case 'sync':
      return expectAnswers(env, conn, [id], errorWith(ErrorCode.UnknownRun));
    default:
      return expectAnswers(env, conn, [id], anyAnswer);
  }
}

const DEEP_POSITIONS: readonly Position[] = ['ping', 'publish', 'request', 'run request', 'open', 'hello'];

export const deep: Family = {
  name: 'deep msgpack',
  weight: 6,
  make(rng): FuzzCase {
    const depth = rng.pick([DEFAULT_MAX_DEPTH - 1, DEFAULT_MAX_DEPTH, DEFAULT_MAX_DEPTH + 1, DEFAULT_MAX_DEPTH + 2, 1000, rng.int(101, 20_000), 100_000, 1_000_000]);
    const shape = rng.pick(['array', 'map'] as const);
    const position = rng.pick(DEEP_POSITIONS);
    // The message's own map is one level: a value inside it may be one less deep.
    const own = position === 'ping' || position === 'publish' ? 0 : 1;
    const bad = depth > DEFAULT_MAX_DEPTH;
    return {
      family: 'deep msgpack',
      what: `${shape}s nested ${depth} deep in a ${position}`,
      heavy: depth >= 100_000,
      run: (env) => deliver(env, rng, position, deepValue(depth - own, shape), bad ? ErrorCode.BadPayload : null),
    };
  },
};

const HUGE_SHAPES: readonly HugeShape[] = ['nils', 'ints', 'small-maps', 'map', 'str', 'bin'];
const HUGE_POSITIONS: readonly Position[] = ['ping', 'publish', 'run publish', 'request', 'run request', 'open', 'hello', 'cancel'];

export const huge: Family = {
  name: 'huge msgpack',
  weight: 5,
  make(rng): FuzzCase {
    const shape = rng.pick(HUGE_SHAPES);
    const position = rng.pick(HUGE_POSITIONS);
    const nearCap = rng.chance(0.3);
    const scale = rng.float();
    return {
      family: 'huge msgpack',
      what: `a ${shape} value of ${nearCap ? 'nearly the cap' : 'many'} bytes in a ${position}`,
      heavy: true,
      run(env) {
        const room = env.target.cap - 64; // the message's own map and header fields
        const size = nearCap ? room - Math.floor(scale * 65536) : Math.floor(64 * 1024 * (room / (64 * 1024)) ** scale);
        // A CANCEL's reason must be a string of at most 4096 characters: anything this big is refused.
        return deliver(env, rng, position, hugeValue(size, shape), position === 'cancel' ? ErrorCode.BadMessage : null);
      },
    };
  },
};

const MALFORMED_POSITIONS: readonly Position[] = ['ping', 'pong', 'publish', 'request', 'run request', 'hello', 'sync'];

export const malformed: Family = {
  name: 'malformed msgpack',
  weight: 6,
  make(rng): FuzzCase {
    const bad = rng.pick(MALFORMED);
    const position = rng.pick(MALFORMED_POSITIONS);
    return {
      family: 'malformed msgpack',
      what: `${bad.why} in a ${position}`,
      run: (env) => deliver(env, rng, position, bad.bytes, ErrorCode.BadPayload),
    };
  },
};
