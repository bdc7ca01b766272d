/**
 * Bytes for the fuzzer, written by hand so that nothing refuses to build them: frame headers
 * with any field value, and msgpack of any shape (nested a million deep, 16 MiB wide, counts
 * that lie, reserved bytes). Only `encodeValue` (the reference encoder) is used for ordinary
 * values; everything hostile is assembled here byte by byte.
 */
import { encodeValue, Kind, PROTOCOL_VERSIONS } from '../../../protocol/index.js';
import { rawFrame } from '../../helpers/raw-frame.js';

export { type RawHeader, rawFrame } from '../../helpers/raw-frame.js';

/** A well-formed frame of `kind` carrying `value` encoded by the reference encoder (none for undefined). */
export function frameOf(kind: number, value: unknown, routing: { id?: number; channel?: number } = {}): Buffer {
  return rawFrame({ kind, id: routing.id ?? 0, channel: routing.channel ?? 0 }, value === undefined ? undefined : encodeValue(value));
}

/** The fields of a HELLO that the supervisor accepts, for `token`. */
export function helloBody(token: string): Record<string, unknown> {
  return { versions: [PROTOCOL_VERSIONS[0], PROTOCOL_VERSIONS[1]], token, pid: process.pid, name: 'chaos-fuzz', caps: [] };
}

export function helloFrame(token: string, body: Record<string, unknown> = helloBody(token)): Buffer {
  return frameOf(Kind.Hello, body);
}

// ── msgpack by hand ────────────────────────────────────────────────────────────────────────

const u8 = (...bytes: number[]) => Buffer.from(bytes);
const be32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

export const mp = {
  nil: u8(0xc0),
  /** array32 / map32 headers: any count, also one that lies about what follows. */
  array32: (n: number) => Buffer.concat([u8(0xdd), be32(n)]),
  map32: (n: number) => Buffer.concat([u8(0xdf), be32(n)]),
  str: (s: string) => {
    const bytes = Buffer.from(s, 'utf8');
    return Buffer.concat([u8(0xdb), be32(bytes.length), bytes]);
  },
};

/** `depth` arrays (or single-entry maps) nested inside each other around a nil. */
export function deepValue(depth: number, shape: 'array' | 'map'): Buffer {
  const open = shape === 'array' ? u8(0x91) : u8(0x81, 0xa1, 0x6b); // [ … ] or {"k": …}
  const out = Buffer.alloc(open.length * depth + 1);
  for (let i = 0; i < depth; i++) open.copy(out, i * open.length);
  out[out.length - 1] = 0xc0;
  return out;
}

export type HugeShape = 'nils' | 'ints' | 'map' | 'str' | 'bin' | 'small-maps';

/**
 * One msgpack value of about `bytes` bytes (never more), built to be expensive in a different
 * way each: many tiny values, a map of many keys, one long string, one long binary.
 */
export function hugeValue(bytes: number, shape: HugeShape): Buffer {
  const body = Math.max(0, bytes - 5);
  switch (shape) {
    case 'nils':
      return Buffer.concat([mp.array32(body), Buffer.alloc(body, 0xc0)]);
    case 'ints': {
      const n = Math.floor(body / 2);
      return Buffer.concat([mp.array32(n), Buffer.alloc(n * 2).fill(u8(0xcc, 0x99))]);
    }
    case 'small-maps': {
      const n = Math.floor(body / 4);
      return Buffer.concat([mp.array32(n), Buffer.alloc(n * 4).fill(u8(0x81, 0xa1, 0x61, 0x01))]);
    }
    case 'map': {
      // keys "k0000000".."k9999999" (fixstr of 8) → uint8 values: 11 bytes an entry, all distinct
      const n = Math.min(Math.floor(body / 11), 9_999_999);
      const out = Buffer.alloc(5 + n * 11);
      mp.map32(n).copy(out, 0);
      for (let i = 0, at = 5; i < n; i++, at += 11) {
        out[at] = 0xa8;
        out.write(`k${String(i).padStart(7, '0')}`, at + 1, 'latin1');
        out[at + 9] = 0xcc;
        out[at + 10] = i & 0xff;
      }
      return out;
    }
    case 'str':
      return Buffer.concat([u8(0xdb), be32(body), Buffer.alloc(body, 0x78)]);
    case 'bin':
      return Buffer.concat([u8(0xc6), be32(body), Buffer.alloc(body, 0xab)]);
  }
}

