/**
 * `muxvisor events [--follow]`: the state-change stream in order — services changing state, runs
 * opening and finishing, the supervisor starting, draining, losing a worker. Without --follow it
 * prints what the supervisor still keeps (the last 1000 per topic) and exits.
 */
import type { Command } from 'commander';
import type { EventTopic, SupervisorEvent } from '../../events.js';
import { action } from '../context.js';
import { usageError, wholeNumber } from '../exit-codes.js';
import { clock, type Colors, stateColor } from '../format.js';

const TOPICS: readonly EventTopic[] = ['service', 'run', 'supervisor'];

export function registerEvents(program: Command): void {
  program
    .command('events')
    .description('state changes in order (services, runs, the supervisor); --follow waits for new ones')
    .option('-f, --follow', 'keep printing events as they happen (ctrl+c to stop)')
    .option('-t, --topic <topic>', `only this topic (${TOPICS.join(', ')}); repeatable`, (v: string, prev: string[] = []) => [...prev, v])
    .option('-n, --last <n>', 'events to show from the past (per topic kept: 1000)', '50')
    .addHelpText('after', '\nExamples:\n  $ muxvisor events -n 20\n  $ muxvisor events --follow --topic service --json')
    .action(action(async (ctx, flags: { follow?: boolean; topic?: string[]; last: string }) => {
      const topics = (flags.topic ?? [...TOPICS]) as EventTopic[];
      for (const t of topics) if (!TOPICS.includes(t)) throw usageError(`--topic must be one of ${TOPICS.join(', ')}, got \`${t}\``);
      const last = wholeNumber(flags.last, '--last');
      const client = await ctx.connect();
      const signal = flags.follow ? ctx.handleInterrupts() : ctx.signal;
      const print = (e: SupervisorEvent) => (ctx.json ? ctx.outJson(e) : ctx.out(eventText(e, ctx.c)));
      const past: SupervisorEvent[] = [];
      let live = false;
      let ended: Error | null = null;
      let stop = () => undefined as void;
      const done = new Promise<void>((resolve) => {
        stop = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      const since = Object.fromEntries(topics.map((t) => [t, 0]));
      const sub = await client.events((e) => (live ? print(e) : past.push(e)), {
        topics, since, timeoutMs: ctx.timeoutMs,
        onEnd: (error) => {
          ended = error;
          stop();
        },
      });
      // The replay arrived in the answer (time order); show its newest `last`, then go live.
      for (const e of past.slice(Math.max(0, past.length - last))) print(e);
      if (sub.lost.length > 0 && !ctx.json) ctx.warn(ctx.c.dim(`(older ${sub.lost.join(', ')} events are no longer kept)`));
      if (!flags.follow) {
        sub.close();
        return;
      }
      live = true;
      await done;
      sub.close();
      if (ended !== null) throw ended;
    }));
}

/** One line per event: time, topic, what happened. */
export function eventText(e: SupervisorEvent, c: Colors): string {
  const d = e.data as Record<string, any>;
  const time = c.dim(clock(e.time));
  switch (e.topic) {
    case 'service': {
      const exit = d.exit ? ` (${d.exit.signal ?? `code ${d.exit.code}`})` : '';
      return `${time} ${c.cyan('service')} ${c.bold(String(d.service))} ${d.previous ?? '-'} → ${stateColor(String(d.state), c)}${d.pid ? ` pid ${d.pid}` : ''}${exit}: ${d.reason}`;
    }
    case 'run':
      return d.event === 'opened'
        ? `${time} ${c.magenta('run')}     ${c.bold(String(d.run))} opened by pid ${d.by?.pid} ${d.by?.name ?? ''}`
        : `${time} ${c.magenta('run')}     ${c.bold(String(d.run))} finished ${stateColor(String(d.status), c)}${d.reason ? `: ${d.reason}` : ''} (${d.records} records)`;
    default:
      return `${time} ${c.blue(e.topic.padEnd(7))} ${String(d.event ?? '')} ${JSON.stringify({ ...d, event: undefined })}`;
  }
}
