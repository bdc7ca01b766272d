/** Placeholder while `events` is written (this session). */
import type { Command } from 'commander';

export function registerEvents(_program: Command): void {}
