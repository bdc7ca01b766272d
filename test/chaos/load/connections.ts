/**
 * Many concurrent connections: `ctx.options.connections` clients from about ten processes, all
 * opened at once, each handshaken and answering a PING, held together beside a canary, then
 * closed. Every one must succeed (a failure is a violation, counted by its typed code), the
 * supervisor must really hold them (its fd count rises by at least as many), and once they close
 * its fd count must come back to where it was. Figures: time to open them all, the supervisor's
 * RSS with them open, and what one connection costs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { judgeCanary, startCanary } from '../canary.js';
import { fdCount, rssBytes, type SectionContext } from '../context.js';
import type { HoldOpened } from '../programs/hold-connections.js';
import { awaitEvent, tell } from './processes.js';
import { MB, round } from './sampler.js';

/** Processes the connections come from. */
const PROCESSES = 10;
/** Descriptors the supervisor may hold above its baseline once every client has gone. */
export const FD_SLACK = 4;

export async function manyConnections(ctx: SectionContext): Promise<void> {
  const home = ctx.home();
  const supervisor = await ctx.startSupervisor(home, 'load supervisor started');
  if (supervisor === null) return;
  const canary = await startCanary(ctx, home.home);

  const n = ctx.options.connections;
  const processes = Math.min(PROCESSES, n);
  const holders = Array.from({ length: processes }, (_, i) => {
    const share = Math.floor(n / processes) + (i < n % processes ? 1 : 0);
    return ctx.program('hold-connections', { home: home.home, n: share, timeoutMs: 60_000 }, { stdio: ['pipe', 'pipe', 'pipe'] });
  });
  await awaitEvent(holders, 'ready', 60_000, ctx.signal);
  await sleep(200);
  const fds0 = fdCount(supervisor) ?? 0;
  const rss0 = rssBytes(supervisor) ?? 0;

  const t0 = performance.now();
  tell(holders, 'open');
  const opened = await awaitEvent<HoldOpened>(holders, 'opened', 120_000, ctx.signal);
  const openMs = performance.now() - t0;
  const ok = opened.reduce((sum, o) => sum + o.ok, 0);
  const failed: Record<string, number> = {};
  for (const o of opened) for (const [code, count] of Object.entries(o.failed)) failed[code] = (failed[code] ?? 0) + count;
  ctx.count('connections opened', ok);
  for (const [code, count] of Object.entries(failed)) ctx.count(`connections failed ${code}`, count);
  const untyped = Object.keys(failed).filter((code) => code.startsWith('untyped'));
  ctx.check(untyped.length === 0, 'load connection failed untyped', () => `connections failed without a typed error: ${untyped.map((c) => `${failed[c]} × ${c}`).join(', ')}`);
  ctx.check(ok === n, 'load connection failed', () => `${n - ok} of ${n} connections failed: ${JSON.stringify(failed)}; first: ${opened.flatMap((o) => o.errors).slice(0, 3).join(' | ')}`);

  await sleep(300);
  const fds1 = fdCount(supervisor) ?? 0;
  const rss1 = rssBytes(supervisor) ?? 0;
  ctx.check(fds1 - fds0 >= ok, 'load connections held', () => `the supervisor holds ${fds1 - fds0} more descriptors with ${ok} connections open: they are not all there`);

  tell(holders, 'close');
  await awaitEvent(holders, 'closed', 60_000, ctx.signal);
  await Promise.all(holders.map((h) => h.exited));
  // The supervisor notices each close on its own time: give it until the descriptors are back.
  let fds2 = fdCount(supervisor) ?? 0;
  for (let waited = 0; fds2 > fds0 + FD_SLACK && waited < 10_000; waited += 100) {
    await sleep(100);
    fds2 = fdCount(supervisor) ?? 0;
  }
  ctx.check(fds2 <= fds0 + FD_SLACK, 'load fds back after close', () => `the supervisor held ${fds0} descriptors before, ${fds1} with ${ok} connections, still ${fds2} 10 s after they closed (slack ${FD_SLACK})`);

  judgeCanary(ctx, await canary.stop(), 1_000, 'connections canary');
  ctx.figure('connections held at once', ok, 'connections');
  ctx.figure(`time to open ${n} connections`, Math.round(openMs), 'ms', { note: `${processes} processes, all at once: connect, HELLO/WELCOME, one PING each` });
  ctx.figure(`supervisor RSS with ${n} connections`, round(rss1 / MB), 'MB', { note: `${round(rss0 / MB)} MB before` });
  ctx.figure('supervisor memory per connection', round((rss1 - rss0) / 1024 / Math.max(1, ok)), 'KB');
  ctx.figure('supervisor fds left after close', fds2 - fds0, 'fds', { note: `above the baseline; before / open / after: ${fds0} / ${fds1} / ${fds2}` });
}
