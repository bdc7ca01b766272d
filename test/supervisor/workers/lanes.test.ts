/**
 * Lanes (supervisor/workers/lanes.ts): the order a worker applies entries in. The wiring (a real
 * worker thread taking real batches) is exercised by every test that opens runs; this is the
 * policy: per-run order kept, runs served in turn, slot-0 entries after all before them, and
 * batches reported done only once every entry is applied, in order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchBuilder, Op } from '../../../supervisor/workers/batch.js';
import { Lanes } from '../../../supervisor/workers/lanes.js';

/** A batch of entries [slot, id] (op Record, no payload unless `payload` says). */
function batch(entries: Array<[number, number]>, payload = 0): Buffer {
  const b = new BatchBuilder(64);
  const bytes = Buffer.alloc(payload, 7);
  for (const [slot, id] of entries) b.add(slot === 0 ? Op.Cancel : Op.Record, slot, 1, id, bytes, 0, payload);
  return b.take();
}

function applyAll(lanes: Lanes, more?: () => boolean): Array<[number, number]> {
  const seen: Array<[number, number]> = [];
  lanes.run((_op, slot, _conn, id) => seen.push([slot, id]), more);
  return seen;
}

describe('Lanes', () => {
  it('serves every run in turn, so a run queued behind a flood waits for one entry, not for all', () => {
    const lanes = new Lanes();
    lanes.add(0, batch(Array.from({ length: 1000 }, (_, i) => [1, i] as [number, number])));
    lanes.add(1, batch([[2, 0], [2, 1]]));
    const seen = applyAll(lanes);
    expect(seen.slice(0, 4)).toEqual([[1, 0], [2, 0], [1, 1], [2, 1]]);
    expect(seen).toHaveLength(1002);
    expect(seen.filter(([s]) => s === 1).map(([, id]) => id)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('stops when told and goes on from there on the next run', () => {
    const lanes = new Lanes();
    lanes.add(0, batch([[1, 0], [1, 1], [1, 2]]));
    let left = 2;
    expect(applyAll(lanes, () => --left > 0)).toEqual([[1, 0], [1, 1]]);
    expect(lanes.pending).toBe(true);
    expect(applyAll(lanes)).toEqual([[1, 2]]);
    expect(lanes.pending).toBe(false);
  });

  it('applies a slot-0 entry only after every entry sent before it, and does not hold later ones for it', () => {
    const lanes = new Lanes();
    lanes.add(0, batch([[1, 0], [1, 1], [1, 2], [0, 99], [2, 0]]));
    const seen = applyAll(lanes);
    // Round robin: 1/0, 2/0, 1/1, 1/2; the slot-0 entry waits for all three of slot 1.
    expect(seen).toEqual([[1, 0], [2, 0], [1, 1], [1, 2], [0, 99]]);
  });

  it('applies a slot-0 entry at once when nothing was sent before it', () => {
    const lanes = new Lanes();
    lanes.add(0, batch([[0, 5]]));
    lanes.add(1, batch([[3, 0]]));
    expect(applyAll(lanes)).toEqual([[0, 5], [3, 0]]);
  });

  it('reports a batch done only when all its entries are applied, and never past an unfinished one', () => {
    const lanes = new Lanes();
    lanes.add(0, batch([[1, 0], [1, 1], [1, 2], [1, 3]]));
    lanes.add(1, batch([[2, 0]]));
    lanes.add(2, batch([]));
    let left = 2;
    applyAll(lanes, () => --left > 0); // 1/0 and 2/0: batch 1 is complete, batch 0 is not
    expect(lanes.done()).toBe(-1);
    applyAll(lanes);
    expect(lanes.done()).toBe(2);
    expect(lanes.done(), 'nothing new since').toBe(-1);
  });

  it('hands each entry its own payload bytes', () => {
    const lanes = new Lanes();
    lanes.add(0, batch([[4, 0], [5, 0]], 300));
    const sizes: number[] = [];
    lanes.run((_op, _slot, _conn, _id, bytes, start, end) => {
      expect(bytes.subarray(start, end).every((x) => x === 7)).toBe(true);
      sizes.push(end - start);
    });
    expect(sizes).toEqual([300, 300]);
  });

  it('keeps per-run order, the slot-0 rule and in-order completion for any batches and stops (property)', () => {
    const entry = fc.tuple(fc.integer({ min: 0, max: 5 }), fc.nat(1000));
    fc.assert(fc.property(fc.array(fc.array(entry, { maxLength: 30 }), { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 20 }), (batches, stops) => {
      const lanes = new Lanes();
      // Number every entry in the order sent, to check orders against.
      let n = 0;
      const sent: Array<{ slot: number; n: number; batch: number }> = [];
      const applied: number[] = [];
      const doneSeen: number[] = [];
      let added = 0;
      let round = 0;
      const step = () => {
        let left = stops[round++ % stops.length] as number;
        lanes.run((_op, _slot, _conn, id) => applied.push(id), () => --left > 0);
        const d = lanes.done();
        if (d < 0) return;
        doneSeen.push(d);
        const have = new Set(applied);
        for (const s of sent) if (s.batch <= d) expect(have.has(s.n), `entry ${s.n} of batch ${s.batch}, reported done`).toBe(true);
      };
      for (const entries of batches) {
        const withIds = entries.map(([slot]) => {
          sent.push({ slot, n, batch: added });
          return [slot, n++] as [number, number];
        });
        lanes.add(added++, batch(withIds));
        step();
      }
      while (lanes.pending) step();
      const final = lanes.done();
      if (final >= 0) doneSeen.push(final);

      expect([...applied].sort((a, b) => a - b)).toEqual(sent.map((s) => s.n)); // each exactly once
      const at = new Map(applied.map((id, i) => [id, i]));
      for (let slot = 1; slot <= 5; slot++) {
        const mine = applied.filter((id) => sent[id]?.slot === slot);
        expect(mine).toEqual([...mine].sort((a, b) => a - b));
      }
      for (const s of sent) {
        if (s.slot !== 0) continue;
        for (const before of sent) if (before.n < s.n) expect(at.get(before.n) as number).toBeLessThan(at.get(s.n) as number);
      }
      expect(doneSeen).toEqual([...doneSeen].sort((a, b) => a - b));
      if (batches.length > 0) expect(doneSeen.at(-1)).toBe(batches.length - 1);
    }), { numRuns: 300 });
  });
});
