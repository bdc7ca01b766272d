/**
 * Frames written byte by byte, for tests and the chaos fuzzer: every header field takes any
 * value, so that frames the encoder refuses to build (bad magic, lengths that lie) can be sent.
 * No vitest here: the chaos suite runs outside it.
 */
import { FRAME_VERSION, HEADER_BYTES, MAGIC } from '../../protocol/index.js';

/** Every header field, any value: for frames `encodeFrame` would refuse to build. */
export interface RawHeader {
  magic?: number;
  version?: number;
  kind: number;
  flags?: number;
  /** The announced payload length; defaults to the payload's real length. */
  length?: number;
  id?: number;
  channel?: number;
}

/** A frame byte by byte as given: header fields are written as they are, not checked. */
export function rawFrame(h: RawHeader, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const frame = Buffer.alloc(HEADER_BYTES + payload.length);
  frame[0] = h.magic ?? MAGIC;
  frame[1] = h.version ?? FRAME_VERSION;
  frame[2] = h.kind;
  frame[3] = h.flags ?? 0;
  frame.writeUInt32LE(h.length ?? payload.length, 4);
  frame.writeUInt32LE(h.id ?? 0, 8);
  frame.writeUInt32LE(h.channel ?? 0, 12);
  frame.set(payload, HEADER_BYTES);
  return frame;
}
