/** Placeholder while `ping` is written (this session). */
import type { Command } from 'commander';

export function registerPing(_program: Command): void {}
