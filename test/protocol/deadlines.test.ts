import { describe, expect, it } from 'vitest';
import { Deadlines } from '../../protocol/index.js';

/** A named item with the slot Deadlines keeps its bucket in. */
const item = (name: string) => ({ name, deadlineBucket: 0 });

describe('Deadlines', () => {
  it('expires each item once, never before its deadline', async () => {
    const fired: Array<[string, number]> = [];
    const start = Date.now();
    const d = new Deadlines<ReturnType<typeof item>>((i) => fired.push([i.name, Date.now() - start]), 10);
    d.add(item('late'), 60);
    d.add(item('early'), 20);
    d.add(item('middle'), 40);
    expect(d.size).toBe(3);
    await new Promise((r) => setTimeout(r, 150));
    expect(fired.map(([i]) => i)).toEqual(['early', 'middle', 'late']);
    for (const [item, at] of fired) expect(at, item).toBeGreaterThanOrEqual({ early: 20, middle: 40, late: 60 }[item] as number);
    expect(d.size).toBe(0);
  });

  it('never expires an item deleted in time, and says whether it was waiting', async () => {
    const fired: string[] = [];
    const d = new Deadlines<ReturnType<typeof item>>((i) => fired.push(i.name), 5);
    const gone = item('gone');
    d.add(item('kept'), 10);
    d.add(gone, 10);
    expect(d.delete(gone)).toBe(true);
    expect(d.delete(gone)).toBe(false);
    await new Promise((r) => setTimeout(r, 60));
    expect(fired).toEqual(['kept']);
  });

  it('re-arms for an earlier deadline added after a later one', async () => {
    const fired: string[] = [];
    const d = new Deadlines<ReturnType<typeof item>>((i) => fired.push(i.name), 5);
    const far = item('far');
    d.add(far, 10_000);
    d.add(item('near'), 10);
    await new Promise((r) => setTimeout(r, 60));
    expect(fired).toEqual(['near']);
    d.delete(far);
  });
});
