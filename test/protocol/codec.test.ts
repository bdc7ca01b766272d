import { decode as referenceDecode, encode as referenceEncode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import {
  checkMsgpack, decodeValue, encodeFrameWithValue, encodeValue, ErrorCode, HEADER_BYTES, Kind,
} from '../../protocol/index.js';
import { expectMuxvisorError } from '../helpers/errors.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('encodeValue / decodeValue', () => {
  it('round-trips the values records are made of', () => {
    const value = {
      s: 'héllo', n: -17, big: 2 ** 40, f: 0.25, t: true, z: null, a: [1, 'two', [3]],
      nested: { deep: { deeper: [{}] } }, bin: Buffer.from([1, 2, 3]), when: new Date(1_700_000_000_123),
    };
    expect(decodeValue(encodeValue(value))).toEqual(value);
  });

  it('sends undefined as no payload at all, and undefined inside a value as nil', () => {
    expect(encodeValue(undefined)).toHaveLength(0);
    expect(decodeValue(Buffer.alloc(0))).toBeUndefined();
    expect(decodeValue(encodeValue({ a: undefined, b: [undefined] }))).toEqual({ a: null, b: [null] });
  });

  it('writes plain msgpack that an independent decoder (@msgpack/msgpack) reads the same', () => {
    const value = { run: 'r1', step: 3, loss: 0.5, tags: ['a'], blob: new Uint8Array([9]), neg: -70000 };
    // The reference decoder returns binary as a view of its input, which is a Buffer here.
    expect(referenceDecode(encodeValue(value))).toEqual({ ...value, blob: Buffer.from([9]) });
  });

  it('reads what an independent encoder writes, smallest headers and all', () => {
    const value = { k: 'v', list: [1, 2, 3], m: { x: 1.5 }, u64: 2 ** 53 - 1 };
    expect(decodeValue(referenceEncode(value))).toEqual(value);
  });

  it('decodes 64-bit integers inside ±2^53 as numbers and larger ones as bigint', () => {
    expect(decodeValue(hex('cf 00 00 00 00 00 00 00 05'))).toBe(5);
    expect(decodeValue(hex('cf ff ff ff ff ff ff ff ff'))).toBe(2n ** 64n - 1n);
  });

  it('refuses what msgpack cannot carry with MUXVISOR_INVALID_ARGUMENT', () => {
    expectMuxvisorError(() => encodeValue(Symbol('s')), ErrorCode.InvalidArgument);
    expectMuxvisorError(() => encodeValue({ huge: 2n ** 70n }), ErrorCode.InvalidArgument);
    expectMuxvisorError(() => encodeValue({ when: new Date(Number.NaN) }), ErrorCode.InvalidArgument);
  });

  it('decodes the widest dates a timestamp may hold and encodes them back to the same value', () => {
    for (const ms of [8.64e15, -8.64e15, 0, -1]) {
      const date = new Date(ms);
      expect(decodeValue(encodeValue(date))).toEqual(date);
    }
  });

  it('builds a whole frame in one buffer: header, then the payload msgpackr wrote after it', () => {
    const frame = encodeFrameWithValue({ kind: Kind.Publish, flags: 0, id: 0, channel: 3 }, { a: 1 });
    expect(frame.readUInt32LE(4)).toBe(frame.length - HEADER_BYTES);
    expect(frame.readUInt32LE(12)).toBe(3);
    expect(decodeValue(frame.subarray(HEADER_BYTES))).toEqual({ a: 1 });
    expect(encodeFrameWithValue({ kind: Kind.Sync, flags: 0, id: 1, channel: 3 }, undefined)).toHaveLength(HEADER_BYTES);
  });
});

describe('checkMsgpack refuses, naming the byte', () => {
  const refuse = (bytes: string, reason: RegExp) => {
    const error = expectMuxvisorError(() => decodeValue(hex(bytes)), ErrorCode.BadPayload);
    expect(error.message).toMatch(reason);
    expect(error.data).toHaveProperty('offset');
  };

  it('the reserved byte 0xc1, at the top and nested', () => {
    refuse('c1', /0xc1 is reserved/);
    refuse('81 a1 61 c1', /at byte 3: byte 0xc1/);
  });

  it('trailing bytes after the value', () => refuse('01 02', /1 trailing bytes/));
  it('a value cut off in the middle', () => refuse('a5 68 69', /runs past the end/));
  it('a container with fewer values than it announces', () => refuse('92 92 01 01', /ends inside a value/));

  it('a forged count that the bytes left could never hold, before anything is sized from it', () => {
    refuse('dd ff ff ff ff 01', /announces 4294967295 values but only 1 bytes follow/);
    refuse('df ff ff ff ff', /announces 8589934590 values/);
  });

  it('extension types other than the timestamp', () => {
    refuse('d4 05 00', /extension type 5 is not allowed/);
    refuse('d4 72 40', /extension type 114/); // msgpackr's record definition
    refuse('c7 03 ff 00 00 00', /timestamp of 3 bytes/);
  });

  it('map keys that are neither strings nor integers', () => {
    refuse('81 91 01 01', /map key of type 0x91/);
    refuse('81 c0 01', /map key of type 0xc0/);
  });

  it('nesting deeper than the limit, without using the stack', () => {
    refuse(`${'91'.repeat(101)}01`, /nested deeper than 100/);
    expect(() => checkMsgpack(hex(`${'91'.repeat(100)}01`))).not.toThrow();
    expect(() => checkMsgpack(Buffer.alloc(1_000_000, 0x91))).toThrow(/nested deeper/);
  });

  it('timestamps with too many nanoseconds, or outside the range of a date (they would not encode back)', () => {
    refuse('c7 0c ff 3b 9a ca 00 00 00 00 00 00 00 00 00', /10\^9 or more nanoseconds/);
    refuse('d7 ff ee 6b 28 00 00 00 00 00', /10\^9 or more nanoseconds/);
    refuse('c7 0c ff 00 00 00 00 00 00 7f 00 00 00 00 00', /outside the range of a date/);
    refuse('c7 0c ff 00 00 00 00 ff ff 80 00 00 00 00 00', /outside the range of a date/);
  });

  it('and accepts timestamps of 4, 8 and 12 bytes and integer keys', () => {
    for (const ts of ['d6 ff 00 00 00 01', 'd7 ff 00 00 00 00 00 00 00 01', 'c7 0c ff 00 00 00 00 00 00 00 00 00 00 00 01']) {
      expect(decodeValue(hex(ts))).toBeInstanceOf(Date);
    }
    expect(decodeValue(hex('81 01 a1 61'))).toEqual({ 1: 'a' });
  });
});
