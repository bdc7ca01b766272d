/**
 * `muxvisor runs` and `runs show|tail|export|verify ID`: runs open and recorded, read from the
 * home through the supervisor (`runs.*` ops). `tail --follow` reads on from where the last page
 * ended, every 250 ms, until the run finishes or ctrl+c.
 */
import type { Command } from 'commander';
import type { ResumePoint, RunInfo } from '../../runs.js';
import { action, jsonReplacer, pause } from '../context.js';
import { ExitCode, wholeNumber } from '../exit-codes.js';
import { age, bytes, clip, clock, type Colors, count, duration, stateColor, table } from '../format.js';

export function registerRuns(program: Command): void {
  const runs = program
    .command('runs')
    .description('runs open and recorded (newest first); subcommands: show, tail, export, verify')
    .option('--limit <n>', 'recorded runs to list', '20')
    .addHelpText('after', '\nExamples:\n  $ muxvisor runs\n  $ muxvisor runs show exp-42\n  $ muxvisor runs tail exp-42 --follow\n  $ muxvisor runs export exp-42 > exp-42.jsonl')
    .action(action(async (ctx, flags: { limit: string }) => {
      const limit = wholeNumber(flags.limit, '--limit', { min: 1 });
      const client = await ctx.connect();
      const list = await client.runs.list({ timeoutMs: ctx.timeoutMs });
      if (ctx.json) return void ctx.outJson({ open: list.open, recorded: list.recorded.slice(0, limit), recordedTotal: list.recorded.length });
      ctx.out(runsText(list.open, list.recorded, limit, ctx.c));
    }));

  runs
    .command('show')
    .argument('<id>', 'the run')
    .description('one run: state, how it ended, counters, owners and its summary (latest value of each key)')
    .addHelpText('after', '\nExample:\n  $ muxvisor runs show exp-42 --json | jq .summary')
    .action(action(async (ctx, id: string) => {
      const client = await ctx.connect();
      const info = await client.runs.get(id, { timeoutMs: ctx.timeoutMs });
      if (ctx.json) return void ctx.outJson(info);
      ctx.out(showText(info, ctx.c));
    }));

  runs
    .command('tail')
    .argument('<id>', 'the run')
    .description('the last records of a run; --follow prints new ones as they arrive')
    .option('-n, --lines <n>', 'records to show first', '10')
    .option('-f, --follow', 'keep printing records until the run finishes (or ctrl+c)')
    .addHelpText('after', '\nExample:\n  $ muxvisor runs tail exp-42 -n 5 --follow')
    .action(action(async (ctx, id: string, flags: { lines: string; follow?: boolean }) => {
      const n = wholeNumber(flags.lines, '--lines');
      const client = await ctx.connect();
      const print = (r: { index: number; record: unknown }) => (ctx.json ? ctx.outJson(r) : ctx.out(`${ctx.c.dim(`#${r.index}`)}  ${JSON.stringify(r.record, jsonReplacer)}`));
      let page = await client.runs.read(id, { last: n, timeoutMs: ctx.timeoutMs });
      page.records.forEach(print);
      if (!flags.follow) return;
      const signal = ctx.handleInterrupts();
      while (!page.finished && !signal.aborted) {
        const next = await client.runs.read(id, { from: page.next, timeoutMs: ctx.timeoutMs });
        next.records.forEach(print);
        page = { ...next, next: next.next ?? page.next };
        if (next.records.length === 0 && !next.finished) await pause(250, signal);
      }
      if (page.finished && !ctx.json) ctx.warn(ctx.c.dim(`run ${id} finished`));
    }));

  runs
    .command('export')
    .argument('<id>', 'the run')
    .description('every record of a run as JSON lines (one record per line; bytes as {"$base64": ...})')
    .option('--with-index', 'wrap each record as {"index": i, "record": ...}')
    .addHelpText('after', '\nExample:\n  $ muxvisor runs export exp-42 > exp-42.jsonl')
    .action(action(async (ctx, id: string, flags: { withIndex?: boolean }) => {
      const client = await ctx.connect();
      let from: ResumePoint | null = null;
      let total = 0;
      for (;;) {
        const page = await client.runs.read(id, { from, limit: 10_000, timeoutMs: ctx.timeoutMs });
        for (const r of page.records) ctx.outJson(flags.withIndex ? r : r.record);
        total += page.records.length;
        if (page.records.length === 0 || page.next === null) break;
        from = page.next;
        await drain();
      }
      if (!ctx.json && process.stderr.isTTY) ctx.warn(ctx.c.dim(`${count(total)} records`));
    }));

  runs
    .command('verify')
    .argument('<id>', 'the run')
    .description('checks the CRC of every entry of a run log; says where a torn log stops being whole (exit 7 when it is not)')
    .addHelpText('after', '\nExample:\n  $ muxvisor runs verify exp-42 || echo damaged')
    .action(action(async (ctx, id: string) => {
      const client = await ctx.connect();
      const v = await client.runs.verify(id, { timeoutMs: Math.max(ctx.timeoutMs, 120_000) });
      if (ctx.json) ctx.outJson(v);
      else {
        const head = `${v.path}: ${count(v.entries)} entries (${count(v.records)} records), ${bytes(v.validBytes)} of ${bytes(v.fileBytes)} whole, checked in ${duration(v.ms)}`;
        ctx.out(head);
        if (v.open) ctx.out(ctx.c.yellow(`the run is open: its last entry may still be being written (tail: ${v.tail})`));
        if (v.ok) ctx.out(ctx.c.green('ok: every CRC is correct'));
        for (const p of v.problems) ctx.out(ctx.c.red(`✗ ${p}`));
      }
      return v.ok ? ExitCode.Ok : ExitCode.Unhealthy;
    }));
}

function runsText(open: Array<Record<string, any>>, recorded: Array<Record<string, any>>, limit: number, c: Colors): string {
  const out: string[] = [];
  if (open.length === 0) out.push('no open runs');
  else {
    out.push(c.bold(`open (${open.length})`));
    out.push(table(['run', 'state', 'records', 'bytes', 'age', 'owners', 'handler'], open.map((r) => [
      r.run, stateColor(r.state, c), count(r.records), bytes(r.bytes), age(r.openedAt),
      (r.owners as Array<{ pid: number; name: string }>).map((o) => `${o.pid} ${o.name}`).join(', ') || '-', r.handler,
    ]), c));
  }
  const finished = recorded.filter((r) => r.state !== 'open');
  out.push('');
  if (finished.length === 0) out.push('no finished runs recorded');
  else {
    out.push(c.bold(`recorded (${finished.length}${finished.length > limit ? `, newest ${limit}` : ''})`));
    out.push(table(['run', 'status', 'records', 'bytes', 'opened', 'lasted', 'reason'], finished.slice(0, limit).map((r) => [
      r.run, stateColor(String(r.status ?? r.state), c), count(r.records), bytes(r.bytes), clock(r.openedAt),
      typeof r.updatedAt === 'number' && typeof r.openedAt === 'number' ? duration(r.updatedAt - r.openedAt) : '-', clip(String(r.reason ?? ''), 60),
    ]), c));
  }
  return out.join('\n');
}

function showText(info: RunInfo, c: Colors): string {
  const m = (info.meta ?? {}) as Record<string, any>;
  const live = info.live as Record<string, any> | null;
  const end = (info.end ?? null) as Record<string, any> | null;
  const rows: Array<[string, string]> = [
    ['state', stateColor(info.state, c)],
    ['status', end?.status ? `${stateColor(String(end.status), c)}${end.reason ? `: ${end.reason}` : ''}` : (m.status ? String(m.status) : '-')],
    ['records', count(live?.records ?? m.records)],
    ['bytes', bytes(live?.bytes ?? m.bytes)],
    ['opened', clock(m.openedAt ?? live?.openedAt)],
    ['last change', clock(m.updatedAt)],
    ['handler', String(live?.handler ?? m.handler ?? 'default')],
    ['opened by', m.client ? `pid ${m.client.pid} ${m.client.name}` : '-'],
    ['owners', live ? (live.owners as Array<{ pid: number; name: string }>).map((o) => `${o.pid} ${o.name}`).join(', ') || '-' : '-'],
    ['log', `${info.log.path} (${bytes(info.log.bytes)}, tail ${info.tail ?? '-'})`],
  ];
  const out = [c.bold(`run ${info.run}`), ...rows.map(([k, v]) => `  ${c.dim(k.padEnd(12))}${v}`)];
  const summary = Object.entries(info.summary ?? {});
  out.push('', c.bold(`summary (${count(info.summaryRecords ?? 0)} records)`));
  if (summary.length === 0) out.push('  (no map records)');
  else out.push(table(['key', 'latest'], summary.map(([k, v]) => [k, clip(JSON.stringify(v, jsonReplacer) ?? 'undefined', 100)]), c));
  return out.join('\n');
}

/** Waits for stdout to take what it has (a pipe to a slow reader must not grow our memory). */
function drain(): Promise<void> {
  return process.stdout.writableNeedDrain ? new Promise((resolve) => process.stdout.once('drain', () => resolve())) : Promise.resolve();
}

