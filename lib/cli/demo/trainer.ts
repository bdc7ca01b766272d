/**
 * One "user process" of `muxvisor demo`: what a training script does with muxvisor. It connects
 * (finding the supervisor through MUXVISOR_HOME), opens a run, logs metrics for a few seconds,
 * and finishes. The one started with `--web` also asks the supervisor for an HTTP service first.
 * Usage: node trainer.js <name> <steps> [--web <web.js>]
 */
import { connect } from '../../index.js';

const [name = 'trainer', stepsText = '200', flag, webScript] = process.argv.slice(2);
const steps = Number(stepsText);

await using client = await connect({ name: `demo-${name}` });
if (flag === '--web' && webScript !== undefined) {
  const web = await client.services.add({
    name: 'demo-web',
    command: process.execPath,
    args: [webScript, '{port}', '{home}'],
    ports: { http: 0 },
    url: 'http://127.0.0.1:{port}/',
    readiness: { type: 'http', path: '/healthz', timeoutMs: 15_000 },
    restart: { policy: 'on-failure', maxRestarts: 3 },
  }, { replace: true });
  console.log(`${name}: service demo-web is ${web.state} at ${web.url}`);
}
const run = await client.openRun(`demo-${name}-${Date.now().toString(36)}`, { config: { lr: 0.01, name } });
let loss = 2.5 + Math.random();
for (let step = 0; step < steps; step++) {
  loss *= 0.985 + Math.random() * 0.01;
  run.publish({ step, loss: Number(loss.toFixed(4)), accuracy: Number((1 - loss / 4).toFixed(4)), lr: 0.01 });
  // A human pace (about 200 steps a second), so the supervisor's rates can be watched.
  if (step % 10 === 9) await new Promise((r) => setTimeout(r, 50));
}
await run.sync();
const result = await run.finish();
console.log(`${name}: run ${result.run} finished ${result.status} with ${result.records} records`);
