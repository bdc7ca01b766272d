/**
 * `muxvisor services` (the list, with the columns people know from PM2) and `muxvisor service
 * add|start|stop|restart|remove|describe|logs NAME`. Acting commands start the supervisor when
 * none runs (a service needs one); reporting ones say that none runs instead (exit 3).
 */
import { isAbsolute, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { ServiceDefinition, ServiceStatus } from '../../services.js';
import { action, type Ctx } from '../context.js';
import { usageError, wholeNumber } from '../exit-codes.js';
import { age, bytes, clip, clock, type Colors, exitText, percent, stateColor, table } from '../format.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerServices(program: Command): void {
  program
    .command('services')
    .description('every service: name, state, pid, uptime, restarts, CPU, memory, port/URL, last exit and why')
    .addHelpText('after', '\nExamples:\n  $ muxvisor services\n  $ muxvisor services --json | jq \'.[] | {name, state}\'')
    .action(action(async (ctx) => {
      const client = await ctx.connect();
      const list = await client.services.list({ timeoutMs: ctx.timeoutMs });
      if (ctx.json) return void ctx.outJson(list);
      ctx.out(servicesText(list, ctx.c));
    }));

  const service = program.command('service').description('add, start, stop, restart, remove, describe a service, or read its logs');

  service
    .command('add')
    .argument('<name>', 'the service name (letters, digits, . _ -)')
    .argument('[command...]', 'the program and its arguments, after `--`; placeholders {port} {port:NAME} {name} {home} {run}')
    .description('add a service and start it (waits until it is ready)')
    .option('-f, --file <path>', 'a JSON definition (fields as in ServiceDefinition); flags given override it')
    .option('-p, --port <name=port>', 'a named port; 0 lets the supervisor pick a free one (repeatable; `8080` alone names it `port`)', collect)
    .option('--url <template>', 'where it is reached, e.g. http://127.0.0.1:{port}/')
    .option('-e, --env <KEY=value>', 'an environment variable (repeatable; saved in the home: no secrets)', collect)
    .option('--inherit-env <NAME>', 'pass this variable from this shell; only its name is saved (repeatable)', collect)
    .option('--cwd <dir>', 'working directory')
    .option('--ready <probe>', 'none | tcp[:PORTNAME] | http[:/path] | log:REGEX (default: tcp on the first port, else none)')
    .option('--ready-timeout <ms>', 'deadline of the readiness probe')
    .option('--restart <policy>', 'never | on-failure | always')
    .option('--max-restarts <n>', 'give up after this many restarts within a minute')
    .option('--stop-signal <signal>', 'signal that asks it to stop (default SIGTERM)')
    .option('--stop-timeout <ms>', 'then SIGKILL for the whole tree after this long')
    .option('--run <id>', 'tie it to a run: removed when that run finishes')
    .option('--replace', 'replace a service of the same name')
    .option('--no-start', 'add it stopped')
    .option('--no-wait', 'do not wait for readiness')
    .addHelpText('after', '\nExamples:\n  $ muxvisor service add web -p http=0 --url http://127.0.0.1:{port}/ --ready http:/ -- python3 -m http.server {port}\n  $ muxvisor service add cache -f redis.json')
    .action(action(async (ctx, name: string, command: string[], flags: AddFlags) => {
      const definition = definitionFrom(name, command, flags);
      const client = await ctx.connect({ start: true });
      const status = await client.services.add(definition, { replace: flags.replace === true, start: flags.start, wait: flags.wait, timeoutMs: flags.wait ? undefined : ctx.timeoutMs });
      report(ctx, status, 'added');
    }));

  service
    .command('start')
    .argument('<name>')
    .description('start a stopped, exited or failed service (waits until it is ready)')
    .option('--no-wait', 'do not wait for readiness')
    .addHelpText('after', '\nExample:\n  $ muxvisor service start web')
    .action(action(async (ctx, name: string, flags: { wait: boolean }) => {
      const client = await ctx.connect({ start: true });
      report(ctx, await client.services.start(name, { wait: flags.wait }), 'started');
    }));

  service
    .command('stop')
    .argument('<name>')
    .description('stop a service: its whole process tree is gone when this returns')
    .addHelpText('after', '\nExample:\n  $ muxvisor service stop web')
    .action(action(async (ctx, name: string) => {
      const client = await ctx.connect();
      report(ctx, await client.services.stop(name), 'stopped');
    }));

  service
    .command('restart')
    .argument('<name>')
    .description('stop (the whole tree) and start again; waits until it is ready')
    .option('--no-wait', 'do not wait for readiness')
    .addHelpText('after', '\nExample:\n  $ muxvisor service restart web')
    .action(action(async (ctx, name: string, flags: { wait: boolean }) => {
      const client = await ctx.connect({ start: true });
      report(ctx, await client.services.restart(name, { wait: flags.wait }), 'restarted');
    }));

  service
    .command('remove')
    .argument('<name>')
    .description('stop a service and forget it')
    .addHelpText('after', '\nExample:\n  $ muxvisor service remove web')
    .action(action(async (ctx, name: string) => {
      const client = await ctx.connect();
      await client.services.remove(name);
      if (ctx.json) ctx.outJson({ removed: name });
      else ctx.out(`removed ${name}`);
    }));

  service
    .command('describe')
    .argument('<name>')
    .description('everything about one service: state, why, process, ports, usage, definition, last lines, recent events')
    .option('-n, --lines <n>', 'last lines of output to show', '10')
    .addHelpText('after', '\nExample:\n  $ muxvisor service describe web --json')
    .action(action(async (ctx, name: string, flags: { lines: string }) => {
      const n = wholeNumber(flags.lines, '--lines');
      const client = await ctx.connect();
      const status = await client.services.get(name, { timeoutMs: ctx.timeoutMs });
      const { lines } = await client.services.logs(name, { lines: n, timeoutMs: ctx.timeoutMs });
      const events: Array<Record<string, unknown>> = [];
      const sub = await client.events((e) => {
        if (e.data.service === name) events.push({ seq: e.seq, time: e.time, ...e.data });
      }, { topics: ['service'], since: { service: 0 }, timeoutMs: ctx.timeoutMs });
      sub.close();
      const recent = events.slice(-10);
      if (ctx.json) return void ctx.outJson({ ...status, lastLines: lines, events: recent });
      ctx.out(describeText(status, lines, recent, ctx.c));
    }));

  service
    .command('logs')
    .argument('<name>')
    .description('the last lines a service wrote (stdout and stderr in order); --follow prints new ones')
    .option('-n, --lines <n>', 'lines to show first', '50')
    .option('-f, --follow', 'keep printing lines as they are written (ctrl+c to stop)')
    .addHelpText('after', '\nExamples:\n  $ muxvisor service logs web -n 100\n  $ muxvisor service logs web --follow --json')
    .action(action(async (ctx, name: string, flags: { lines: string; follow?: boolean }) => {
      const n = wholeNumber(flags.lines, '--lines');
      const client = await ctx.connect();
      const print = (l: { time: number; stream: string; line: string }) => (ctx.json
        ? ctx.outJson(l)
        : ctx.out(`${ctx.c.dim(clock(l.time).slice(11))} ${l.stream === 'stderr' ? ctx.c.red('err') : ctx.c.dim('out')} ${l.line}`));
      if (!flags.follow) {
        const { lines } = await client.services.logs(name, { lines: n, timeoutMs: ctx.timeoutMs });
        lines.forEach(print);
        return;
      }
      const signal = ctx.handleInterrupts();
      let ended: Error | null = null;
      const done = new Promise<void>((resolveDone) => {
        signal.addEventListener('abort', () => resolveDone(), { once: true });
        void client.services.followLogs(name, print, {
          lines: n, timeoutMs: ctx.timeoutMs,
          onEnd: (error) => {
            ended = error;
            resolveDone();
          },
        }).then((f) => (signal.aborted ? f.close() : signal.addEventListener('abort', f.close, { once: true })), (error: Error) => {
          ended = error;
          resolveDone();
        });
      });
      await done;
      if (ended !== null) throw ended;
    }));
}

