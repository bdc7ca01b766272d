/**
 * `muxvisor demo` (README's first command, via `npm run demo`): starts the supervisor, runs three
 * user processes that open runs and log metrics while one of them starts a supervised HTTP
 * service, then prints `muxvisor status` and `muxvisor services` and what to try next. The
 * service stays up afterwards so those commands have something to show.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { HOME_ENV, SERVICE_ENV } from '../../../protocol/index.js';
import { action, type Ctx, homeFlag } from '../context.js';
import { ExitCode, wholeNumber } from '../exit-codes.js';
import { count, rate } from '../format.js';
import { servicesText } from './services.js';
import { statusText } from './status.js';

const DEMO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'demo');

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('a one-minute tour: a supervisor, three processes logging runs, a supervised HTTP service')
    .option('--steps <n>', 'metrics each process logs', '400')
    .addHelpText('after', '\nExample:\n  $ muxvisor demo              # then: muxvisor status, muxvisor monitor')
    .action(action(async (ctx, flags: { steps: string }) => demo(ctx, wholeNumber(flags.steps, '--steps', { min: 1, expected: 'a positive whole number' }))));
}

async function demo(ctx: Ctx, steps: number): Promise<ExitCode> {
  const { c } = ctx;
  const say = (text: string) => ctx.out(`${c.cyan('›')} ${text}`);
  say(`home ${ctx.home}`);
  const client = await ctx.connect({ start: true });
  say(`${client.started ? 'started' : 'found'} the supervisor: pid ${client.server.pid}, socket ${ctx.layout.socketPath}`);
  say('starting 3 user processes; each opens a run and logs metrics; trainer-0 also starts the service `demo-web`');

  const names = ['trainer-0', 'trainer-1', 'trainer-2'];
  const children = names.map((name, i) => {
    const args = [join(DEMO_DIR, 'trainer.js'), name, String(steps * (i + 1))];
    if (i === 0) args.push('--web', join(DEMO_DIR, 'web.js'));
    const env: NodeJS.ProcessEnv = { ...process.env, [HOME_ENV]: ctx.home };
    delete env[SERVICE_ENV];
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().trim().split('\n')) say(c.dim(line));
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    return new Promise<{ name: string; code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ name, code, stderr })));
  });

  const progress = setInterval(() => {
    void client.status({ timeoutMs: ctx.timeoutMs }).then((s: Record<string, any>) => {
      say(c.dim(`${s.runs.open} runs open, ${count(s.traffic.recordsIn)} records in (${rate(s.rates.recordsPerSec)}), ${s.services.count} service(s)`));
    }, () => undefined);
  }, 700);
  const results = await Promise.all(children).finally(() => clearInterval(progress));
  const failed = results.filter((r) => r.code !== 0);
  for (const f of failed) ctx.warn(c.red(`${f.name} exited with code ${f.code}:\n${f.stderr.trim()}`));

  // One sampling tick of the service's CPU and memory, so the tables below show them.
  const sampled = Date.now() + 3_000;
  while (Date.now() < sampled && (await client.services.get('demo-web', { timeoutMs: ctx.timeoutMs }).catch(() => null))?.usage === null) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const status = await client.status({ timeoutMs: ctx.timeoutMs });
  const services = await client.services.list({ timeoutMs: ctx.timeoutMs });
  const recorded = (await client.runs.list({ timeoutMs: ctx.timeoutMs })).recorded;
  const run = String(recorded[0]?.run ?? '<run id>');
  const h = homeFlag(ctx.layout);
  ctx.out(`\n${c.bold(`$ muxvisor status${h}`)}\n${statusText(status as Record<string, any>, c)}`);
  ctx.out(`\n${c.bold(`$ muxvisor services${h}`)}\n${servicesText(services, c)}`);
  const web = services.find((s) => s.name === 'demo-web');
  ctx.out(`\n${c.bold('Try next')} (\`npx muxvisor ...\` from this directory):`);
  const tips: Array<[string, string]> = [
    [`muxvisor runs${h}`, 'the runs just recorded'],
    [`muxvisor runs show ${run}${h}`, 'one run: how it ended, its summary'],
    [`muxvisor runs tail ${run}${h}`, 'its last records'],
    [`muxvisor monitor${h}`, 'the live view (ctrl+k stops demo-web, ctrl+s starts it, q quits)'],
    [`muxvisor service logs demo-web${h}`, 'what the service wrote'],
    [`muxvisor events${h}`, 'every state change, in order'],
    [`muxvisor doctor${h}`, 'checks the home, socket and disk'],
    [`muxvisor stop${h}`, 'drain and stop the supervisor and demo-web'],
  ];
  const width = Math.max(...tips.map(([cmd]) => cmd.length)) + 2;
  for (const [cmd, why] of tips) ctx.out(`  ${c.green(cmd.padEnd(width))} ${c.dim(why)}`);
  if (web?.url) ctx.out(`\nThe demo's web page lists the runs: ${c.underline(web.url)}`);
  return failed.length === 0 ? ExitCode.Ok : ExitCode.Failure;
}
