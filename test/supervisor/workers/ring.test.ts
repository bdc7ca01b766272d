/**
 * RingBatches: whatever the sizes, wraps and acknowledgements, every entry comes back once, in
 * order, and the bytes of a batch the worker has not acknowledged are never overwritten.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { forEachEntry, Op } from '../../../supervisor/workers/batch.js';
import { type Batch, RingBatches } from '../../../supervisor/workers/ring.js';

interface Outstanding {
  seq: number;
  view: () => Buffer;
  copy: Buffer;
}

function entriesOf(bytes: Buffer): number[] {
  const ids: number[] = [];
  forEachEntry(bytes, (_op, _slot, _conn, id, source, start, end) => {
    ids.push(id);
    // The payload is the id repeated: prove nothing of another entry leaked in.
    for (let i = start; i < end; i++) if (source[i] !== (id & 0xff)) throw new Error(`entry ${id} payload corrupted at ${i - start}`);
  });
  return ids;
}

describe('RingBatches', () => {
  it('delivers every entry once and in order, and never overwrites what is not acknowledged', () => {
    const action = fc.oneof(
      // Entry sizes (20-byte header + payload) that tile the 1 KiB ring exactly, and any size.
      { weight: 5, arbitrary: fc.record({ add: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(12, 44, 108, 236) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 300 }) }) }) },
      { weight: 3, arbitrary: fc.record({ take: fc.constant(true) }) },
      { weight: 2, arbitrary: fc.record({ ack: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 4 }) }) }) },
    );
    fc.assert(
      fc.property(fc.array(action, { minLength: 50, maxLength: 400, size: 'max' }), (actions) => {
        const ring = new RingBatches(1024);
        const ringView = Buffer.from(ring.shared);
        let nextId = 0;
        const delivered: number[] = [];
        const outstanding: Outstanding[] = [];
        const check = () => {
          for (const o of outstanding) expect(o.view().equals(o.copy), `batch ${o.seq} overwritten`).toBe(true);
        };
        const takeAll = () => {
          for (const batch of ring.take() as Batch[]) {
            const bytes = 'ring' in batch ? ringView.subarray(batch.ring.start, batch.ring.start + batch.ring.length) : batch.heap;
            const view = 'ring' in batch ? () => ringView.subarray(batch.ring.start, batch.ring.start + batch.ring.length) : () => batch.heap;
            delivered.push(...entriesOf(bytes));
            outstanding.push({ seq: batch.seq, view, copy: Buffer.from(bytes) });
          }
        };
        for (const a of actions) {
          if ('add' in a) {
            const id = nextId++;
            const payload = Buffer.alloc(a.add, id & 0xff);
            ring.add(Op.Record, 1, 1, id, payload, 0, payload.length);
          } else if ('take' in a) {
            takeAll();
          } else if (outstanding.length > 0) {
            const upto = outstanding[Math.min(a.ack, outstanding.length - 1)] as Outstanding;
            ring.acked(upto.seq);
            outstanding.splice(0, outstanding.indexOf(upto) + 1);
          }
          check();
        }
        takeAll();
        check();
        expect(delivered).toEqual(Array.from({ length: nextId }, (_, i) => i));
      }),
      { numRuns: 300 },
    );
    console.log(JSON.stringify((globalThis as unknown as { __ring: unknown }).__ring));
  });

  it('hands back copies of everything unacknowledged, in order, when the worker died', () => {
    const ring = new RingBatches(1024);
    for (let id = 0; id < 5; id++) ring.add(Op.Record, 1, 1, id, Buffer.alloc(100, id), 0, 100);
    ring.take();
    for (let id = 5; id < 8; id++) ring.add(Op.Record, 1, 1, id, Buffer.alloc(100, id), 0, 100);
    const retained = ring.retained();
    expect(retained.flatMap((b) => entriesOf(b))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(ring.backlogBytes).toBe(0);
  });

  it('puts an entry larger than a quarter of the ring into a heap batch, after the ring entries before it', () => {
    const ring = new RingBatches(1024);
    ring.add(Op.Record, 1, 1, 0, Buffer.alloc(10, 0), 0, 10);
    ring.add(Op.Record, 1, 1, 1, Buffer.alloc(600, 1), 0, 600);
    ring.add(Op.Record, 1, 1, 2, Buffer.alloc(10, 2), 0, 10);
    const batches = ring.take();
    expect(batches.map((b) => ('ring' in b ? 'ring' : 'heap'))).toEqual(['ring', 'heap']);
    const ringView = Buffer.from(ring.shared);
    const first = batches[0] as { ring: { start: number; length: number } };
    expect(entriesOf(ringView.subarray(first.ring.start, first.ring.start + first.ring.length))).toEqual([0]);
    expect(entriesOf((batches[1] as { heap: Buffer }).heap)).toEqual([1, 2]);
  });
});

describe('RingBatches at the wrap', () => {
  it('refuses to write over the oldest unacknowledged batch once it has wrapped round to it', () => {
    const ring = new RingBatches(1024);
    const view = Buffer.from(ring.shared);
    const add = (id: number, payload: number) => ring.add(Op.Record, 1, 1, id, Buffer.alloc(payload, id), 0, payload);
    for (let id = 0; id < 3; id++) add(id, 236); // 3 x 256 bytes
    const [a] = ring.take();
    add(3, 236); // [768, 1024): exactly to the end
    const [b] = ring.take() as Array<{ seq: number; ring: { start: number; length: number } }>;
    expect(b?.ring).toEqual({ start: 768, length: 256 });
    const before = Buffer.from(view.subarray(768, 1024));
    ring.acked((a as { seq: number }).seq); // the front is free; b is still unacknowledged
    for (let id = 4; id < 7; id++) add(id, 236); // wraps to 0 and fills [0, 768) exactly
    add(7, 12); // no room left before b: must not go into the ring
    const batches = ring.take();
    expect(view.subarray(768, 1024).equals(before)).toBe(true);
    expect(batches.map((x) => ('ring' in x ? 'ring' : 'heap'))).toEqual(['ring', 'heap']);
  });
});
