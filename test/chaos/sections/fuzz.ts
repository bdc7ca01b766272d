/** Placeholder: the fuzz section is being written (issue 7). */
import type { Section } from '../section.js';

export const fuzz: Section = {
  name: 'fuzz',
  title: 'fuzz',
  async run(ctx) {
    ctx.skip('not written yet');
  },
};
