/**
 * The fuzz section is not in main yet: it is being finished on branch `chaos-fuzz` (issue 7 continues).
 * Until then it reports itself skipped, with that reason, and checks nothing.
 */
import type { Section } from '../section.js';

export const fuzz: Section = {
  name: 'fuzz',
  title: 'fuzz',
  async run(ctx) {
    ctx.skip('not in main yet (branch chaos-fuzz; issue 7 continues)');
  },
};
