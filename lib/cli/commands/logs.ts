/** Placeholder while `logs` is written (this session). */
import type { Command } from 'commander';

export function registerLogs(_program: Command): void {}
