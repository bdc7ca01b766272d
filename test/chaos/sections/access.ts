/** Placeholder: the access section is being written (issue 7). */
import type { Section } from '../section.js';

export const access: Section = {
  name: 'access',
  title: 'access',
  async run(ctx) {
    ctx.skip('not written yet');
  },
};
