/**
 * Valid frames with one thing changed: a header field set to a chosen or random value, the
 * length made shorter or longer than the payload, bits flipped in the header or the payload,
 * bytes of the payload overwritten. The frame is sent after 0-2 untouched valid frames; what the
 * supervisor makes of it is mostly unpredictable, so most cases are judged by `settle` (a PONG
 * to a probe, or a fatal ERROR and a close). Magic, version and flags have one right answer.
 */
import { ErrorCode, HEADER_BYTES, MAX_U32 } from '../../../protocol/index.js';
import { type CaseEnv, expectFatal, type Family, type FuzzCase, Ids, settle } from './case.js';
import { validFrame } from './bytes.js';
import { helloFrame } from './wire.js';

const MUTATIONS = ['magic', 'version', 'flags', 'kind', 'id', 'channel', 'length', 'header bits', 'payload bits', 'payload bytes'] as const;
type Mutation = (typeof MUTATIONS)[number];

/** Mutations with one right answer: the code, found from the header alone. */
const DEFINITE: Partial<Record<Mutation, string>> = {
  magic: ErrorCode.BadMagic,
  version: ErrorCode.UnsupportedVersion,
  flags: ErrorCode.BadFrame,
};

export const mutated: Family = {
  name: 'mutated',
  weight: 14,
  make(rng): FuzzCase {
    const ids = new Ids();
    const hello = rng.chance(0.1);
    const before = hello ? [] : Array.from({ length: rng.int(0, 2) }, () => validFrame(rng, ids));
    const target = hello ? null : validFrame(rng, ids);
    const mutation = rng.pick(MUTATIONS);
    const draws = Array.from({ length: 8 }, () => rng.int(0, 0x7fff_ffff));
    const choice = rng.int(0, 3);
    return {
      family: 'mutated',
      what: `${hello ? 'hello' : target?.name} with its ${mutation} mutated, after ${before.length} valid frames`,
      async run(env: CaseEnv) {
        const conn = hello ? await env.connect() : await env.welcomed();
        const frame = Buffer.from(hello ? helloFrame(env.target.token) : (target?.frame as Buffer));
        const payloadLength = frame.length - HEADER_BYTES;
        const d = (i: number) => draws[i % draws.length] as number;
        switch (mutation) {
          case 'magic': frame[0] = d(0) % 255 === 0xc1 ? 0 : (d(0) % 255); break;
          case 'version': frame[1] = 2 + (d(0) % 254); break;
          case 'flags': frame[3] = 1 + (d(0) % 255); break;
          case 'kind': frame[2] = d(0) % 256; break;
          case 'id': frame.writeUInt32LE([0, 1, MAX_U32, d(0) >>> 0][choice] as number, 8); break;
          case 'channel': frame.writeUInt32LE([0, 1, MAX_U32, d(0) >>> 0][choice] as number, 12); break;
          case 'length': {
            const lies = [0, Math.max(0, payloadLength - 1 - (d(0) % Math.max(1, payloadLength))), payloadLength + 1, payloadLength + 1 + (d(0) % 100_000)];
            frame.writeUInt32LE(lies[choice] as number, 4);
            break;
          }
          case 'header bits':
            for (let i = 0; i <= d(7) % 3; i++) frame[d(i) % HEADER_BYTES] = (frame[d(i) % HEADER_BYTES] as number) ^ (1 << (d(i + 1) % 8));
            break;
          case 'payload bits':
          case 'payload bytes':
            if (payloadLength === 0) frame[2] = d(0) % 256; // no payload to touch: the kind instead
            for (let i = 0; i <= d(7) % 8 && payloadLength > 0; i++) {
              const at = HEADER_BYTES + (d(i) % payloadLength);
              frame[at] = mutation === 'payload bits' ? (frame[at] as number) ^ (1 << (d(i + 1) % 8)) : d(i + 1) % 256;
            }
            break;
        }
        conn.write(Buffer.concat([...before.map((f) => f.frame), frame]));
        const code = DEFINITE[mutation];
        return code ? expectFatal(env, conn, [code], true) : settle(env, conn);
      },
    };
  },
};
