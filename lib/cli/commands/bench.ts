/** `muxvisor bench`: the benchmark harness, as `npm run bench` runs it. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PACKAGE_ROOT } from '../../../protocol/version.js';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('run the benchmark harness (all its options pass through; try `muxvisor bench --help`)')
    .helpOption(false)
    .allowUnknownOption()
    .argument('[args...]')
    .action((args: string[]) => new Promise<void>((resolve) => {
      const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/benchmarks/run.js'), ...args], { stdio: 'inherit' });
      child.on('exit', (code, signal) => {
        process.exitCode = code ?? (signal ? 1 : 0);
        resolve();
      });
    }));
}
