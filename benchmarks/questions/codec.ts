/**
 * codec: how many ~100-byte records per second become frames (encode) and come back (decode),
 * beside a baseline that moves the very same bytes with no msgpack at all (copy, and split by the
 * length field). In one process: this is the protocol's cost, not the socket's.
 */
import { Unpackr } from 'msgpackr';
import {
  decodeValue, encodeFrameWithValue, FrameDecoder, type FrameHeader, HEADER_BYTES, Kind,
} from '../../protocol/index.js';
import type { Question } from '../harness/question.js';

const BATCH_BYTES = 64 * 1024;
const header: FrameHeader = { kind: Kind.Publish, flags: 0, id: 0, channel: 1 };

/** A metrics record of about 100 bytes as msgpack, like one step of a training loop logs. */
export function sampleRecord(step: number) {
  return { run: 'r1', step, loss: 1 / (step + 1), acc: 0.5 + step / 1e7, lr: 0.0003, epoch: step >> 10, phase: 'train', host: 'node-07', gpu: 0, mem: 7.25e9 };
}

export const codec: Question = {
  name: 'codec',
  title: 'frames encoded and decoded per second, ~100 B records, one thread',
  setup({ quick }) {
    const count = quick ? 20_000 : 1_000_000;
    const distinct = 1024;
    const records = Array.from({ length: distinct }, (_, i) => sampleRecord(i));
    const frames = records.map((r) => Buffer.from(encodeFrameWithValue(header, r)));
    const stream = concatFrames(frames, count);
    const chunks = chunk(stream, BATCH_BYTES);
    const payloads = Array.from({ length: distinct }, (_, i) => (frames[i] as Buffer).subarray(HEADER_BYTES));
    const batch = Buffer.allocUnsafe(BATCH_BYTES);
    const perSecond = (start: bigint) => count / (Number(process.hrtime.bigint() - start) / 1e9);
    const plainUnpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
    let sink = 0; // consumed so that no work is optimised away

    const encodeInto = (copy: boolean, onFull: (bytes: Buffer) => void) => {
      let at = 0;
      for (let i = 0; i < count; i++) {
        const record = records[i % distinct] as ReturnType<typeof sampleRecord>;
        const frame = copy ? (frames[i % distinct] as Buffer) : encodeFrameWithValue(header, record);
        if (at + frame.length > BATCH_BYTES) (onFull(batch.subarray(0, at)), (at = 0));
        batch.set(frame, at);
        at += frame.length;
      }
      onFull(batch.subarray(0, at));
    };
    const decoder = () => new FrameDecoder((f) => { sink += (decodeValue(f.payload) as { step: number }).step; });
    const noop = (bytes: Buffer) => { sink += bytes.length; };

    const size = (frames[0] as Buffer).length;
    return {
      workload: `${count.toLocaleString('en')} frames of ${size} B (${size - HEADER_BYTES} B payload)`,
      cases: [
        {
          name: 'encode', unit: 'frames/s', higherIsBetter: true,
          contender: { label: 'msgpack encode into a 64 KiB batch', run() { const t = process.hrtime.bigint(); encodeInto(false, noop); return perSecond(t); } },
          baseline: { label: 'copy of the same frame bytes', run() { const t = process.hrtime.bigint(); encodeInto(true, noop); return perSecond(t); } },
        },
        {
          name: 'decode', unit: 'frames/s', higherIsBetter: true,
          contender: { label: 'FrameDecoder + checked msgpack decode', run() { const t = process.hrtime.bigint(); const d = decoder(); for (const c of chunks) d.push(c); return perSecond(t); } },
          baseline: { label: 'split the same bytes by length', run() { const t = process.hrtime.bigint(); sink += splitByLength(chunks); return perSecond(t); } },
        },
        {
          name: 'encode+decode', unit: 'frames/s', higherIsBetter: true,
          contender: { label: 'encode, batch, decode', run() { const t = process.hrtime.bigint(); const d = decoder(); encodeInto(false, (b) => d.push(b)); return perSecond(t); } },
          baseline: { label: 'copy, batch, split', run() { const t = process.hrtime.bigint(); const pending: Buffer[] = []; encodeInto(true, (b) => pending.push(Buffer.from(b))); sink += splitByLength(pending); return perSecond(t); } },
        },
        {
          name: 'decode check cost', unit: 'payloads/s', higherIsBetter: true,
          contender: { label: 'checkMsgpack + msgpackr', run() { const t = process.hrtime.bigint(); for (let i = 0; i < count; i++) sink += (decodeValue(payloads[i % distinct] as Buffer) as { step: number }).step; return perSecond(t); } },
          baseline: { label: 'msgpackr alone (no check)', run() { const t = process.hrtime.bigint(); for (let i = 0; i < count; i++) sink += (plainUnpackr.unpack(payloads[i % distinct] as Buffer) as { step: number }).step; return perSecond(t); } },
        },
      ],
      teardown() {
        if (sink === -1) console.log(sink);
      },
    };
  },
};

function concatFrames(frames: readonly Buffer[], count: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) parts.push(frames[i % frames.length] as Buffer);
  return Buffer.concat(parts);
}

function chunk(stream: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length; at += size) chunks.push(stream.subarray(at, at + size));
  return chunks;
}

/** The baseline reader: length field only, no checks, no msgpack. Returns the frames seen. */
function splitByLength(chunks: readonly Buffer[]): number {
  let carry: Buffer | null = null;
  let frames = 0;
  for (const c of chunks) {
    const bytes: Buffer = carry ? Buffer.concat([carry, c]) : c;
    let at = 0;
    while (bytes.length - at >= HEADER_BYTES) {
      const end = at + HEADER_BYTES + bytes.readUInt32LE(at + 4);
      if (end > bytes.length) break;
      frames++;
      at = end;
    }
    carry = at < bytes.length ? bytes.subarray(at) : null;
  }
  return frames;
}
