/**
 * LoopDelay (supervisor/loop-delay.ts), what `status.eventLoopDelay` reports: a thread held busy
 * shows as at least that late, less the sampling interval Node's figure includes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { LoopDelay } from '../../supervisor/loop-delay.js';

function holdThread(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy on purpose
  }
}

describe('LoopDelay', () => {
  it('reports a thread held for 80 ms as at least 70 ms late, since start and in the last second', async () => {
    const delay = new LoopDelay();
    try {
      await sleep(30);
      holdThread(80);
      await sleep(30);
      delay.tick();
      const r = delay.report();
      // The sample due during the hold ran at least 80 ms after the one before it; Node's
      // figure counts the 10 ms interval too, which the report takes off.
      expect(r.maxMs).toBeGreaterThanOrEqual(70);
      expect(r.lastSecondMaxMs).toBeGreaterThanOrEqual(70);
      expect(r.p99Ms).toBeLessThanOrEqual(r.maxMs);
      delay.tick();
      expect(delay.report().lastSecondMaxMs, 'a window with no hold in it').toBeLessThan(70);
    } finally {
      delay.stop();
    }
  });
});
