/**
 * An example run handler: keeps the best (lowest, or highest) value of one metric and the
 * record it came from. Open a run with it by path:
 *
 * ```ts
 * import { createRequire } from 'node:module';
 * const handler = createRequire(import.meta.url).resolve('muxvisor/handlers/best-metric');
 * const run = await client.openRun('exp-7', { handler, config: { key: 'val_loss', mode: 'min' } });
 * run.publish({ step: 1, val_loss: 0.9 });
 * await run.request('best'); // { key: 'val_loss', value: 0.9, index: 0, record: {...}, records: 1 }
 * ```
 * When the run finishes it writes `best.json` into the run's directory. The interface it
 * implements is in ../handler-api.ts; the supervisor logs every record before this sees it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HandlerContext, RunHandler } from '../handler-api.js';

interface Config {
  /** The metric to watch. @default 'loss' */
  key?: string;
  /** @default 'min' */
  mode?: 'min' | 'max';
}

export default function create(context: HandlerContext): RunHandler {
  const config = (context.config ?? {}) as Config;
  const key = config.key ?? 'loss';
  const better = config.mode === 'max' ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
  let best: { value: number; index: number; record: unknown } | null = null;
  let records = 0;
  const answer = () => ({ key, mode: config.mode ?? 'min', value: best?.value ?? null, index: best?.index ?? null, record: best?.record ?? null, records });
  return {
    record(record, index) {
      records = index + 1;
      const value = (record as Record<string, unknown> | null)?.[key];
      if (typeof value === 'number' && Number.isFinite(value) && (best === null || better(value, best.value))) best = { value, index, record };
    },
    request(op) {
      if (op === 'best') return answer();
      throw new Error(`best-metric answers only \`best\`, not \`${op}\``);
    },
    finish() {
      writeFileSync(join(context.dir, 'best.json'), `${JSON.stringify(answer(), null, 2)}\n`);
    },
  };
}
