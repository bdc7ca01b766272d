/** Placeholder: the load section is being written (issue 7). */
import type { Section } from '../section.js';

export const load: Section = {
  name: 'load',
  title: 'load',
  async run(ctx) {
    ctx.skip('not written yet');
  },
};
