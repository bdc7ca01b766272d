/**
 * Resource exhaustion: a full disk under the home (exhaustion/disk.ts) and the limit of open
 * files (exhaustion/fds.ts). Each part skips itself, with the reason, where the machine does not
 * allow it (tmpfs needs root; prlimit needs util-linux and Linux).
 */
import { fileLimit } from '../exhaustion/fds.js';
import { fullDisk } from '../exhaustion/disk.js';
import type { Section } from '../section.js';

export const exhaustion: Section = {
  name: 'exhaustion',
  title: 'resource exhaustion (full disk, fd limit)',
  async run(ctx) {
    let started = performance.now();
    await fullDisk(ctx);
    ctx.log(`full disk took ${Math.round(performance.now() - started)} ms`);
    if (ctx.signal.aborted) return;
    started = performance.now();
    await fileLimit(ctx);
    ctx.log(`fd limit took ${Math.round(performance.now() - started)} ms`);
  },
};
