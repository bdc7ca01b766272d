/** Placeholder while `services` is written (this session). */
import type { Command } from 'commander';

export function registerServices(_program: Command): void {}
