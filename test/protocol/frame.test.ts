import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_PAYLOAD_BYTES, encodeFrame, ErrorCode, type Frame, FrameDecoder, HEADER_BYTES,
} from '../../protocol/index.js';
import { expectMuxvisorError } from '../helpers/errors.js';

const frame = (id: number, payload: number[] | Buffer = [], channel = 0, kind = 0x22) =>
  encodeFrame({ kind, flags: 0, id, channel }, Buffer.from(payload));

function collect(options?: { maxPayloadBytes?: number }) {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder((f) => frames.push(f), options);
  return { frames, decoder };
}

describe('FrameDecoder', () => {
  it('lays out the header as PROTOCOL.md says: magic, version, kind, flags, then little-endian length, id, channel', () => {
    const bytes = encodeFrame({ kind: 0x10, flags: 0, id: 0x01020304, channel: 7 }, Buffer.from([0xc0]));
    expect(bytes.toString('hex')).toBe('c1011000' + '01000000' + '04030201' + '07000000' + 'c0');
  });

  it('decodes a stream delivered one byte at a time', () => {
    const { frames, decoder } = collect();
    const stream = Buffer.concat([frame(1, [1, 2, 3], 9), frame(2, []), frame(3, [0xc0])]);
    for (const byte of stream) decoder.push(Buffer.from([byte]));
    expect(frames.map((f) => [f.id, f.channel, [...f.payload]])).toEqual([[1, 9, [1, 2, 3]], [2, 0, []], [3, 0, [0xc0]]]);
    expect(decoder.pendingBytes).toBe(0);
    decoder.end();
  });

  it('decodes many frames from one chunk, in order', () => {
    const { frames, decoder } = collect();
    decoder.push(Buffer.concat(Array.from({ length: 100 }, (_, i) => frame(i + 1, [i]))));
    expect(frames.map((f) => f.id)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(frames.map((f) => f.payload[0])).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(decoder.framesDecoded).toBe(100);
  });

  it('stops between whole frames when asked, and the rest of the chunk pushed later gives the same frames', () => {
    // Every way to stop: after each frame of a chunk that also ends inside a frame.
    const stream = Buffer.concat([...Array.from({ length: 6 }, (_, i) => frame(i + 1, [i, i])), frame(7, [7, 7, 7])]);
    const cut = stream.length - 2;
    for (let stopAfter = 1; stopAfter <= 6; stopAfter++) {
      const { frames, decoder } = collect();
      let seen = 0;
      const used = decoder.push(stream.subarray(0, cut), () => ++seen === stopAfter);
      expect(frames.map((f) => f.id)).toEqual(Array.from({ length: stopAfter }, (_, i) => i + 1));
      expect(used).toBe(stopAfter * frame(1, [0, 0]).length);
      expect(decoder.push(stream.subarray(used, cut), () => false)).toBe(cut - used);
      decoder.push(stream.subarray(cut));
      expect(frames.map((f) => [f.id, [...f.payload]])).toEqual([...Array.from({ length: 6 }, (_, i) => [i + 1, [i, i]]), [7, [7, 7, 7]]]);
      decoder.end();
    }
  });

  it('does not ask to stop after the last frame of a chunk, and returns the whole length', () => {
    const { frames, decoder } = collect();
    let asked = 0;
    expect(decoder.push(Buffer.concat([frame(1), frame(2)]), () => (asked++, true))).toBe(HEADER_BYTES);
    expect(decoder.push(frame(2), () => (asked++, true))).toBe(HEADER_BYTES);
    expect(asked).toBe(1);
    expect(frames.map((f) => f.id)).toEqual([1, 2]);
  });

  it('decodes a frame split across two chunks at every possible offset', () => {
    const whole = Buffer.concat([frame(1, [5, 6, 7, 8]), frame(2, [9])]);
    for (let cut = 1; cut < whole.length; cut++) {
      const { frames, decoder } = collect();
      decoder.push(whole.subarray(0, cut));
      decoder.push(whole.subarray(cut));
      expect(frames.map((f) => [f.id, [...f.payload]])).toEqual([[1, [5, 6, 7, 8]], [2, [9]]]);
    }
  });

  it('keeps a payload that arrives split even after the chunks it came from are overwritten', () => {
    const { frames, decoder } = collect();
    const whole = frame(1, [1, 2, 3, 4]);
    const a = Buffer.from(whole.subarray(0, 18));
    const b = Buffer.from(whole.subarray(18));
    decoder.push(a);
    decoder.push(b);
    a.fill(0);
    b.fill(0);
    expect([...(frames[0] as Frame).payload]).toEqual([1, 2, 3, 4]);
  });

  it('refuses a bad magic byte as soon as the first byte arrives', () => {
    const { decoder } = collect();
    const error = expectMuxvisorError(() => decoder.push(Buffer.from('G')), ErrorCode.BadMagic);
    expect(error.message).toContain('0x47');
    expect(error.data).toMatchObject({ offset: 0, byte: 0x47 });
  });

  it('names the stream offset of a bad frame that follows good ones across chunks', () => {
    const { decoder } = collect();
    const good = frame(1, [1, 2]);
    decoder.push(good.subarray(0, 5));
    // The bad byte is the first after the good 18-byte frame: stream offset 18.
    expect(() => decoder.push(Buffer.concat([good.subarray(5), Buffer.from('xyz')]))).toThrow(/stream offset 18/);
  });

  it('refuses an unsupported frame version as soon as the second byte arrives', () => {
    const { decoder } = collect();
    const error = expectMuxvisorError(() => decoder.push(Buffer.from([0xc1, 0x02])), ErrorCode.UnsupportedVersion);
    expect(error.message).toContain('frame version 2');
    expect(error.data).toMatchObject({ version: 2, supported: [1] });
  });

  it('refuses a header with flags set', () => {
    const { decoder } = collect();
    expectMuxvisorError(() => decoder.push(Buffer.from([0xc1, 0x01, 0x22, 0x80])), ErrorCode.BadFrame);
  });

  it('refuses a frame over the cap from its header alone, before allocating anything for it', () => {
    const { decoder } = collect();
    const header = Buffer.from('c1012200ffffffff', 'hex'); // 8 bytes: the length has arrived
    const error = expectMuxvisorError(() => decoder.push(header), ErrorCode.FrameTooLarge);
    expect(error.message).toContain('4294967295 bytes');
    expect(error.message).toContain(`limit of ${DEFAULT_MAX_PAYLOAD_BYTES} bytes`);
    expect(error.data).toMatchObject({ length: 0xffffffff, limit: DEFAULT_MAX_PAYLOAD_BYTES });
    expect(decoder.pendingBytes).toBeLessThanOrEqual(HEADER_BYTES);
  });

  it('accepts a payload exactly at a configured cap and refuses one byte more', () => {
    const ok = collect({ maxPayloadBytes: 64 });
    ok.decoder.push(frame(1, Buffer.alloc(64, 7)));
    expect(ok.frames).toHaveLength(1);
    const over = collect({ maxPayloadBytes: 64 });
    expectMuxvisorError(() => over.decoder.push(frame(1, Buffer.alloc(65, 7))), ErrorCode.FrameTooLarge);
  });

  it('holds at most one incomplete frame of exactly its announced size', () => {
    const { decoder } = collect();
    const big = frame(1, Buffer.alloc(10_000, 1));
    decoder.push(big.subarray(0, 100));
    expect(decoder.pendingBytes).toBe(HEADER_BYTES + 10_000);
    expect(decoder.inFrame).toBe(true);
  });

  it('reports a stream that ends inside a header as truncated, with the counts', () => {
    const { decoder } = collect();
    decoder.push(Buffer.from([0xc1, 0x01, 0x22]));
    const error = expectMuxvisorError(() => decoder.end(), ErrorCode.Truncated);
    expect(error.data).toEqual({ received: 3, expected: 16 });
  });

  it('reports a stream that ends inside a payload as truncated, with the counts', () => {
    const { decoder } = collect();
    decoder.push(frame(1, [1, 2, 3, 4, 5]).subarray(0, 18));
    const error = expectMuxvisorError(() => decoder.end(), ErrorCode.Truncated);
    expect(error.data).toEqual({ received: 18, expected: 21 });
    expect(error.message).toContain('a frame of 21 bytes');
  });

  it('accepts the end of a stream on a frame boundary', () => {
    const { decoder } = collect();
    decoder.push(frame(1, [1]));
    expect(() => decoder.end()).not.toThrow();
  });

  it('stays failed after an error: framing is lost, so later bytes are never trusted', () => {
    const { frames, decoder } = collect();
    const error = expectMuxvisorError(() => decoder.push(Buffer.from([0x00])), ErrorCode.BadMagic);
    expect(() => decoder.push(frame(1, [1]))).toThrow(error);
    expect(() => decoder.end()).toThrow(error);
    expect(frames).toHaveLength(0);
  });

  it('delivers frames before a bad one in the same chunk, and none after it', () => {
    const { frames, decoder } = collect();
    const chunk = Buffer.concat([frame(1, [1]), frame(2, [2]), Buffer.from([0x00]), frame(3, [3])]);
    expectMuxvisorError(() => decoder.push(chunk), ErrorCode.BadMagic);
    expect(frames.map((f) => f.id)).toEqual([1, 2]);
  });

  it('fails for good when the frame callback throws, passing that error on', () => {
    const boom = new Error('consumer failed');
    const decoder = new FrameDecoder(() => {
      throw boom;
    });
    expect(() => decoder.push(frame(1, [1]))).toThrow(boom);
    expect(() => decoder.push(frame(2, [2]))).toThrow(boom);
  });

  it('refuses a cap that is not a 32-bit unsigned integer', () => {
    for (const bad of [-1, 1.5, 2 ** 32, Number.NaN]) {
      expectMuxvisorError(() => new FrameDecoder(() => {}, { maxPayloadBytes: bad }), ErrorCode.InvalidArgument);
    }
  });
});

describe('encodeFrame', () => {
  it('refuses header fields that do not fit their width, naming the field', () => {
    const cases: Array<[string, object]> = [
      ['kind', { kind: 256, flags: 0, id: 0, channel: 0 }],
      ['flags', { kind: 1, flags: 1, id: 0, channel: 0 }],
      ['id', { kind: 1, flags: 0, id: 2 ** 32, channel: 0 }],
      ['channel', { kind: 1, flags: 0, id: 0, channel: -1 }],
      ['id', { kind: 1, flags: 0, id: 0.5, channel: 0 }],
    ];
    for (const [field, header] of cases) {
      const error = expectMuxvisorError(() => encodeFrame(header as never), ErrorCode.BadFrame);
      expect(error.data).toMatchObject({ field });
    }
  });

  it('round-trips through the decoder', () => {
    const { frames, decoder } = collect();
    decoder.push(encodeFrame({ kind: 0x11, flags: 0, id: 0xffffffff, channel: 0xfffffffe }, Buffer.from('hi')));
    expect(frames[0]).toMatchObject({ kind: 0x11, flags: 0, id: 0xffffffff, channel: 0xfffffffe });
    expect((frames[0] as Frame).payload.toString()).toBe('hi');
    expect(frames[0]?.payload).toBeInstanceOf(Buffer);
  });
});
