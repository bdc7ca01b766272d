/**
 * What a benchmark question is. A question answers one thing ("how many frames per second does
 * the codec move?") with one or more cases; each case measures a contender beside a baseline
 * (and any further baselines) in the same process and run, so the ratio between them is what
 * carries across machines.
 */

/** One repetition's figure, or several figures from the same measurement (keyed by metric). */
export type Sample = number | Readonly<Record<string, number>>;

export interface Variant {
  /** Shown in the table: "muxvisor codec", "raw copy". */
  label: string;
  /** Runs one repetition and returns its figure(s) in the case's unit(s). */
  run(): Sample | Promise<Sample>;
}

/** One figure a case reports, when it reports several (latency percentiles). */
export interface Metric {
  /** The key in each Sample: "p50". */
  key: string;
  unit: string;
  higherIsBetter: boolean;
}

export interface Case {
  /** Short name, unique within its question: "encode". */
  name: string;
  /** The figure's unit: "frames/s" (for a case with a single figure). */
  unit: string;
  /** True when more is better (throughput), false when less is (latency). */
  higherIsBetter: boolean;
  /** Several figures from each run; absent for a single figure (a number). */
  metrics?: Metric[];
  contender: Variant;
  /** What the contender is measured against; absent only where nothing natural exists. */
  baseline?: Variant;
  /**
   * Further baselines, each measured in the same rotation as the contender and `baseline` and
   * reported with its own ratio ("msgpackr point to point" beside "raw socket").
   */
  otherBaselines?: Variant[];
}

export interface QuestionContext {
  /** Brief repetitions and small workloads: checks that the harness works, not how fast. */
  quick: boolean;
}

export interface Question {
  /** Selects the question on the command line: `npm run bench -- codec`. */
  name: string;
  /** One line: what it answers. */
  title: string;
  /** Builds the cases (and any workload they share); `teardown` releases what it made. */
  setup(context: QuestionContext): Promise<QuestionSetup> | QuestionSetup;
}

export interface QuestionSetup {
  /** What the workload is, in a line: "1,000,000 records of 104 B". */
  workload: string;
  cases: Case[];
  teardown?(): Promise<void> | void;
}
