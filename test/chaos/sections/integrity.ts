/**
 * Integrity under chaos (RELIABILITY.md, "What survives a kill"): episodes of client processes
 * publishing and syncing while clients, handler workers, a service and the supervisor itself are
 * killed at random moments; after each, every run log is checked against what was acknowledged.
 */
import { runEpisode } from '../integrity/episode.js';
import type { Section } from '../section.js';

export const integrity: Section = {
  name: 'integrity',
  title: 'integrity under chaos',
  async run(ctx) {
    const plan = ctx.quick
      ? { clients: 3, extra: 0, gapMs: [150, 500] as [number, number] }
      : { clients: 8, extra: 8, gapMs: [200, 1_500] as [number, number] };
    for (let i = 0; i < ctx.options.episodes && !ctx.signal.aborted; i++) await runEpisode(ctx, i, plan);
  },
};
