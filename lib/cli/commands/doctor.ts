/** Placeholder while `doctor` is written (this session). */
import type { Command } from 'commander';

export function registerDoctor(_program: Command): void {}
