/**
 * Is this exactly one well-formed msgpack value that muxvisor accepts? A walk over the bytes that
 * allocates nothing and never recurses, run before msgpackr decodes anything, so that hostile
 * input can neither deepen the stack nor make the decoder size an array from a forged count.
 *
 * Accepted: every standard msgpack type except 0xC1 (reserved by the msgpack spec); map keys that
 * are strings or integers; extension type -1 (timestamp, 4, 8 or 12 bytes) and no other, holding
 * nanoseconds below 10^9 and a time a JavaScript Date can hold (±8.64e12 s), so that a decoded
 * value always encodes back to valid msgpack.
 */
import { ErrorCode, MuxvisorError } from './errors.js';

/** Containers nested deeper than this are refused. */
export const DEFAULT_MAX_DEPTH = 100;

/**
 * Where a walk is: `left[d]` values still expected in the container open at depth `d` (depth 0
 * is the top level), whether it is a map, and the position of the next value.
 */
interface Walk {
  left: number[];
  isMap: number[];
  depth: number;
  pos: number;
}

// Reused by every one-shot check (checking is synchronous), so that it allocates nothing.
const shared: Walk = { left: [], isMap: [], depth: 0, pos: 0 };

function begin(w: Walk, from: number): void {
  w.left[0] = 1;
  w.isMap[0] = 0;
  w.depth = 0;
  w.pos = from;
}

/**
 * Throws MUXVISOR_BAD_PAYLOAD, naming the byte offset and the reason, unless `bytes[from..to)`
 * (all of `bytes` by default) holds one acceptable value. Offsets in errors count from `from`.
 */
export function checkMsgpack(bytes: Uint8Array, maxDepth: number = DEFAULT_MAX_DEPTH, from = 0, to: number = bytes.length): void {
  shared.left[0] = 1;
  shared.isMap[0] = 0;
  shared.depth = 0;
  shared.pos = from;
  walk(shared, bytes, maxDepth, from, to, to);
}

/**
 * `checkMsgpack` of a payload that is still arriving, in steps: `start` when its length is
 * known, `feed` whenever more of it has arrived (it walks every value whose header is there and
 * stops before the first that is not), `finish` once all of it has. The verdict, and the error,
 * are those of `checkMsgpack` over the whole payload; an error is thrown as soon as the bytes
 * that prove it have arrived. So a 16 MiB payload is checked 64 KiB at a time as it comes in,
 * instead of in one ~100 ms walk that holds up every other client.
 */
export class MsgpackCheckInProgress {
  readonly #walk: Walk = { left: [], isMap: [], depth: 0, pos: 0 };
  #maxDepth = DEFAULT_MAX_DEPTH;
  #from = 0;
  #end = 0;

