/** Placeholder: the integrity section is being written (issue 7). */
import type { Section } from '../section.js';

export const integrity: Section = {
  name: 'integrity',
  title: 'integrity',
  async run(ctx) {
    ctx.skip('not written yet');
  },
};
