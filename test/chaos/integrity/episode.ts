/**
 * One integrity episode: a fresh home and supervisor (started with `muxvisor start`), a service,
 * a few client processes publishing at full speed, and every kind of kill in a random order at
 * random moments. Then everything is ended cleanly, nothing of ours may be left running, and the
 * checker reads every run log against what was acknowledged.
 */
import { processAlive } from '../../../lib/daemon.js';
import { pause, type SectionContext } from '../context.js';
import { checkRuns } from './checker.js';
import { KILLS, kill, type Kill } from './kills.js';
import { SERVICE, World } from './world.js';

export interface EpisodePlan {
  clients: number;
  /** Kills in order: every kind once, shuffled, then `extra` more drawn at random. */
  extra: number;
  /** Publishing time between two kills, ms. */
  gapMs: [number, number];
}

function shuffled<T>(ctx: SectionContext, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = ctx.rng.int(0, i);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

export async function runEpisode(ctx: SectionContext, index: number, plan: EpisodePlan): Promise<void> {
  const home = ctx.home();
  const world = new World(ctx, home, index);
  const workers = ctx.rng.pick([1, 2]);
  const started = await ctx.cli(['start', '--home', home.home, '--idle-timeout-ms', '0', '--workers', String(workers)]);
  if (started.code !== 0) throw new Error(`muxvisor start exited ${started.code}: ${started.stderr}`);
  world.supervisorPid();
  const admin = await world.admin();
  await admin.services.add(world.serviceDefinition(), { timeoutMs: 15_000 });

  for (let i = 0; i < plan.clients; i++) world.spawnClient();
  const kills: Kill[] = [...shuffled(ctx, KILLS), ...Array.from({ length: plan.extra }, () => ctx.rng.pick(KILLS))];
  for (const k of kills) {
    if (ctx.signal.aborted) break;
    await pause(ctx.rng.int(...plan.gapMs), ctx.signal);
    await kill(world, k);
  }
  await pause(ctx.rng.int(...plan.gapMs), ctx.signal);

  // The end: every client finishes its runs and exits 0; the service runs; `muxvisor stop` drains.
  const live = world.live();
  for (const c of live) c.command('finish');
  for (const c of live) {
    let ended = await c.ended(30_000);
    if (!ended) {
      c.child.process.kill('SIGUSR2');
      ended = await c.ended(1_000);
    }
    const code = c.child.process.exitCode;
    ctx.check(ended && code === 0, 'client failed', () => `client ${c.tag} (pid ${c.pid}) ${ended ? `exited ${code ?? c.child.process.signalCode}` : 'did not exit within 30 s'}: ${c.child.stderr().slice(-2_000)} last lines: ${c.child.stdout().trim().split("\n").slice(-4).join(" ")}`);
  }
  const svc = await (await world.admin()).services.waitReady(SERVICE, { timeoutMs: 20_000 }).catch((e: Error) => e);
  ctx.check(!(svc instanceof Error) && svc.state === 'running', 'service not running at the end', () => `service ${SERVICE}: ${svc instanceof Error ? svc.message : svc.state}`);
  await world.closeAdmin();
  const last = world.supervisorPid();
  const stopped = await ctx.cli(['stop', '--home', home.home]);
  ctx.check(stopped.code === 0, 'stop failed', () => `muxvisor stop exited ${stopped.code}: ${stopped.stderr}`);
  if (last !== null) world.supervisors.set(last, 'stop');

  // Nothing of ours left behind: clients, supervisors, service processes.
  const clientsLeft = world.clients.filter((c) => processAlive(c.pid)).map((c) => c.pid);
  const supervisorsLeft = [...world.supervisors.keys()].filter((pid) => processAlive(pid));
  const servicesLeft = [...home.serviceProcesses().keys()];
  ctx.check(clientsLeft.length + supervisorsLeft.length + servicesLeft.length === 0, 'process left behind',
    () => `alive after the episode: clients ${clientsLeft.join(',') || '-'}, supervisors ${supervisorsLeft.join(',') || '-'}, service processes ${servicesLeft.join(',') || '-'}`);

  world.resolveEnds();
  const result = checkRuns(home.layout.runsDir, world.expected);
  for (const p of result.problems.slice(0, 50)) ctx.violation(p.check, p.message);
  if (result.problems.length > 50) ctx.violation('more problems', `${result.problems.length - 50} more problems in episode ${index}`);
  ctx.count('checks', result.checks);
  ctx.count('episodes');
  ctx.count('runs checked', result.runs);
  ctx.count('records checked', result.records);
  ctx.count('acknowledged records proven', result.acknowledged);
  ctx.count('recoveries reported', result.recoveries);
  ctx.count('supervisors', world.supervisors.size);
  ctx.log(`episode ${index}: ${result.runs} runs, ${result.records} records, ${result.problems.length} problems`);
}
