/**
 * Runs questions: warm-up first (not counted), then repetitions that rotate which variant goes
 * first, so that drift in the machine (another tenant, a thermal step) falls on all alike.
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
  /** The case's further baselines, in its order, each with the contender's median over its own. */
  otherBaselines?: Array<{ label: string } & Summary & { ratio?: number }>;
}

export async function runQuestion(question: Question, options: RunOptions): Promise<CaseResult[]> {
  const setup = await question.setup({ quick: options.quick });
  const results: CaseResult[] = [];
  try {
    for (const c of setup.cases) {
      const samples = await measureCase(question.name, c, options);
      const metrics: Metric[] = c.metrics ?? [{ key: 'value', unit: c.unit, higherIsBetter: c.higherIsBetter }];
      for (const m of metrics) {
        const side = (label: string, of: Sample[]) => ({ label, ...summarize(of.map((s) => figure(s, m.key))) });
        const contender = side(c.contender.label, samples.contender);
        const ratio = (baseline: Summary) => (baseline.median === 0 ? undefined : contender.median / baseline.median);
        const result: CaseResult = {
          question: question.name, title: question.title, workload: setup.workload,
          case: c.metrics ? `${c.name} ${m.key}` : c.name, unit: m.unit, higherIsBetter: m.higherIsBetter, contender,
        };
        if (c.baseline) {
          result.baseline = side(c.baseline.label, samples.baseline);
          result.ratio = ratio(result.baseline);
        }
        if (c.otherBaselines?.length) {
          result.otherBaselines = c.otherBaselines.map((variant, i) => {
            const other = side(variant.label, samples.others[i] as Sample[]);
            return { ...other, ratio: ratio(other) };
          });
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

type Role = 'contender' | 'baseline' | number;

async function measureCase(question: string, c: Case, options: RunOptions) {
  const variants: Array<[Role, Variant]> = [['contender', c.contender]];
  if (c.baseline) variants.push(['baseline', c.baseline]);
  (c.otherBaselines ?? []).forEach((variant, i) => variants.push([i, variant]));
  const samples = { contender: [] as Sample[], baseline: [] as Sample[], others: (c.otherBaselines ?? []).map(() => [] as Sample[]) };
  const total = options.warmups + options.repetitions;
  for (let rep = 0; rep < total; rep++) {
    const counted = rep >= options.warmups;
    // Each repetition starts one variant further on, so that each goes first in turn; with one
    // baseline: baseline first, then contender first, and so on.
    const first = (rep + 1) % variants.length;
    const order = [...variants.slice(first), ...variants.slice(0, first)];
    for (const [role, variant] of order) {
      options.onProgress?.({
        question, case: c.name, variant: variant.label,
        repetition: counted ? rep - options.warmups + 1 : 0, of: options.repetitions,
      });
      const value = await variant.run();
      if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`${question}/${c.name}: ${variant.label} measured ${value}`);
      if (counted) (typeof role === 'number' ? (samples.others[role] as Sample[]) : samples[role]).push(value);
    }
  }
  return samples;
}
