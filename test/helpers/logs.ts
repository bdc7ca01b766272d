/** Reading what the supervisor recorded: a run's records, its meta.json, its log scan. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeValue } from '../../protocol/index.js';
import { EntryType } from '../../supervisor/recorder/log-format.js';
import { readRunLog, scanRunLog } from '../../supervisor/recorder/log-reader.js';
import { eventually } from './home.js';

export function logPath(home: string, run: string): string {
  return join(home, 'runs', run, 'run.mvlog');
}

/** Every record of the run's log, decoded, in order. */
export function records(home: string, run: string): unknown[] {
  const out: unknown[] = [];
  for (const entry of readRunLog(logPath(home, run))) if (entry.type === EntryType.Record) out.push(decodeValue(entry.payload));
  return out;
}

export function scan(home: string, run: string) {
  return scanRunLog(logPath(home, run));
}

export function meta(home: string, run: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(home, 'runs', run, 'meta.json'), 'utf8')) as Record<string, unknown>;
}

/** Waits until the supervisor has finished the run; returns its meta.json. */
export function finishedMeta(home: string, run: string, ms = 10_000): Promise<Record<string, unknown>> {
  return eventually(() => {
    const m = meta(home, run);
    return m.state === 'finished' ? m : null;
  }, `run ${run} to be finished`, ms);
}
