import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { connect } from '../../lib/index.js';
import { tempHome } from '../helpers/home.js';
import { records } from '../helpers/logs.js';

const home = tempHome();
afterAll(() => home.cleanup());

it('runs the example handler shipped as muxvisor/handlers/best-metric, resolved the way its doc says', async () => {
  const handler = createRequire(import.meta.url).resolve('muxvisor/handlers/best-metric');
  const client = await connect({ home: home.home });
  const run = await client.openRun('best', { handler, config: { key: 'val_loss', mode: 'min' } });
  run.publish({ step: 1, val_loss: 0.9 });
  run.publish({ step: 2, val_loss: 0.4 });
  run.publish({ step: 3, val_loss: 0.6 });
  run.publish({ step: 4, note: 'no metric here' });
  expect(await run.request('best')).toEqual({ key: 'val_loss', mode: 'min', value: 0.4, index: 1, record: { step: 2, val_loss: 0.4 }, records: 4 });
  await run.finish();
  expect(JSON.parse(readFileSync(join(home.home, 'runs', 'best', 'best.json'), 'utf8'))).toMatchObject({ value: 0.4, records: 4 });
  expect(records(home.home, 'best')).toHaveLength(4);
  await client.close();
});
