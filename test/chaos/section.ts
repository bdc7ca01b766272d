/** One part of the chaos suite: a name for `--only`, a title for the summary, and its run. */
import type { SectionContext } from './context.js';

export interface Section {
  name: string;
  title: string;
  /**
   * Runs the section. It records counters, figures and violations on `ctx`; it may throw (that
   * is reported as a violation of its own). It must stop soon after `ctx.signal` aborts. The
   * caller tears down whatever it spawned afterwards.
   */
  run(ctx: SectionContext): Promise<void>;
}
