/**
 * The benchmark harness: `npm run bench [-- <question>...] [--quick] [--json <file>]`.
 * Prints a progress line while it runs (stderr), a table at the end (stdout), and writes every
 * figure with the machine and commit to a JSON file.
 */
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { questions } from './questions/index.js';
import { runQuestion, type CaseResult, type Progress } from './harness/runner.js';
import { describeMachine, formatTable, writeReport } from './harness/report.js';

const root = resolve(fileURLToPath(import.meta.url), '../../..');

const count = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number, got \`${value}\``);
  return n;
};

const program = new Command('bench')
  .description('Measure muxvisor beside a baseline taken in the same run.')
  .argument('[questions...]', `questions to ask (default: all): ${questions.map((q) => q.name).join(', ')}`)
  .option('--quick', 'brief repetitions and small workloads: checks the harness, not the speed', false)
  .option('--repetitions <n>', 'counted repetitions per variant (default: 7, quick: 2)', count)
  .option('--warmups <n>', 'uncounted repetitions first (default: 1)', count)
  .option('--json <file>', 'where to write the results (default: bench-results/bench-<time>.json)')
  .option('--list', 'list the questions and exit', false)
  .addHelpText('after', '\nExamples:\n  npm run bench\n  npm run bench -- codec --repetitions 11\n  npm run bench -- --quick --json /tmp/bench.json');

program.parse();
const opts = program.opts<{ quick: boolean; repetitions?: number; warmups?: number; json?: string; list: boolean }>();

if (opts.list) {
  for (const q of questions) console.log(`${q.name.padEnd(16)} ${q.title}`);
  process.exit(0);
}

const wanted: string[] = program.args;
const unknown = wanted.filter((name) => !questions.some((q) => q.name === name));
if (unknown.length > 0) {
  console.error(`unknown question ${unknown.map((n) => `\`${n}\``).join(', ')} (known: ${questions.map((q) => q.name).join(', ')})`);
  process.exit(2);
}
const selected = wanted.length === 0 ? questions : questions.filter((q) => wanted.includes(q.name));
const repetitions = opts.repetitions ?? (opts.quick ? 2 : 7);
const warmups = opts.warmups ?? 1;
const startedAt = new Date();
const jsonPath = resolve(opts.json ?? `${root}/bench-results/bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);

const progress = (p: Progress) => {
  const what = p.repetition === 0 ? 'warm-up' : `rep ${p.repetition}/${p.of}`;
  const line = `[${p.question}] ${p.case}: ${p.variant} (${what})`;
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${line}`);
  else if (p.repetition <= 1) process.stderr.write(`${line}\n`);
};

const results: CaseResult[] = [];
for (const question of selected) {
  results.push(...(await runQuestion(question, { quick: opts.quick, repetitions, warmups, onProgress: progress })));
}
if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');

writeReport(jsonPath, {
  tool: 'muxvisor-bench', schema: 1, startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(),
  quick: opts.quick, repetitions, warmups, machine: describeMachine(root), results,
});
console.log(formatTable(results));
console.log(`${repetitions} repetitions per variant after ${warmups} warm-up; ratio = muxvisor median / that baseline's median.`);
console.log(`results: ${jsonPath}`);