interface AddFlags {
  file?: string;
  port?: string[];
  url?: string;
  env?: string[];
  inheritEnv?: string[];
  cwd?: string;
  ready?: string;
  readyTimeout?: string;
  restart?: string;
  maxRestarts?: string;
  stopSignal?: string;
  stopTimeout?: string;
  run?: string;
  replace?: boolean;
  start: boolean;
  wait: boolean;
}


/** The definition the flags describe; the supervisor checks it (and names every problem). */
export function definitionFrom(name: string, command: string[], flags: AddFlags): ServiceDefinition {
  let d: Record<string, unknown> = {};
  if (flags.file !== undefined) {
    try {
      d = JSON.parse(readFileSync(flags.file, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw usageError(`cannot read the definition in ${flags.file}: ${(error as Error).message}`);
    }
  }
  d.name = name;
  if (command.length > 0) {
    const [program, ...args] = command as [string, ...string[]];
    d.command = program.includes('/') && !isAbsolute(program) ? resolve(program) : program;
    d.args = args;
  }
  if (d.command === undefined) throw usageError('no command: give it after `--` (`muxvisor service add web -- python3 -m http.server {port}`) or in --file');
  if (flags.port) d.ports = Object.fromEntries(flags.port.map((p) => {
    const m = /^(?:([A-Za-z0-9._-]+)=)?(\d+)$/.exec(p);
    if (m === null) throw usageError(`--port wants NAME=PORT or PORT, got \`${p}\``);
    return [m[1] ?? 'port', Number(m[2])];
  }));
  if (flags.url !== undefined) d.url = flags.url;
  if (flags.env) d.env = Object.fromEntries(flags.env.map((e) => {
    const i = e.indexOf('=');
    if (i <= 0) throw usageError(`--env wants KEY=value, got \`${e}\``);
    return [e.slice(0, i), e.slice(i + 1)];
  }));
  if (flags.inheritEnv) d.inheritEnv = flags.inheritEnv;
  if (flags.cwd !== undefined) d.cwd = resolve(flags.cwd);
  if (flags.ready !== undefined || flags.readyTimeout !== undefined) {
    const probe = flags.ready === undefined ? (d.readiness as Record<string, unknown> | undefined) ?? { type: 'tcp' } : parseProbe(flags.ready);
    if (flags.readyTimeout !== undefined) probe.timeoutMs = wholeNumber(flags.readyTimeout, '--ready-timeout');
    d.readiness = probe;
  }
  if (flags.restart !== undefined || flags.maxRestarts !== undefined) {
    const restart: Record<string, unknown> = { ...((d.restart as Record<string, unknown> | undefined) ?? { policy: 'on-failure' }) };
    if (flags.restart !== undefined) restart.policy = flags.restart;
    if (flags.maxRestarts !== undefined) restart.maxRestarts = wholeNumber(flags.maxRestarts, '--max-restarts');
    d.restart = restart;
  }
  if (flags.stopSignal !== undefined) d.stopSignal = flags.stopSignal;
  if (flags.stopTimeout !== undefined) d.stopTimeoutMs = wholeNumber(flags.stopTimeout, '--stop-timeout');
  if (flags.run !== undefined) d.run = flags.run;
  return d as unknown as ServiceDefinition;
}

function parseProbe(text: string): Record<string, unknown> {
  if (text === 'none') return { type: 'none' };
  if (text === 'tcp') return { type: 'tcp' };
  if (text.startsWith('tcp:')) return { type: 'tcp', port: text.slice(4) };
  if (text === 'http') return { type: 'http' };
  if (text.startsWith('http:')) return { type: 'http', path: text.slice(5) };
  if (text.startsWith('log:') && text.length > 4) return { type: 'log', pattern: text.slice(4) };
  throw usageError(`--ready wants none, tcp[:PORTNAME], http[:/path] or log:REGEX, got \`${text}\``);
}


function report(ctx: Ctx, status: ServiceStatus, verb: string): void {
  if (ctx.json) return void ctx.outJson(status);
  const where = status.url ?? (Object.keys(status.ports).length ? Object.entries(status.ports).map(([k, v]) => `${k} ${v}`).join(', ') : '');
  ctx.out(`${verb} ${status.name}: ${stateColor(status.state, ctx.c)}${status.pid ? ` pid ${status.pid}` : ''}${where ? `  ${where}` : ''}${status.state !== 'running' && status.state !== 'stopped' ? `  (${status.reason})` : ''}`);
}

/** Where it is reached: the URL, else its ports. */
export function whereText(s: ServiceStatus): string {
  if (s.url) return s.url;
  const ports = Object.entries(s.ports);
  return ports.length === 0 ? '-' : ports.map(([k, v]) => (k === 'port' ? String(v) : `${k}:${v}`)).join(' ');
}

/** The last exit: `code 1 3m ago: why`, or `-`. */
export function lastExitText(s: ServiceStatus): string {
  if (s.lastExit === null) return '-';
  return `${exitText(s.lastExit)} ${age(s.lastExit.at)} ago`;
}

export function servicesText(list: ServiceStatus[], c: Colors, width = process.stdout.columns || 160): string {
  if (list.length === 0) return 'no services (add one: `muxvisor service add NAME -- COMMAND ARGS`)';
  const reasonWidth = Math.max(20, Math.min(70, width - 110));
  return table(['name', 'state', 'pid', 'uptime', '↺', 'cpu', 'mem', 'port/url', 'last exit', 'why'], list.map((s) => [
    s.name, stateColor(s.state, c), s.pid ?? '-', s.state === 'running' ? age(s.readyAt ?? s.startedAt) : '-', s.restarts,
    percent(s.usage?.cpuPercent), bytes(s.usage?.memoryBytes), whereText(s), lastExitText(s),
    clip(s.state === 'running' ? '' : s.reason, reasonWidth),
  ]), c);
}

function describeText(s: ServiceStatus, lines: Array<{ time: number; stream: string; line: string }>, events: Array<Record<string, unknown>>, c: Colors): string {
  const d = s.definition;
  const probe = d.readiness.type === 'none' ? 'none' : `${d.readiness.type} (${JSON.stringify({ ...d.readiness, type: undefined })})`;
  const rows: Array<[string, string]> = [
    ['state', `${stateColor(s.state, c)} (wanted ${s.desired}): ${s.reason}`],
    ['pid', String(s.pid ?? '-')],
    ['uptime', s.state === 'running' ? age(s.readyAt ?? s.startedAt) : '-'],
    ['restarts', String(s.restarts)],
    ['health', `${s.health.ready ? c.green('ready') : 'not ready'}: ${s.health.probe}${s.health.detail ? ` (${s.health.detail})` : ''}`],
    ['usage', s.usage ? `cpu ${percent(s.usage.cpuPercent)}, mem ${bytes(s.usage.memoryBytes)}, ${s.usage.processes} processes` : '-'],
    ['where', whereText(s)],
    ['last exit', s.lastExit ? `${exitText(s.lastExit)} at ${clock(s.lastExit.at)}` : '-'],
    ['command', [d.command, ...d.args].join(' ')],
    ['cwd', d.cwd ?? '(its directory in the home)'],
    ['readiness', probe],
    ['restart', `${d.restart.policy}, at most ${d.restart.maxRestarts} in ${d.restart.periodMs} ms, backoff ${d.restart.initialDelayMs}..${d.restart.maxDelayMs} ms`],
    ['stop', `${d.stopSignal}, SIGKILL after ${d.stopTimeoutMs} ms`],
    ['run', d.run ?? '-'],
    ['logs', `${s.logs.stdout}\n${' '.repeat(14)}${s.logs.stderr}`],
  ];
  if (s.missingEnv.length > 0) rows.push(['missing env', s.missingEnv.join(', ')]);
  const out = [c.bold(`service ${s.name}`), ...rows.map(([k, v]) => `  ${c.dim(k.padEnd(12))}${v}`)];
  out.push('', c.bold(`last ${lines.length} lines`));
  for (const l of lines) out.push(`  ${l.stream === 'stderr' ? c.red('err') : c.dim('out')} ${l.line}`);
  out.push('', c.bold('recent events'));
  if (events.length === 0) out.push('  (none kept)');
  for (const e of events) out.push(`  ${c.dim(clock(e.time as number))} ${String(e.previous ?? '-')} → ${stateColor(String(e.state), c)}: ${String(e.reason)}`);
  return out.join('\n');
}
