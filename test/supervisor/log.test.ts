/**
 * The supervisor's own log when its file cannot be written: /dev/full fails every write with
 * ENOSPC, as a full disk does.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createLogger, droppedLogLines, MAX_PENDING_LOG_BYTES } from '../../supervisor/log.js';

describe.skipIf(!existsSync('/dev/full'))('the supervisor log on a full disk (/dev/full)', () => {
  it('never throws out of a log call, keeps at most MAX_PENDING_LOG_BYTES waiting, and counts the lines it drops', () => {
    const log = createLogger('/dev/full', 'info', { pid: process.pid });
    const before = droppedLogLines();
    const line = { pad: 'x'.repeat(1000) };
    const lines = Math.ceil((2 * MAX_PENDING_LOG_BYTES) / 1000);
    for (let i = 0; i < lines; i++) expect(() => log.error({ i, ...line }, 'cannot be written')).not.toThrow();
    const dropped = droppedLogLines() - before;
    // About half of them fit in the pending bytes; the rest are dropped, each counted once.
    expect(dropped).toBeGreaterThan(lines / 3);
    expect(dropped).toBeLessThan(lines);
  });
});
