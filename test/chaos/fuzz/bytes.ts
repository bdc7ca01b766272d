/**
 * Families that attack the framing: random bytes, valid frames cut short (and whole frames cut
 * into slivers), and length fields from just over the cap to 2^32-1 (and the cap itself).
 */
import { ErrorCode, HEADER_BYTES, Kind, MAX_U32 } from '../../../protocol/index.js';
import type { Rng } from '../random.js';
import { anyAnswer, expectAnswers, expectFatal, type Family, type FuzzCase, Ids } from './case.js';
import type { FuzzConn } from './conn.js';
import { frameOf, helloFrame, rawFrame } from './wire.js';

/** A valid frame a client may send after its handshake, and whether it is answered (by id). */
export interface ValidFrame {
  name: string;
  frame: Buffer;
  /** The id of the answer it gets, or null (PUBLISH, CANCEL, ERROR). */
  answeredBy: number | null;
}

/** A run id of this case's own (a seed repeats it; a fresh home has none of them). */
export const runId = (rng: Rng) => `fuzz-${rng.int(0, 0x7fff_ffff).toString(36)}`;

/** One of the frames a well-behaved client sends, with fields drawn from `rng`. */
export function validFrame(rng: Rng, ids: Ids): ValidFrame {
  const id = ids.next();
  const channel = rng.int(1, 3);
  const make = rng.pick([
    () => ({ name: 'ping', frame: frameOf(Kind.Ping, rng.chance(0.5) ? undefined : { n: rng.int(0, 1e6), s: 'p'.repeat(rng.int(0, 40)) }, { id }), answeredBy: id }),
    () => ({ name: 'request status', frame: frameOf(Kind.Request, { op: 'status' }, { id }), answeredBy: id }),
    () => ({ name: 'request runs.list', frame: frameOf(Kind.Request, { op: 'runs.list', args: { recorded: false }, timeoutMs: 5000 }, { id }), answeredBy: id }),
    () => ({ name: 'open', frame: frameOf(Kind.Open, { run: runId(rng), config: { lr: rng.float() } }, { id }), answeredBy: id }),
    () => ({ name: 'attach', frame: frameOf(Kind.Attach, { run: runId(rng) }, { id }), answeredBy: id }),
    () => ({ name: 'publish', frame: frameOf(Kind.Publish, { step: rng.int(0, 1e6), loss: rng.float() }, { channel }), answeredBy: null }),
    () => ({ name: 'sync', frame: frameOf(Kind.Sync, undefined, { id, channel }), answeredBy: id }),
    () => ({ name: 'finish', frame: frameOf(Kind.Finish, { status: 'ok', exitCode: 0 }, { id, channel }), answeredBy: id }),
    () => ({ name: 'detach', frame: frameOf(Kind.Detach, undefined, { id, channel }), answeredBy: id }),
    () => ({ name: 'request to a run', frame: frameOf(Kind.Request, { op: 'echo', args: [1, 2] }, { id, channel }), answeredBy: id }),
    () => ({ name: 'cancel', frame: frameOf(Kind.Cancel, { reason: 'fuzz' }, { id: rng.int(1, 1000) }), answeredBy: null }),
    () => ({ name: 'error', frame: frameOf(Kind.Error, { code: 'MUXVISOR_TIMEOUT', message: 'client side' }, { id: 0 }), answeredBy: null }),
  ]);
  return make();
}

/** Writes `bytes` in `pieces` slivers with a turn of the event loop between, so they arrive apart. */
export async function writeInPieces(conn: FuzzConn, bytes: Buffer, pieces: number, rng: Rng): Promise<void> {
  const cuts = [...new Set(Array.from({ length: pieces - 1 }, () => rng.int(1, Math.max(1, bytes.length - 1))))].sort((a, b) => a - b);
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut <= at) continue;
    conn.write(bytes.subarray(at, cut));
    at = cut;
    await new Promise((r) => setTimeout(r, 1));
  }
}

export const randomBytes: Family = {
  name: 'random bytes',
  weight: 10,
  make(rng): FuzzCase {
    const afterHello = rng.chance(0.5);
    const size = rng.chance(0.1) ? rng.int(513, 64 * 1024) : rng.int(1, 512);
    const bytes = rng.bytes(size);
    const start = rng.pick(['any', 'magic', 'header'] as const);
    if (start !== 'any') bytes[0] = 0xc1;
    if (start === 'header' && size >= 4) {
      bytes[1] = 1;
      bytes[3] = 0;
    }
    const badMagic = bytes[0] !== 0xc1;
    return {
      family: 'random bytes',
      what: `${size} random bytes (${start === 'any' ? 'any first byte' : start === 'magic' ? 'magic first' : 'a plausible header first'}) ${afterHello ? 'after' : 'before'} the handshake`,
      async run(env) {
        const conn = afterHello ? await env.welcomed() : await env.connect();
        conn.write(bytes);
        return expectFatal(env, conn, badMagic ? [ErrorCode.BadMagic] : null, badMagic);
      },
    };
  },
};

