#!/usr/bin/env node
/**
 * The `muxvisor` command. A client like any other: it goes through lib/, never around it.
 * Commands so far: `bench` (the benchmark harness). Diagnostics arrive with the supervisor.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Command } from 'commander';
import { PACKAGE_ROOT, VERSION } from '../../protocol/version.js';

const program = new Command('muxvisor')
  .description('Local IPC and process supervision for experiment tooling.')
  .version(VERSION, '-v, --version');

program
  .command('bench')
  .description('run the benchmark harness (all its options pass through; try `muxvisor bench --help`)')
  .helpOption(false)
  .allowUnknownOption()
  .argument('[args...]')
  .action((args: string[]) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/benchmarks/run.js'), ...args], { stdio: 'inherit' });
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  });

program.parse();
