/**
 * Torn tails, made on purpose: what a power loss can leave at the end of a run log (a partly
 * written entry, or garbage where pages were not yet written). Only ever done while no supervisor
 * runs: the section holds the home's lock meanwhile, so no supervisor can start and recover the
 * logs half-way.
 */
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeValue } from '../../../protocol/index.js';
import { EntryType, encodeEntry } from '../../../supervisor/recorder/log-format.js';
import { scanRunLog } from '../../../supervisor/recorder/log-reader.js';
import { acquireHomeLock } from '../../../supervisor/lock.js';
import type { Rng } from '../random.js';

export interface Tear {
  run: string;
  bytes: number;
  kind: 'partial entry' | 'garbage';
}

/**
 * Appends a torn tail to some of the runs left open (meta.json says so, the log has no FINISH).
 * Returns null when a new supervisor already holds the lock (nothing was touched).
 */
export async function tearOpenRuns(home: string, rng: Rng, share = 0.6): Promise<Tear[] | null> {
  const lock = await acquireHomeLock(home);
  if (lock === null) return null;
  try {
    const tears: Tear[] = [];
    const runsDir = join(home, 'runs');
    for (const run of readdirSync(runsDir)) {
      const dir = join(runsDir, run);
      let state: unknown;
      try {
        state = (JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { state?: unknown }).state;
      } catch {
        continue;
      }
      if (state !== 'open' || !rng.chance(share)) continue;
      const log = join(dir, 'run.mvlog');
      if (scanRunLog(log).finished) continue;
      let tail: Buffer;
      let kind: Tear['kind'];
      if (rng.chance(0.5)) {
        // A record entry cut short: its header promises more bytes than follow.
        const whole = encodeEntry(EntryType.Record, encodeValue({ p: 'torn', s: 0, x: 'y'.repeat(rng.int(0, 300)) }));
        tail = whole.subarray(0, rng.int(1, whole.length - 1));
        kind = 'partial entry';
      } else {
        tail = rng.bytes(rng.int(1, 64));
        kind = 'garbage';
      }
      appendFileSync(log, tail);
      tears.push({ run, bytes: tail.length, kind });
    }
    return tears;
  } finally {
    await lock.release();
  }
}
