/**
 * The run log's byte layout, version 1. Bytes only: no file I/O here, and payloads are never decoded.
 *
 * A run log is a 16-byte file header followed by entries, back to back, all integers little-endian:
 *
 * ```
 *  file header (16 bytes)
 *   0       8    magic    ASCII "MUXVLOG" and a 0x00 byte
 *   8       4    version  format version, 1 (uint32)
 *  12       4    crc      CRC-32 (IEEE) of bytes 0..11 (uint32)
 *
 *  entry (9 + length bytes)
 *   0       4    crc      CRC-32 (IEEE) of bytes 4 .. 9 + length of the entry: length, type, payload
 *   4       4    length   payload bytes, at most 67108864 (uint32)
 *   8       1    type     EntryType
 *   9       n    payload  RECORD: a record's msgpack bytes as the client sent them; others: opaque
 * ```
 *
 * Contract: an entry is valid only when it is whole, its length is within the limit, its CRC
 * matches and its type is known. A reader stops at the first entry that is not whole and correct
 * (a torn or corrupt tail) and keeps everything before it.
 */
import { crc32 } from 'node:zlib';
import CRC32 from 'crc-32';

/** Bytes 0..7 of every run log. */
export const LOG_MAGIC: Buffer = Buffer.from('MUXVLOG\0', 'latin1');
export const LOG_VERSION = 1;
export const FILE_HEADER_BYTES = 16;
/** crc (4) + length (4) + type (1). */
export const ENTRY_HEADER_BYTES = 9;
/** The largest payload one entry may carry: 64 MiB. A larger length field means corruption. */
export const MAX_ENTRY_PAYLOAD_BYTES = 64 * 1024 * 1024;

export const EntryType = {
  /** A record's msgpack bytes, exactly as the client sent them. */
  Record: 1,
  /** Written once, first, by `RunLogWriter.create`: the caller's metadata of the run (msgpack). */
  Open: 2,
  /** How the run ended (msgpack metadata, chosen by the caller). */
  Finish: 3,
  /** A note the caller writes after `RunLogWriter.reopen` cut off a torn tail (msgpack). */
  Recovered: 4,
} as const;

export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** True for the entry types version 1 knows. */
export function isEntryType(type: number): type is EntryType {
  return type >= EntryType.Record && type <= EntryType.Recovered && Number.isInteger(type);
}

/** A new 16-byte file header for the current version. */
export function encodeFileHeader(): Buffer {
  const header = Buffer.alloc(FILE_HEADER_BYTES);
  LOG_MAGIC.copy(header, 0);
  header.writeUInt32LE(LOG_VERSION, 8);
  header.writeUInt32LE(crc32(header.subarray(0, 12)), 12);
  return header;
}

/**
 * Checks a file header and returns what is wrong with it, or null when it is a valid version-1
 * header. The magic is checked first, then the CRC, then the version, so that a flipped bit in
 * the version field reads as corruption rather than as a newer format.
 */
export function checkFileHeader(header: Buffer): string | null {
  if (header.length < FILE_HEADER_BYTES) {
    return `file of ${header.length} bytes is shorter than the ${FILE_HEADER_BYTES}-byte header`;
  }
  if (!header.subarray(0, 8).equals(LOG_MAGIC)) {
    return `bad magic ${header.subarray(0, 8).toString('hex')} (expected ${LOG_MAGIC.toString('hex')}, "MUXVLOG\\0"): not a muxvisor run log`;
  }
  const stored = header.readUInt32LE(12);
  const computed = crc32(header.subarray(0, 12));
  if (stored !== computed) return `header CRC mismatch: stored ${hex32(stored)}, computed ${hex32(computed)}`;
  const version = header.readUInt32LE(8);
  if (version !== LOG_VERSION) return `format version ${version} is not supported (supported: ${LOG_VERSION})`;
  return null;
}

/**
 * Writes the length and type of an entry header at `at` of `target`; the CRC field is left for
 * `sealEntry`, which needs the payload in place. The caller checks that 9 bytes fit and that
 * `length` is within MAX_ENTRY_PAYLOAD_BYTES.
 */
export function writeEntryHeader(target: Buffer, at: number, type: number, length: number): void {
  target[at + 4] = length;
  target[at + 5] = length >>> 8;
  target[at + 6] = length >>> 16;
  target[at + 7] = length >>> 24;
  target[at + 8] = type;
}

/**
 * Computes and stores the CRC of the entry at `at` whose header and `length` payload bytes are
 * already in `target`: one crc32 call over length + type + payload, which are contiguous.
 */
export function sealEntry(target: Buffer, at: number, length: number): void {
  const crc = entryCrc(target, at, length);
  target[at] = crc;
  target[at + 1] = crc >>> 8;
  target[at + 2] = crc >>> 16;
  target[at + 3] = crc >>> 24;
}

/** Entries up to this size are summed in JS (crc-32), larger ones by zlib: each is faster there. */
const SMALL_ENTRY_BYTES = 1024;

/**
 * The CRC an entry should carry, computed over `length` + type + payload starting at `at + 4`.
 * Both routes give the same CRC-32 (IEEE); for a ~100-byte record, crc-32's table-driven JS takes
 * about 130 ns where the call into zlib costs about 220 ns (measured on these machines).
 */
export function entryCrc(source: Buffer, at: number, length: number): number {
  // A plain Uint8Array view is measurably cheaper to make than `source.subarray(...)` (~45 ns).
  const view = new Uint8Array(source.buffer, source.byteOffset + at + 4, length + 5);
  return length + 5 <= SMALL_ENTRY_BYTES ? CRC32.buf(view) >>> 0 : crc32(view);
}

/** A new buffer holding one whole entry: header, then a copy of `payload`. For tests and tools. */
export function encodeEntry(type: number, payload: Uint8Array): Buffer {
  const entry = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + payload.length);
  writeEntryHeader(entry, 0, type, payload.length);
  entry.set(payload, ENTRY_HEADER_BYTES);
  sealEntry(entry, 0, payload.length);
  return entry;
}

/** `0x1234abcd`, for messages. */
export function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}
