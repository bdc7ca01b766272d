/**
 * msgpack in and out (msgpackr), configured so that every byte we write is plain msgpack that any
 * standard library reads: no record structures, no msgpackr extensions, `undefined` as nil.
 * Objects are written with a map16 header whatever their size (msgpackr's fast path: measured
 * 11 % faster than smallest-header encoding); decoders must accept any valid map header anyway.
 * Decoding first runs `checkMsgpack`, so only standard msgpack gets in.
 *
 * One Packr and one Unpackr per thread (module state); both are synchronous, so sharing is safe.
 */
import { Packr, RESERVE_START_SPACE, RESET_BUFFER_MODE, REUSE_BUFFER_MODE, Unpackr } from 'msgpackr';
import { ErrorCode, MuxvisorError } from './errors.js';
import { checkMsgpack, DEFAULT_MAX_DEPTH } from './msgpack-check.js';
import { checkHeaderFields, type FrameHeader, HEADER_BYTES, writeHeader } from './frame.js';

const packr = new Packr({
  useRecords: false,
  encodeUndefinedAsNil: true,
  // msgpackr would write an Invalid Date as a 1-byte timestamp, which is not valid msgpack.
  onInvalidDate: () => {
    throw new Error('an Invalid Date has no msgpack timestamp');
  },
});
// 'auto': 64-bit integers within ±2^53 decode as numbers, larger ones as bigint. msgpackr supports
// it (unpack.js) but its type declarations do not list it yet, hence the cast.
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'auto' as 'number' });

const EMPTY = Buffer.alloc(0);

/**
 * The msgpack bytes of `value`; `undefined` becomes an empty payload. Throws
 * MUXVISOR_INVALID_ARGUMENT for what msgpack cannot carry (symbols, integers beyond 64 bits).
 * The result may share memory with other results: read it, copy it, but do not write into it.
 */
export function encodeValue(value: unknown): Buffer {
  if (value === undefined) return EMPTY;
  try {
    return packr.pack(value);
  } catch (cause) {
    throw unencodable(cause);
  }
}

/**
 * One frame, header and payload, in a single buffer: msgpackr writes the payload after 16
 * reserved bytes and the header goes into those, so the payload is never copied.
 */
export function encodeFrameWithValue(header: FrameHeader, value: unknown): Buffer {
  let frame: Buffer;
  try {
    frame = value === undefined ? Buffer.alloc(HEADER_BYTES) : packr.pack(value, RESERVE_START_SPACE | HEADER_BYTES);
  } catch (cause) {
    throw unencodable(cause);
  }
  const length = frame.length - HEADER_BYTES;
  checkHeaderFields(header, length);
  writeHeader(frame, 0, header, length);
  return frame;
}

/** Where `encodeFrameScratch` left its frame. */
export interface ScratchFrame {
  readonly buffer: Buffer;
  readonly start: number;
  readonly end: number;
}

const scratch: { buffer: Buffer; start: number; end: number } = { buffer: EMPTY, start: 0, end: 0 };

/**
 * Like `encodeFrameWithValue`, without allocating: the frame is `buffer[start..end)` of msgpackr's
 * own scratch buffer, and the returned object is reused. Both are valid only until the next call
 * of any encode function here: copy the bytes out at once (the transport's batch does).
 */
export function encodeFrameScratch(header: FrameHeader, value: unknown): ScratchFrame {
  if (value === undefined) {
    const frame = encodeFrameWithValue(header, value);
    scratch.buffer = frame;
    scratch.start = 0;
    scratch.end = frame.length;
    return scratch;
  }
  let target: Buffer & { start: number; end: number };
  try {
    target = packr.pack(value, REUSE_BUFFER_MODE | RESET_BUFFER_MODE | RESERVE_START_SPACE | HEADER_BYTES) as Buffer & { start: number; end: number };
  } catch (cause) {
    throw unencodable(cause);
  }
  const length = target.end - target.start - HEADER_BYTES;
  checkHeaderFields(header, length);
  writeHeader(target, target.start, header, length);
  scratch.buffer = target;
  scratch.start = target.start;
  scratch.end = target.end;
  return scratch;
}

export interface DecodeOptions {
  /** @default 100 */
  maxDepth?: number;
}

/**
 * The value in `bytes` (exactly one msgpack value), or `undefined` for no bytes. Throws only
 * MUXVISOR_BAD_PAYLOAD. Binary values come back as Buffers that are views into `bytes`.
 */
export function decodeValue(bytes: Uint8Array, options: DecodeOptions = {}): unknown {
  if (bytes.length === 0) return undefined;
  checkMsgpack(bytes, options.maxDepth ?? DEFAULT_MAX_DEPTH);
  try {
    return unpackr.unpack(bytes);
  } catch (cause) {
    // checkMsgpack admits only what msgpackr decodes; reaching this is a bug worth a clear report.
    throw new MuxvisorError(ErrorCode.BadPayload, `invalid msgpack: ${(cause as Error).message}`, { cause });
  }
}

function unencodable(cause: unknown): MuxvisorError {
  return new MuxvisorError(ErrorCode.InvalidArgument, `value cannot be encoded as msgpack: ${(cause as Error).message}`, {
    cause,
  });
}
