/**
 * The package's own version and root directory, read from package.json wherever this file runs
 * from (source or dist/). Both sides use it: the supervisor reports it in WELCOME, and a client
 * compares it with its own to spot a supervisor of another version.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding muxvisor's package.json. */
export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

export const VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate) && (JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string }).name === 'muxvisor') return dir;
    if (dirname(dir) === dir) throw new Error(`muxvisor's package.json not found above ${from}`);
  }
}
