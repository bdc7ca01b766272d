/**
 * The kills of an integrity episode, one function per kind. Each does its damage, then waits
 * (with a deadline) for the system to come back as promised, recording a violation when it does
 * not: a dead client's run finished, a crashed worker's runs resumed, a killed service restarted
 * with none of its old processes left, a dead supervisor replaced by the next client to connect.
 */
import { processAlive, waitForExit } from '../../../lib/daemon.js';
import { eventually } from '../../helpers/home.js';
import type { ClientKill } from './clients.js';
import { tearOpenRuns } from './torn.js';
import { misbehavingHandler, SERVICE, type World } from './world.js';

export const KILLS = ['client SIGKILL', 'client SIGTERM', 'client exit', 'handler worker', 'service', 'supervisor SIGKILL', 'supervisor SIGTERM'] as const;
export type Kill = (typeof KILLS)[number];

/** True once `check` is truthy (polled by the tests' `eventually`), false after `ms`. */
function within(ms: number, check: () => boolean | Promise<boolean>): Promise<boolean> {
  return eventually(check, 'a recovery', ms).then(() => true, () => false);
}

export async function kill(world: World, kind: Kill): Promise<void> {
  world.ctx.count(`kill ${kind}`);
  world.ctx.log(`episode ${world.episode}: kill ${kind}`);
  switch (kind) {
    case 'client SIGKILL': return killClient(world, 'SIGKILL');
    case 'client SIGTERM': return killClient(world, 'SIGTERM');
    case 'client exit': return killClient(world, 'exit');
    case 'handler worker': return crashWorker(world);
    case 'service': return killService(world);
    case 'supervisor SIGKILL': return killSupervisor(world, 'SIGKILL');
    case 'supervisor SIGTERM': return killSupervisor(world, 'SIGTERM');
  }
}

async function killClient(world: World, how: ClientKill): Promise<void> {
  const { ctx } = world;
  const victim = ctx.rng.pick(world.live());
  victim.killedBy = how;
  if (how === 'exit') victim.command('exit');
  else victim.child.process.kill(how);
  ctx.check(await victim.ended(10_000), 'client did not die', () => `client ${victim.tag} (pid ${victim.pid}) still runs 10 s after ${how}`);
  const run = victim.ownRun;
  if (run !== null && !victim.lost.has(run)) {
    const finished = await within(10_000, () => world.runState(run) === 'finished');
    ctx.check(finished, 'run of a dead client left open', () => `run ${run} of client ${victim.tag}, ended by ${how}, is not finished 10 s later`);
  }
  world.spawnClient();
}

async function crashWorker(world: World): Promise<void> {
  const admin = await world.admin();
  const run = await admin.openRun(`crasher-${world.episode}-${world.ctx.rng.int(0, 1e9)}`, { handler: misbehavingHandler });
  await run.request('crash');
  const resumed = await within(15_000, async () => ((await run.request('count', undefined, { timeoutMs: 2_000 })) as { resumed: boolean }).resumed);
  world.ctx.check(resumed, 'worker not replaced', () => `the runs of a crashed worker thread were not resumed within 15 s (run ${run.id})`);
  await run.finish({ timeoutMs: 10_000 });
  world.expected.end(run.id, ['ok'], 'the section finished it');
}

async function killService(world: World): Promise<void> {
  const { ctx, home } = world;
  const admin = await world.admin();
  const before = await admin.services.waitReady(SERVICE, { timeoutMs: 15_000 });
  const old = [...home.serviceProcesses().keys()];
  if (before.pid === null) throw new Error(`service ${SERVICE} is ready but has no pid`);
  // Its root, or one of its children: a service whose child dies goes on; one whose root dies restarts.
  const target = ctx.rng.chance(0.7) ? before.pid : ctx.rng.pick(old);
  process.kill(target, 'SIGKILL');
  if (target !== before.pid) return;
  const restarted = await within(15_000, async () => {
    const s = await admin.services.get(SERVICE, { timeoutMs: 2_000 });
    return s.state === 'running' && s.pid !== null && s.pid !== before.pid;
  });
  ctx.check(restarted, 'service not restarted', () => `service ${SERVICE} was not running again 15 s after its root (pid ${before.pid}) was killed`);
  const cleaned = await within(5_000, () => old.every((pid) => !processAlive(pid)));
  ctx.check(cleaned, 'service process left behind', () => `processes of the killed service generation still alive: ${old.filter((p) => processAlive(p)).join(', ')}`);
}

async function killSupervisor(world: World, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const { ctx, home } = world;
  const pid = world.supervisorPid() ?? (await world.admin()).server.pid;
  const services = [...home.serviceProcesses().keys()];
  world.supervisors.set(pid, signal);
  process.kill(pid, signal);
  const gone = await waitForExit(pid, signal === 'SIGKILL' ? 5_000 : 20_000);
  if (!ctx.check(gone, 'supervisor did not stop', () => `supervisor ${pid} still runs ${signal === 'SIGKILL' ? 5 : 20} s after ${signal}`)) return;
  world.dropAdmin();
  if (signal === 'SIGTERM') {
    ctx.check(services.every((p) => !processAlive(p)), 'service survived a drain', () => `service processes alive after the supervisor drained: ${services.filter((p) => processAlive(p)).join(', ')}`);
  } else {
    // What a power loss could add: torn tails on runs left open (the home's lock held meanwhile).
    const tears = await tearOpenRuns(home.home, ctx.rng);
    for (const t of tears ?? []) {
      world.expected.torn(t.run, t.bytes);
      ctx.count(`torn tails made (${t.kind})`);
    }
  }
  // The next client to connect starts the next supervisor; it kills what the dead one left.
  const next = await world.admin();
  ctx.check(next.server.pid !== pid, 'supervisor not replaced', () => `connect() reached supervisor ${next.server.pid} again after ${signal}`);
  const cleaned = await within(10_000, () => services.every((p) => !processAlive(p)));
  ctx.check(cleaned, 'service process left behind', () => `processes of the dead supervisor's service still alive: ${services.filter((p) => processAlive(p)).join(', ')}`);
}
