/**
 * A realistic session in a home, so that it holds every kind of file a user's home holds: a run
 * opened, published to, synced and finished; a run left open; a service added that writes to
 * stdout and stderr; the supervisor's own log and daemon.out. The client stays connected; the
 * caller closes it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Client, connect, type Run } from '../../../lib/index.js';
import { eventually } from '../../helpers/home.js';
import type { SectionContext } from '../context.js';

export interface Session {
  client: Client;
  /** Left open on purpose (its meta.json says `open`). */
  openRun: Run;
  /** Files inside the home worth stealing, all present. */
  dataFiles: string[];
  servicePid: number;
}

export const SERVICE_NAME = 'access-svc';

export async function realisticSession(ctx: SectionContext, home: string): Promise<Session> {
  const client = await connect({ home, start: false, name: 'chaos-access', handleExit: false, exportEnv: false, timeoutMs: 30_000 });
  const done = await client.openRun('access-done');
  for (let i = 0; i < 50; i++) done.publish({ step: i, loss: 1 / (i + 1), note: 'x'.repeat(40) });
  await done.sync();
  const finished = await done.finish();
  ctx.check(finished.records === 50 && finished.status === 'ok', 'access session run', () => `the session's run finished with ${finished.records} records, status ${finished.status}; expected 50, ok`);
  const openRun = await client.openRun('access-open');
  for (let i = 0; i < 10; i++) openRun.publish({ step: i });
  await openRun.sync();
  const status = await client.services.add({
    name: SERVICE_NAME,
    command: process.execPath,
    args: ['-e', "console.log('ready'); console.error('a line on stderr'); setInterval(() => {}, 1000)"],
    readiness: { type: 'log', pattern: 'ready' },
    restart: { policy: 'never' },
    stopTimeoutMs: 2_000,
  });
  const { stdout, stderr } = status.logs;
  // Output reaches its files a moment after the probe saw it.
  await eventually(() => existsSync(stdout) && existsSync(stderr), `${SERVICE_NAME}'s output files`, 10_000);
  const runs = join(home, 'runs');
  const services = join(home, 'services');
  return {
    client,
    openRun,
    servicePid: status.pid ?? -1,
    dataFiles: [
      join(runs, 'access-done', 'run.mvlog'), join(runs, 'access-done', 'meta.json'), join(runs, 'access-open', 'run.mvlog'),
      join(services, '_state.json'), stdout, stderr, join(services, SERVICE_NAME, 'launch.json'),
    ],
  };
}
