import { decode as referenceDecode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeMessage, decodeValue, encodeMessage, encodeValue, FrameDecoder, HEADER_BYTES, type Message, MuxvisorError,
} from '../../protocol/index.js';
import { cutPoints, message, msgpackValue, rechunk } from '../helpers/arbitraries.js';

const runs = { numRuns: 300 };

/** Feeds `chunks` to a decoder that decodes every frame into a message; collects what it can. */
function decodeStream(chunks: readonly Buffer[], maxPayloadBytes?: number) {
  const messages: Message[] = [];
  let error: unknown = null;
  let peakPending = 0;
  const decoder = new FrameDecoder((f) => messages.push(decodeMessage(f)), { maxPayloadBytes });
  try {
    for (const chunk of chunks) {
      decoder.push(chunk);
      peakPending = Math.max(peakPending, decoder.pendingBytes);
    }
    decoder.end();
  } catch (e) {
    error = e;
  }
  return { messages, error, peakPending };
}

describe('protocol properties', () => {
  it('every value survives encode and decode, and an independent decoder reads the same bytes alike', () => {
    fc.assert(
      fc.property(msgpackValue, (value) => {
        const bytes = encodeValue(value);
        expect(decodeValue(bytes)).toEqual(value);
        expect(referenceDecode(bytes)).toEqual(decodeValue(bytes));
      }),
      runs,
    );
  });

  it('every message survives encode and decode', () => {
    fc.assert(
      fc.property(message, (m) => {
        const { messages, error } = decodeStream([encodeMessage(m)]);
        expect(error).toBeNull();
        expect(messages).toEqual([m]);
      }),
      runs,
    );
  });

  it('any re-chunking of a stream of frames yields the same messages in the same order', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 20 }), cutPoints(40), (ms, cuts) => {
        const stream = Buffer.concat(ms.map(encodeMessage));
        const { messages, error } = decodeStream(rechunk(stream, cuts));
        expect(error).toBeNull();
        expect(messages).toEqual(ms);
      }),
      runs,
    );
  });

  it('random bytes raise only typed errors and never hold more than the cap', () => {
    const cap = 256;
    // Half of the inputs start with a valid magic and version, so the header and payload paths run too.
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.concat([Buffer.from([0xc1, 0x01]), b])),
    );
    fc.assert(
      fc.property(bytes, cutPoints(10), (input, cuts) => {
        const { error, peakPending } = decodeStream(rechunk(Buffer.from(input), cuts), cap);
        if (error !== null) expect(error).toBeInstanceOf(MuxvisorError);
        expect(peakPending).toBeLessThanOrEqual(HEADER_BYTES + cap);
      }),
      { numRuns: 1000 },
    );
  });

  it('corrupting bytes of a valid stream raises only typed errors, and every frame before the damage arrives intact', () => {
    const damage = fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 10 }), damage, cutPoints(10), (ms, hits, cuts) => {
        const frames = ms.map(encodeMessage);
        const stream = Buffer.concat(frames);
        const positions = hits.map(([where, value]) => {
          const at = Math.min(stream.length - 1, Math.floor(where * stream.length));
          stream[at] = value;
          return at;
        });
        const firstDamage = Math.min(...positions);
        let end = 0;
        const intact = frames.filter((f) => (end += f.length) <= firstDamage).length;
        const { messages, error } = decodeStream(rechunk(stream, cuts));
        if (error !== null) expect(error).toBeInstanceOf(MuxvisorError);
        expect(messages.slice(0, intact)).toEqual(ms.slice(0, intact));
      }),
      runs,
    );
  });

  it('whatever is accepted encodes back to msgpack that is accepted again (a supervisor can always pass on what it took)', () => {
    const timestamp = fc.tuple(fc.constantFrom(4, 8, 12), fc.uint8Array({ minLength: 12, maxLength: 12 })).map(([n, data]) =>
      Buffer.concat([n === 12 ? Buffer.from([0xc7, 0x0c, 0xff]) : Buffer.from([n === 4 ? 0xd6 : 0xd7, 0xff]), Buffer.from(data.subarray(0, n))]));
    const mutated = fc.tuple(msgpackValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 })).map(([v, hits]) => {
      const bytes = Buffer.from(encodeValue(v) as Buffer);
      for (const [at, value] of hits) if (bytes.length > 0) bytes[at % bytes.length] = value;
      return bytes;
    });
    fc.assert(
      fc.property(fc.oneof(timestamp, mutated, fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b))), (bytes) => {
        let value: unknown;
        try {
          value = decodeValue(bytes);
        } catch {
          return; // refused: nothing to pass on
        }
        expect(() => decodeValue(encodeValue(value))).not.toThrow();
      }),
      { numRuns: 3000 },
    );
  });

  it('the msgpack check admits only what msgpackr then decodes: no error ever escapes from msgpackr itself', () => {
    // Mutations of valid encodings reach deep into the type space; plain random bytes cover the rest.
    const mutated = fc.tuple(msgpackValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 })).map(([v, hits]) => {
      const bytes = Buffer.from(encodeValue(v) as Buffer);
      for (const [at, value] of hits) if (bytes.length > 0) bytes[at % bytes.length] = value;
      return bytes;
    });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b))), (bytes) => {
        try {
          decodeValue(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(MuxvisorError);
          // Errors from the checker name the offset; msgpackr's own would not.
          expect((error as MuxvisorError).data).toHaveProperty('offset');
        }
      }),
      { numRuns: 2000 },
    );
  });
});