/** Payloads that are not one msgpack value section 3 of PROTOCOL.md accepts, with why. */
export const MALFORMED: ReadonlyArray<{ why: string; bytes: Buffer }> = [
  { why: 'the reserved byte 0xc1', bytes: u8(0xc1) },
  { why: 'a trailing byte after the value', bytes: u8(0x01, 0x02) },
  { why: 'two values', bytes: u8(0x80, 0x80) },
  { why: 'an array32 announcing 2^32-1 items', bytes: Buffer.concat([mp.array32(0xffff_ffff), u8(0xc0, 0xc0)]) },
  { why: 'a map32 announcing 2^32-1 entries', bytes: Buffer.concat([mp.map32(0xffff_ffff), u8(0xa1, 0x61, 0xc0)]) },
  { why: 'a str32 announcing 2^32-1 bytes', bytes: Buffer.concat([u8(0xdb), be32(0xffff_ffff), u8(0x61)]) },
  { why: 'a bin32 announcing more than follows', bytes: Buffer.concat([u8(0xc6), be32(1000), Buffer.alloc(10)]) },
  { why: 'a value cut off (uint32 with 2 bytes)', bytes: u8(0xce, 0x00, 0x01) },
  { why: 'an array as a map key', bytes: u8(0x81, 0x90, 0xc0) },
  { why: 'a nil as a map key', bytes: u8(0x81, 0xc0, 0xc0) },
  { why: 'a float as a map key', bytes: u8(0x81, 0xca, 0, 0, 0, 0, 0xc0) },
  { why: 'extension type 5', bytes: u8(0xd4, 0x05, 0x00) },
  { why: 'a timestamp of 3 bytes', bytes: u8(0xc7, 0x03, 0xff, 0, 0, 0) },
  { why: 'a timestamp with 10^9 nanoseconds', bytes: Buffer.concat([u8(0xc7, 0x0c, 0xff), be32(1_000_000_000), be32(0), be32(0)]) },
  { why: 'a timestamp beyond the range of a date', bytes: Buffer.concat([u8(0xc7, 0x0c, 0xff), be32(0), be32(0x7fff_ffff), be32(0)]) },
  { why: 'an ext8 whose type byte is missing', bytes: u8(0xc7, 0x04) },
];

/** Values of every msgpack type, for fields that must hold some other type. */
export function sampleValues(): Array<{ name: string; value: unknown }> {
  return [
    { name: 'nil', value: null },
    { name: 'true', value: true },
    { name: 'false', value: false },
    { name: '0', value: 0 },
    { name: '-1', value: -1 },
    { name: '1.5', value: 1.5 },
    { name: 'NaN', value: Number.NaN },
    { name: 'Infinity', value: Number.POSITIVE_INFINITY },
    { name: '2^32', value: 2 ** 32 },
    { name: '2^53+2 (float64)', value: 2 ** 53 + 2 },
    { name: '-2^63 (int64)', value: -(2n ** 63n) },
    { name: '2^64-1 (uint64)', value: 2n ** 64n - 1n },
    { name: 'empty string', value: '' },
    { name: 'a string', value: 'fuzz' },
    { name: 'a string of 5000', value: 'z'.repeat(5000) },
    { name: 'binary', value: Buffer.from([1, 2, 3]) },
    { name: 'empty array', value: [] },
    { name: 'an array', value: [1, 'two', null] },
    { name: 'empty map', value: {} },
    { name: 'a map', value: { a: 1, b: [2] } },
    { name: 'a timestamp', value: new Date(0) },
  ];
}
