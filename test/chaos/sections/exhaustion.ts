/** Placeholder: the exhaustion section is being written (issue 7). */
import type { Section } from '../section.js';

export const exhaustion: Section = {
  name: 'exhaustion',
  title: 'exhaustion',
  async run(ctx) {
    ctx.skip('not written yet');
  },
};