export const truncated: Family = {
  name: 'truncated',
  weight: 10,
  make(rng): FuzzCase {
    const ids = new Ids();
    const before = rng.chance(0.15);
    const whole = before ? [] : Array.from({ length: rng.int(0, 3) }, () => validFrame(rng, ids));
    const victim = before ? { name: 'hello', frame: Buffer.alloc(0), answeredBy: null } : validFrame(rng, ids);
    const slivers = rng.chance(0.3);
    const pieces = rng.int(1, 6);
    // Whole frames cut into slivers must be answered; a cut frame refused as TRUNCATED.
    if (slivers && !before) {
      return {
        family: 'truncated',
        what: `${whole.length + 1} whole frames (${[...whole, victim].map((f) => f.name).join(', ')}) in ${pieces} slivers`,
        async run(env) {
          const conn = await env.welcomed();
          await writeInPieces(conn, Buffer.concat([...whole, victim].map((f) => f.frame)), pieces, rng);
          const answered = [...whole, victim].flatMap((f) => (f.answeredBy === null ? [] : [f.answeredBy]));
          return expectAnswers(env, conn, answered, anyAnswer);
        },
      };
    }
    const cutDraw = rng.float();
    return {
      family: 'truncated',
      what: `${victim.name} cut short after ${whole.length} whole frames, in ${pieces} pieces, then half-closed`,
      async run(env) {
        const conn = before ? await env.connect() : await env.welcomed();
        const frame = before ? helloFrame(env.target.token) : victim.frame;
        const cut = 1 + Math.floor(cutDraw * (frame.length - 1));
        await writeInPieces(conn, Buffer.concat([...whole.map((f) => f.frame), frame.subarray(0, cut)]), pieces, rng);
        return expectFatal(env, conn, [ErrorCode.Truncated], false);
      },
    };
  },
};

const KINDS = Object.values(Kind) as number[];

export const lengths: Family = {
  name: 'length',
  weight: 8,
  make(rng): FuzzCase {
    const kind = rng.chance(0.8) ? rng.pick(KINDS) : rng.int(0, 255);
    const afterHello = rng.chance(0.7);
    const variant = rng.pick(['over', 'over', 'over', 'cap-ping', 'cap-cut'] as const);
    const overDraw = rng.pick(['cap+1', 'max', '2^31', 'random', 'cap+small'] as const);
    const extra = rng.int(0, 64);
    const spread = rng.int(0, 0x7fff_ffff);
    if (variant === 'over') {
      return {
        family: 'length',
        what: `kind 0x${kind.toString(16)} announcing ${overDraw} payload bytes ${afterHello ? 'after' : 'before'} the handshake`,
        async run(env) {
          const cap = env.target.cap;
          const length = { 'cap+1': cap + 1, max: MAX_U32, '2^31': 2 ** 31, random: cap + 1 + (spread % (MAX_U32 - cap)), 'cap+small': cap + 1 + (spread % 65536) }[overDraw];
          const conn = afterHello ? await env.welcomed() : await env.connect();
          conn.write(rawFrame({ kind, length, id: 1, channel: 0 }, Buffer.alloc(extra, 0xc0)).subarray(0, HEADER_BYTES + extra));
          return expectFatal(env, conn, [ErrorCode.FrameTooLarge], true);
        },
      };
    }
    return {
      family: 'length',
      what: variant === 'cap-ping' ? 'a PING of exactly the payload limit' : 'a frame announcing exactly the payload limit, cut short',
      heavy: true,
      async run(env) {
        const cap = env.target.cap;
        const conn = await env.welcomed();
        if (variant === 'cap-ping') {
          const payload = Buffer.alloc(cap, 0x55);
          payload[0] = 0xc6; // bin32 of cap-5 bytes: exactly `cap` bytes of msgpack
          payload.writeUInt32BE(cap - 5, 1);
          conn.write(rawFrame({ kind: Kind.Ping, id: 7 }, payload));
          return expectAnswers(env, conn, [7], (_id, a) => (a.kind === Kind.Pong && a.length === cap ? null : `expected a PONG of ${cap} bytes, got kind ${a.kind} of ${a.length}`));
        }
        // A valid start (a bin32 header announcing the rest), so that only the cut is wrong.
        const start = Buffer.alloc(5 + (spread % (1024 * 1024)), 0x55);
        start[0] = 0xc6;
        start.writeUInt32BE(cap - 5, 1);
        conn.write(rawFrame({ kind: Kind.Publish, length: cap, channel: 1 }, start));
        return expectFatal(env, conn, [ErrorCode.Truncated], false);
      },
    };
  },
};
