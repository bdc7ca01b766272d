/**
 * The msgpack checks of the payloads the main thread does not decode: PUBLISH records, REQUESTs
 * to a run (its worker decodes them), PINGs (echoed), and whatever SYNC, DETACH and PONG carry
 * (PROTOCOL.md section 3). The payloads that may be as large as a frame (PUBLISH, PING, PONG) are
 * checked chunk by chunk while they arrive, so that a 16 MiB record of tiny values costs many
 * short steps instead of one ~100 ms walk during which no other client is served; the others
 * (at most 256 KiB, or refused unread by their size first) when their frame is whole. One per
 * connection.
 */
import { checkMsgpack, DEFAULT_MAX_DEPTH, type Frame, type FrameHeader, Kind, MsgpackCheckInProgress } from '../protocol/index.js';

/** Payloads at least this large are checked as they arrive (the socket delivers 64 KiB a read). */
const PROGRESSIVE_CHECK_BYTES = 64 * 1024;

export class PayloadChecks {
  readonly #arriving = new MsgpackCheckInProgress();
  #arrivingPayload: Buffer | null = null;
  /** A payload found valid whole while it arrived: its frame's own check is skipped. */
  #checked: Buffer | null = null;

  /**
   * More of a payload spanning several chunks has arrived (FrameDecoder's `onPayloadProgress`).
   * Throws MUXVISOR_BAD_PAYLOAD as soon as the bytes so far prove it bad.
   */
  progress(h: FrameHeader, payload: Buffer, filled: number): void {
    if (payload.length < PROGRESSIVE_CHECK_BYTES || !checkedUndecoded(h)) return;
    if (payload !== this.#arrivingPayload) {
      this.#arrivingPayload = payload;
      this.#arriving.start(0, payload.length);
    }
    if (filled < payload.length) {
      this.#arriving.feed(payload, filled);
      return;
    }
    this.#arrivingPayload = null;
    this.#arriving.finish(payload);
    this.#checked = payload;
  }

  /** Throws MUXVISOR_BAD_PAYLOAD unless `f`'s payload is one acceptable msgpack value, or nothing. */
  check(f: Frame): void {
    if (f.end > f.start && f.source !== this.#checked) checkMsgpack(f.source, DEFAULT_MAX_DEPTH, f.start, f.end);
  }

  /** The chunk's frames are handled: forget the payload checked whole (it may be 16 MiB). */
  release(): void {
    this.#checked = null;
  }
}

/** Kinds whose payload the main thread checks, never decodes, and takes up to the frame limit. */
function checkedUndecoded(h: FrameHeader): boolean {
  return h.kind === Kind.Publish || h.kind === Kind.Ping || h.kind === Kind.Pong;
}
