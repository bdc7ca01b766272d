/** Placeholder while `runs` is written (this session). */
import type { Command } from 'commander';

export function registerRuns(_program: Command): void {}
