/**
 * `muxvisor status` and `muxvisor connections`: what the supervisor is doing, problems first.
 * `--json` prints the supervisor's `status` answer (PROTOCOL.md) with `problems` extended by what
 * the CLI itself sees (a supervisor of another version).
 */
import type { Command } from 'commander';
import { VERSION } from '../../../protocol/version.js';
import { action } from '../context.js';
import { bytes, type Colors, count, duration, percent, rate, stateColor, table } from '../format.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('version, pid, uptime, connections, runs, services, CPU and memory, traffic and rates; problems first')
    .addHelpText('after', '\nExamples:\n  $ muxvisor status\n  $ muxvisor status --json | jq .rates')
    .action(action(async (ctx) => {
      const client = await ctx.connect();
      const status = await client.status({ timeoutMs: ctx.timeoutMs });
      const problems = [...(status.problems as string[])];
      const server = status.server as { version: string; pid: number };
      if (server.version !== VERSION) problems.unshift(`the supervisor runs muxvisor ${server.version}, this CLI is ${VERSION}: restart it (\`muxvisor stop\`, then any client starts the new one)`);
      if (ctx.json) return void ctx.outJson({ ...status, problems });
      ctx.out(statusText({ ...status, problems }, ctx.c));
    }));

  program
    .command('connections')
    .description('each connected client: pid, name, runs, pending requests, bytes, age')
    .addHelpText('after', '\nExample:\n  $ muxvisor connections --json')
    .action(action(async (ctx) => {
      const client = await ctx.connect();
      const list = await client.connections({ timeoutMs: ctx.timeoutMs });
      if (ctx.json) return void ctx.outJson(list);
      ctx.out(connectionsText(list, ctx.c));
    }));
}

/** The status report as text (also the monitor's header). */
export function statusText(s: Record<string, any>, c: Colors): string {
  const lines: string[] = [];
  const problems = s.problems as string[];
  if (problems.length > 0) {
    lines.push(c.red(c.bold(`${problems.length} problem${problems.length === 1 ? '' : 's'}:`)));
    for (const p of problems) lines.push(c.red(`  ! ${p}`));
    lines.push('');
  }
  const range = s.protocol as [number, number];
  const protocol = range[0] === range[1] ? String(range[0]) : `${range[0]}-${range[1]}`;
  lines.push(`${c.bold(`muxvisor ${s.server.version}`)} (protocol ${protocol})  pid ${s.server.pid}  up ${duration(s.uptimeMs)}  ${stateColor(s.state === 'running' ? 'running' : s.state, c)}`);
  const rows: Array<[string, string]> = [
    ['home', s.home],
    ['socket', s.socket],
    ['connections', `${count(s.connections)}  (pending requests ${count(s.pendingRequests)})`],
    ['runs', `${count(s.runs.open)} open  (since start: ${count(s.runs.opened)} opened, ${count(s.runs.finished)} finished, ${count(s.runs.crashed)} crashed)`],
    ['services', `${count(s.services.count)}${s.services.count > 0 ? `  ${Object.entries(s.services.byState as Record<string, number>).map(([k, v]) => `${v} ${stateColor(k, c)}`).join(', ')}  cpu ${percent(s.services.cpuPercent)}  mem ${bytes(s.services.memoryBytes)}` : ''}`],
    ['supervisor', `cpu ${percent(s.rates.cpuPercent)}  rss ${bytes(s.process.rssBytes)}  heap ${bytes(s.process.heapUsedBytes)}${loopDelay(s.eventLoopDelay)}`],
    ['in', `${count(s.traffic.recordsIn)} records, ${bytes(s.traffic.bytesIn)}  now ${rate(s.rates.recordsPerSec)}, ${bytes(s.rates.bytesInPerSec)}/s`],
    ['out', `${bytes(s.traffic.bytesOut)}  now ${bytes(s.rates.bytesOutPerSec)}/s`],
    ['requests', `${count(s.traffic.requestsIn)}  now ${rate(s.rates.requestsPerSec)}`],
    ['queues', s.workers.length === 0 ? 'no worker threads yet (they start with the first run)' : (s.workers as Array<{ index: number; runs: number; backlogBytes: number; dedicated: boolean }>).map((w) => `worker ${w.index}${w.dedicated ? ' (dedicated)' : ''}: ${w.runs} runs, ${bytes(w.backlogBytes)} waiting`).join('; ')],
  ];
  for (const [k, v] of rows) lines.push(`  ${c.dim(k.padEnd(12))}${v}`);
  if (problems.length === 0) lines.push(c.green('  no problems'));
  return lines.join('\n');
}

/** The main thread's lateness, when the supervisor reports it (older ones do not). */
function loopDelay(d: { maxMs: number; p99Ms: number; lastSecondMaxMs: number } | undefined): string {
  return d === undefined ? '' : `  event-loop delay ${d.lastSecondMaxMs} ms now (since start: p99 ${d.p99Ms} ms, max ${d.maxMs} ms)`;
}

export function connectionsText(list: Array<Record<string, any>>, c: Colors): string {
  if (list.length === 0) return 'no clients connected';
  return table(
    ['conn', 'pid', 'name', 'runs', 'pending', 'in', 'out', 'records', 'requests', 'age'],
    list.map((x) => [x.conn, x.pid, x.name, x.runs, x.pending, bytes(x.bytesIn), bytes(x.bytesOut), count(x.recordsIn), count(x.requestsIn), duration(x.ageMs)]),
    c,
  );
}

