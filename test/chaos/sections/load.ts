/**
 * Load and soak (issue 7): many concurrent connections held at once (load/connections.ts), then
 * many clients publishing at full speed for minutes while memory, descriptors and a canary's
 * latency are watched from the first period to the last (load/soak.ts). Each part has its own
 * supervisor, so that one's figures do not carry the other's history.
 */
import { manyConnections } from '../load/connections.js';
import { soak } from '../load/soak.js';
import type { Section } from '../section.js';

export const load: Section = {
  name: 'load',
  title: 'load: connections and soak',
  async run(ctx) {
    await manyConnections(ctx);
    if (ctx.signal.aborted) return;
    await soak(ctx);
  },
};
