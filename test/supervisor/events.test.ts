/**
 * The `events` operation over a real EventBus, called as the supervisor calls it: what its answer
 * replays when a topic's history no longer reaches back to `since` (the supervisor keeps the last
 * 1000 to 1999 events per topic). Busy supervisors reach that state within hours, and it is
 * costly to reach over a socket (thousands of runs), so the operation is called directly here.
 */
import { describe, expect, it } from 'vitest';
import type { OpContext } from '../../supervisor/connection.js';
import { EventBus } from '../../supervisor/events.js';
import { operations } from '../../supervisor/ops.js';
import type { Supervisor } from '../../supervisor/server.js';

function subscribe(bus: EventBus, args: Record<string, unknown>) {
  const live: unknown[] = [];
  const cancels: Array<() => void> = [];
  const ctx = {
    conn: { event: (_id: number, event: unknown) => live.push(event) },
    id: 1,
    signal: new AbortController().signal,
    subscribe: (cancel: () => void) => cancels.push(cancel),
  } as unknown as OpContext;
  const answer = operations.events!({ bus } as unknown as Supervisor, args, ctx) as {
    current: Record<string, number>; replay: Array<{ topic: string; seq: number }>; lost: string[];
  };
  return { answer, live, cancel: () => cancels.forEach((c) => c()) };
}

describe('events', () => {
  it('replays every kept event of a topic whose history no longer reaches back to `since`, and names it lost', () => {
    const bus = new EventBus();
    for (let i = 1; i <= 2500; i++) bus.publish('run', { event: 'opened', run: `r${i}` });
    bus.publish('service', { service: 'web', state: 'running' });
    const { answer, live, cancel } = subscribe(bus, { since: { run: 0, service: 0 } });
    expect(answer.current).toMatchObject({ run: 2500, service: 1 });
    expect(answer.lost).toEqual(['run']);
    const runSeqs = answer.replay.filter((e) => e.topic === 'run').map((e) => e.seq);
    // What is kept: at least the last 1000, in order, ending with the newest.
    expect(runSeqs.length).toBeGreaterThanOrEqual(1000);
    expect(runSeqs.at(-1)).toBe(2500);
    expect(runSeqs.every((s, i) => i === 0 || s === runSeqs[i - 1]! + 1)).toBe(true);
    expect(answer.replay.filter((e) => e.topic === 'service').map((e) => e.seq)).toEqual([1]);
    // And live events follow the replay.
    bus.publish('run', { event: 'finished', run: 'r2500' });
    expect(live).toEqual([expect.objectContaining({ topic: 'run', seq: 2501 })]);
    cancel();
  });

  it('replays everything kept for a `since` from another supervisor (ahead of this one)', () => {
    const bus = new EventBus();
    for (let i = 1; i <= 3; i++) bus.publish('service', { service: 'web', state: 'running' });
    const { answer, cancel } = subscribe(bus, { topics: ['service'], since: { service: 40 } });
    expect(answer.lost).toEqual(['service']);
    expect(answer.replay.map((e) => e.seq)).toEqual([1, 2, 3]);
    cancel();
  });
});
