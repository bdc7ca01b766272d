/**
 * Runs questions: warm-up first (not counted), then repetitions that alternate which variant goes
 * first, so that drift in the machine (another tenant, a thermal step) falls on both alike.
 */
import type { Case, Metric, Question, Sample, Variant } from './question.js';
import { summarize, type Summary } from './stats.js';

export interface RunOptions {
  quick: boolean;
  /** Counted repetitions per variant. */
  repetitions: number;
  /** Uncounted repetitions per variant before them. */
  warmups: number;
  /** Called before every repetition, for a progress line. */
  onProgress?(progress: Progress): void;
}

export interface Progress {
  question: string;
  case: string;
  variant: string;
  repetition: number;
  of: number;
}

export interface CaseResult {
  question: string;
  title: string;
  workload: string;
  case: string;
  unit: string;
  higherIsBetter: boolean;
  contender: { label: string } & Summary;
  baseline?: { label: string } & Summary;
  /** Contender's median over the baseline's: above 1 means more of the unit than the baseline. */
  ratio?: number;
}

export async function runQuestion(question: Question, options: RunOptions): Promise<CaseResult[]> {
  const setup = await question.setup({ quick: options.quick });
  const results: CaseResult[] = [];
  try {
    for (const c of setup.cases) {
      const samples = await measureCase(question.name, c, options);
      const metrics: Metric[] = c.metrics ?? [{ key: 'value', unit: c.unit, higherIsBetter: c.higherIsBetter }];
      for (const m of metrics) {
        const contender = { label: c.contender.label, ...summarize(samples.contender.map((s) => figure(s, m.key))) };
        const result: CaseResult = {
          question: question.name, title: question.title, workload: setup.workload,
          case: c.metrics ? `${c.name} ${m.key}` : c.name, unit: m.unit, higherIsBetter: m.higherIsBetter, contender,
        };
        if (c.baseline) {
          result.baseline = { label: c.baseline.label, ...summarize(samples.baseline.map((s) => figure(s, m.key))) };
          result.ratio = result.baseline.median === 0 ? undefined : contender.median / result.baseline.median;
        }
        results.push(result);
      }
    }
  } finally {
    await setup.teardown?.();
  }
  return results;
}

function figure(sample: Sample, key: string): number {
  const value = typeof sample === 'number' ? sample : sample[key];
  if (value === undefined || !Number.isFinite(value)) throw new Error(`measurement has no finite \`${key}\`: ${JSON.stringify(sample)}`);
  return value;
}

async function measureCase(question: string, c: Case, options: RunOptions) {
  const samples = { contender: [] as Sample[], baseline: [] as Sample[] };
  const total = options.warmups + options.repetitions;
  for (let rep = 0; rep < total; rep++) {
    const counted = rep >= options.warmups;
    const order: Array<['contender' | 'baseline', Variant]> = [['contender', c.contender]];
    if (c.baseline) order[rep % 2 === 0 ? 'unshift' : 'push'](['baseline', c.baseline]);
    for (const [role, variant] of order) {
      options.onProgress?.({
        question, case: c.name, variant: variant.label,
        repetition: counted ? rep - options.warmups + 1 : 0, of: options.repetitions,
      });
      const value = await variant.run();
      if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`${question}/${c.name}: ${variant.label} measured ${value}`);
      if (counted) samples[role].push(value);
    }
  }
  return samples;
}
