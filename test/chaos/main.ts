/**
 * `npm run chaos`: the chaos, fuzz and soak suite (RELIABILITY.md). It drives real supervisors,
 * real client processes and services in temporary homes, kills them at random moments, speaks
 * garbage to live sockets, exhausts disk and file descriptors, and checks after each part that
 * the promises hold. It prints a summary (or `--json`) and exits 0 when no promise was broken,
 * 1 when any was, 2 on bad arguments.
 *
 * `--quick` is the short variant that `npm test` runs; the full run is what RELIABILITY.md's
 * figures come from.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { type ChaosOptions, distDir, SectionContext } from './context.js';
import { Rng } from './random.js';
import { type ChaosReport, commit, formatSummary, machine, totals } from './report.js';
import type { Section } from './section.js';
import { access } from './sections/access.js';
import { exhaustion } from './sections/exhaustion.js';
import { fuzz } from './sections/fuzz.js';
import { integrity } from './sections/integrity.js';
import { load } from './sections/load.js';

const SECTIONS: readonly Section[] = [integrity, fuzz, access, load, exhaustion];

const FULL = { episodes: 12, fuzzCases: 5_000, soakSeconds: 180, soakClients: 100, connections: 1_000 };
const QUICK = { episodes: 2, fuzzCases: 400, soakSeconds: 8, soakClients: 10, connections: 200 };

const whole = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}, got \`${value}\``);
  return n;
};

const program = new Command('chaos')
  .description('Kill, fuzz, exhaust and soak real supervisors; check that nothing acknowledged is lost.')
  .option('--quick', 'the short variant (about a minute) that npm test runs')
  .option('--seed <n>', 'seed of every random choice (default: a new one, printed)', whole(0))
  .addOption(new Option('--only <sections...>', 'run only these sections').choices(SECTIONS.map((s) => s.name)))
  .option('--episodes <n>', `integrity episodes (default ${FULL.episodes}, quick ${QUICK.episodes})`, whole(1))
  .option('--fuzz-cases <n>', `fuzz cases (default ${FULL.fuzzCases}, quick ${QUICK.fuzzCases})`, whole(1))
  .option('--soak-seconds <n>', `how long the soak publishes (default ${FULL.soakSeconds}, quick ${QUICK.soakSeconds})`, whole(1))
  .option('--soak-clients <n>', `clients publishing during the soak (default ${FULL.soakClients}, quick ${QUICK.soakClients})`, whole(1))
  .option('--connections <n>', `concurrent connections held (default ${FULL.connections}, quick ${QUICK.connections})`, whole(1))
  .option('--json', 'print the report as one JSON document instead of the summary')
  .option('--out <file>', 'also write the JSON report here (a full run writes chaos-results/<time>.json by default)')
  .option('-q, --quiet', 'no progress lines on stderr')
  .option('--keep', 'keep the temporary homes of a section that broke a promise, to look into')
  .addHelpText('after', '\nExamples:\n  npm run chaos                      # the full run (about 12 minutes on 2 cores)\n  npm run chaos -- --quick --seed 7  # a short run, repeatable schedule\n  npm run chaos -- --only fuzz --fuzz-cases 20000')
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));
program.parse();
const flags = program.opts<{ quick?: boolean; seed?: number; only?: string[]; episodes?: number; fuzzCases?: number; soakSeconds?: number; soakClients?: number; connections?: number; json?: boolean; out?: string; quiet?: boolean; keep?: boolean }>();

const scale = flags.quick ? QUICK : FULL;
const options: ChaosOptions = {
  quick: flags.quick === true,
  seed: flags.seed ?? Math.floor(Math.random() * 2 ** 31),
  episodes: flags.episodes ?? scale.episodes,
  fuzzCases: flags.fuzzCases ?? scale.fuzzCases,
  soakSeconds: flags.soakSeconds ?? scale.soakSeconds,
  soakClients: flags.soakClients ?? scale.soakClients,
  connections: flags.connections ?? scale.connections,
  verbose: flags.quiet !== true,
  keep: flags.keep === true,
};

const stop = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stop.signal.aborted) process.exit(130);
    process.stderr.write(`chaos: ${sig}: stopping after clean-up (again to quit at once)\n`);
    stop.abort();
  });
}

const started = Date.now();
const root = new Rng(options.seed);
if (options.verbose) process.stderr.write(`chaos: seed ${options.seed}${options.quick ? ' (quick)' : ''}\n`);
const reports = [];
for (const section of SECTIONS) {
  // Every section gets its own generator whether it runs or not: --only keeps each one's schedule.
  const rng = root.fork();
  if (flags.only && !flags.only.includes(section.name)) continue;
  if (stop.signal.aborted) break;
  const ctx = new SectionContext(options, rng, stop.signal, section.name, section.title);
  const t0 = Date.now();
  try {
    await section.run(ctx);
  } catch (error) {
    ctx.violation('section failed', (error as Error).stack ?? String(error));
  } finally {
    await ctx.teardown();
  }
  ctx.report.durationMs = Date.now() - t0;
  reports.push(ctx.report);
}

const report: ChaosReport = {
  schema: 1,
  seed: options.seed,
  quick: options.quick,
  startedAt: new Date(started).toISOString(),
  durationMs: Date.now() - started,
  machine: machine(),
  commit: commit(join(distDir, '..')),
  sections: reports,
  totals: totals(reports),
};
if (stop.signal.aborted) report.sections.push({ name: 'interrupted', title: 'interrupted', durationMs: 0, skipped: 'stopped by a signal before the end', counters: {}, figures: [], violations: [] });

const json = `${JSON.stringify(report, null, 2)}\n`;
const out = flags.out ?? (options.quick || flags.only ? undefined : join(distDir, '..', 'chaos-results', `${report.startedAt.replace(/[:.]/g, '-')}.json`));
if (out) {
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, json);
}
process.stdout.write(flags.json ? json : `${formatSummary(report)}${out ? `JSON: ${out}\n` : ''}`);
process.exitCode = stop.signal.aborted ? 130 : report.totals.violations === 0 ? 0 : 1;
