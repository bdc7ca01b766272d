/**
 * FairShares (supervisor/workers/fair-shares.ts): while a worker is congested, who goes on being
 * read. The wiring (the pool asks only while the worker is over its mark) is exercised by every
 * test that floods a worker; this is the policy itself.
 */
import { describe, expect, it } from 'vitest';
import { FairShares } from '../../../supervisor/workers/fair-shares.js';

const KiB = 1024;

describe('FairShares', () => {
  it('lets a connection that sends little pass while the one that floods waits', () => {
    const shares = new FairShares(64 * KiB, 256 * KiB);
    expect(shares.mustWait(1, 16 * 1024 * KiB), 'the flood').toBe(true);
    for (let i = 0; i < 100; i++) expect(shares.mustWait(2, 100), `quiet record ${i}`).toBe(false);
    expect(shares.mustWait(1, 100), 'the flooder stays paused').toBe(true);
  });

  it('pauses a quiet connection once it has sent more than its share of this congestion', () => {
    const shares = new FairShares(64 * KiB, 256 * KiB);
    expect(shares.mustWait(2, 60 * KiB)).toBe(false);
    expect(shares.mustWait(2, 4 * KiB)).toBe(false);
    expect(shares.mustWait(2, 1)).toBe(true);
  });

  it('bounds what all quiet connections together may add, however many there are', () => {
    const shares = new FairShares(64 * KiB, 256 * KiB);
    let passed = 0;
    for (let conn = 1; conn <= 100; conn++) if (!shares.mustWait(conn, 10 * KiB)) passed += 10 * KiB;
    expect(passed).toBe(250 * KiB);
    expect(shares.mustWait(101, 10 * KiB)).toBe(true);
  });

  it('counts the next congestion from zero once the worker has drained', () => {
    const shares = new FairShares(64 * KiB, 256 * KiB);
    expect(shares.mustWait(1, 100 * KiB)).toBe(true);
    expect(shares.mustWait(2, 64 * KiB)).toBe(false);
    shares.drained();
    expect(shares.mustWait(1, 10 * KiB), 'the former flooder, now quiet').toBe(false);
    expect(shares.mustWait(2, 64 * KiB)).toBe(false);
  });
});