  /** A new payload at `bytes[from..end)`. */
  start(from: number, end: number, maxDepth: number = DEFAULT_MAX_DEPTH): void {
    begin(this.#walk, from);
    this.#maxDepth = maxDepth;
    this.#from = from;
    this.#end = end;
  }

  /** `bytes[from..arrived)` holds what has arrived so far. */
  feed(bytes: Uint8Array, arrived: number): void {
    walk(this.#walk, bytes, this.#maxDepth, this.#from, Math.min(arrived, this.#end), this.#end);
  }

  /** All of `bytes[from..end)` has arrived: completes the check. */
  finish(bytes: Uint8Array): void {
    walk(this.#walk, bytes, this.#maxDepth, this.#from, this.#end, this.#end);
  }
}

/**
 * Walks from where `w` is until the value is complete (true), or until a value whose header
 * bytes are not all in `bytes[..avail)` yet (false: `w` then points at that value). A walk with
 * `avail === end` never stops early.
 */
function walk(w: Walk, bytes: Uint8Array, maxDepth: number, from: number, avail: number, end: number): boolean {
  const left = w.left;
  const isMap = w.isMap;
  let depth = w.depth;
  let pos = w.pos;
  for (;;) {
    while (left[depth] === 0) {
      if (depth === 0) {
        if (pos !== end) fail(pos - from, `${end - pos} trailing bytes after the value`);
        w.depth = 0;
        w.pos = pos;
        return true;
      }
      depth--;
    }
    if (pos >= end) fail(pos - from, 'data ends inside a value');
    if (avail < end && (pos >= avail || pos + Math.min(end - pos, headerBytes(bytes[pos] as number)) > avail)) {
      w.depth = depth;
      w.pos = pos;
      return false;
    }
    const isKey = isMap[depth] === 1 && ((left[depth] as number) & 1) === 0;
    left[depth] = (left[depth] as number) - 1;
    const b = bytes[pos] as number;
    let size = 1; // bytes taken by this value, header included, children excluded
    let children = 0;
    let map = 0;
    let key = false; // may this type be a map key?
    if (b <= 0x7f || b >= 0xe0) key = true;
    else if (b <= 0x8f) (children = (b & 0x0f) * 2), (map = 1);
    else if (b <= 0x9f) children = b & 0x0f;
    else if (b <= 0xbf) (size = 1 + (b & 0x1f)), (key = true);
    else {
      switch (b) {
        case 0xc0: case 0xc2: case 0xc3: break;
        case 0xc1: fail(pos - from, 'byte 0xc1 is reserved by the msgpack spec');
        case 0xc4: size = 2 + uint(bytes, pos, 1, end, from); break;
        case 0xc5: size = 3 + uint(bytes, pos, 2, end, from); break;
        case 0xc6: size = 5 + uint(bytes, pos, 4, end, from); break;
        case 0xc7: size = 3 + ext(bytes, pos, 2, uint(bytes, pos, 1, end, from), end, from); break;
        case 0xc8: size = 4 + ext(bytes, pos, 3, uint(bytes, pos, 2, end, from), end, from); break;
        case 0xc9: size = 6 + ext(bytes, pos, 5, uint(bytes, pos, 4, end, from), end, from); break;
        case 0xca: size = 5; break;
        case 0xcb: size = 9; break;
        case 0xcc: case 0xd0: size = 2; key = true; break;
        case 0xcd: case 0xd1: size = 3; key = true; break;
        case 0xce: case 0xd2: size = 5; key = true; break;
        case 0xcf: case 0xd3: size = 9; key = true; break;
        case 0xd4: size = 2 + ext(bytes, pos, 1, 1, end, from); break;
        case 0xd5: size = 2 + ext(bytes, pos, 1, 2, end, from); break;
        case 0xd6: size = 2 + ext(bytes, pos, 1, 4, end, from); break;
        case 0xd7: size = 2 + ext(bytes, pos, 1, 8, end, from); break;
        case 0xd8: size = 2 + ext(bytes, pos, 1, 16, end, from); break;
        case 0xd9: size = 2 + uint(bytes, pos, 1, end, from); key = true; break;
        case 0xda: size = 3 + uint(bytes, pos, 2, end, from); key = true; break;
        case 0xdb: size = 5 + uint(bytes, pos, 4, end, from); key = true; break;
        case 0xdc: size = 3; children = uint(bytes, pos, 2, end, from); break;
        case 0xdd: size = 5; children = uint(bytes, pos, 4, end, from); break;
        case 0xde: size = 3; children = uint(bytes, pos, 2, end, from) * 2; map = 1; break;
        case 0xdf: size = 5; children = uint(bytes, pos, 4, end, from) * 2; map = 1; break;
      }
    }
    if (isKey && !key) fail(pos - from, `map key of type 0x${b.toString(16)} (only strings and integers may be keys)`);
    if (pos + size > end) fail(pos - from, `value of ${size} bytes runs past the end (${end - pos} left)`);
    pos += size;
    if (children > 0) {
      // Each child takes at least one byte, so a count beyond the bytes left is a lie.
      if (children > end - pos) fail(pos - size - from, `container announces ${children} values but only ${end - pos} bytes follow`);
      if (depth + 1 > maxDepth) fail(pos - size - from, `containers nested deeper than ${maxDepth}`);
      depth++;
      left[depth] = children;
      isMap[depth] = map;
    }
  }
}

/**
 * The bytes of a value that the walk reads (its type byte, length field, and an extension's type
 * and, for a timestamp, data), at most; string and binary contents are skipped, never read.
 */
function headerBytes(b: number): number {
  if (b < 0xc4 || b >= 0xe0) return 1;
  switch (b) {
    case 0xc4: case 0xd9: return 2;
    case 0xc5: case 0xda: case 0xdc: case 0xde: return 3;
    case 0xc6: case 0xdb: case 0xdd: case 0xdf: return 5;
    case 0xc7: return 3 + 12;
    case 0xc8: return 4 + 12;
    case 0xc9: return 6 + 12;
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return 2 + 16;
    default: return 1; // numbers: skipped by their fixed size
  }
}

/** Reads the big-endian length of 1, 2 or 4 bytes after the type byte at `at`, failing if it is cut off. */
function uint(bytes: Uint8Array, at: number, width: 1 | 2 | 4, end: number, from: number): number {
  const p = at + 1;
  if (p + width > end) fail(at - from, 'length field runs past the end');
  if (width === 1) return bytes[p] as number;
  if (width === 2) return ((bytes[p] as number) << 8) | (bytes[p + 1] as number);
  return (bytes[p] as number) * 0x1000000 + (((bytes[p + 1] as number) << 16) | ((bytes[p + 2] as number) << 8) | (bytes[p + 3] as number));
}

/** The largest number of seconds from the epoch a JavaScript Date can hold. */
const MAX_DATE_SECONDS = 8.64e12;

/** Checks an extension's type byte (at `pos + typeAt`) and timestamp data, and returns its data length. */
function ext(bytes: Uint8Array, pos: number, typeAt: number, length: number, end: number, from: number): number {
  if (pos + typeAt >= end) fail(pos - from, 'extension type runs past the end');
  const type = bytes[pos + typeAt] as number;
  const signed = type > 127 ? type - 256 : type;
  if (signed !== -1) fail(pos - from, `extension type ${signed} is not allowed (only -1, timestamp)`);
  if (length !== 4 && length !== 8 && length !== 12) fail(pos - from, `timestamp of ${length} bytes (must be 4, 8 or 12)`);
  const at = pos + typeAt + 1;
  if (at + length > end) return length; // the caller reports the value running past the end
  const u32 = (i: number) => (bytes[i] as number) * 0x1000000 + (((bytes[i + 1] as number) << 16) | ((bytes[i + 2] as number) << 8) | (bytes[i + 3] as number));
  if (length === 8 && u32(at) / 4 >= 1e9) fail(pos - from, 'timestamp with 10^9 or more nanoseconds');
  if (length === 12) {
    if (u32(at) >= 1e9) fail(pos - from, 'timestamp with 10^9 or more nanoseconds');
    const high = u32(at + 4);
    const seconds = (high >= 0x8000_0000 ? high - 0x1_0000_0000 : high) * 0x1_0000_0000 + u32(at + 8);
    if (Math.abs(seconds) > MAX_DATE_SECONDS) fail(pos - from, `timestamp of ${seconds} seconds is outside the range of a date (±${MAX_DATE_SECONDS})`);
  }
  return length;
}

function fail(offset: number, reason: string): never {
  throw new MuxvisorError(ErrorCode.BadPayload, `invalid msgpack at byte ${offset}: ${reason}`, {
    data: { offset, reason },
  });
}
