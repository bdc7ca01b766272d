/**
 * What every file and directory in a home must look like: the mode and type of each path
 * pattern, and where that is promised. PROTOCOL.md section 12 documents the runtime files, the
 * run directories and the logs; `muxvisor doctor` (CLI.md) promises the home and the data
 * directories are created 0700. The rest (a run's files, everything under services/) is not
 * documented yet: the rule chosen here is the same as for its neighbours, private to the user
 * (directories 0700, files 0600), because they hold run data, commands, environments and output.
 *
 * A path that matches no rule is a violation of its own: a new kind of file must be given a
 * mode here (and in the documentation) before it ships.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join, relative } from 'node:path';

export type EntryType = 'dir' | 'file' | 'socket';

export interface ModeRule {
  /** Matched against the path relative to the home ('' is the home itself), '/'-separated. */
  pattern: RegExp;
  type: EntryType;
  mode: number;
  /** Where the mode is promised, or why it was chosen when it is not documented. */
  source: string;
}

export const HOME_RULES: readonly ModeRule[] = [
  { pattern: /^$/, type: 'dir', mode: 0o700, source: 'CLI.md doctor: the home is created mode 700' },
  { pattern: /^run$/, type: 'dir', mode: 0o700, source: 'PROTOCOL.md §12' },
  { pattern: /^run\/muxvisor\.sock$/, type: 'socket', mode: 0o600, source: 'PROTOCOL.md §12' },
  { pattern: /^run\/token$/, type: 'file', mode: 0o600, source: 'PROTOCOL.md §12' },
  { pattern: /^run\/muxvisor\.pid$/, type: 'file', mode: 0o600, source: 'PROTOCOL.md §12' },
  { pattern: /^runs$/, type: 'dir', mode: 0o700, source: 'CLI.md doctor: data directories 700' },
  { pattern: /^runs\/[^/]+$/, type: 'dir', mode: 0o700, source: 'PROTOCOL.md §12' },
  { pattern: /^runs\/[^/]+\/run\.mvlog$/, type: 'file', mode: 0o600, source: 'not documented: run data, private' },
  { pattern: /^runs\/[^/]+\/meta\.json$/, type: 'file', mode: 0o600, source: 'not documented: run metadata, private' },
  { pattern: /^logs$/, type: 'dir', mode: 0o700, source: 'CLI.md doctor: data directories 700' },
  { pattern: /^logs\/supervisor\.log$/, type: 'file', mode: 0o600, source: 'PROTOCOL.md §12' },
  { pattern: /^logs\/daemon\.out$/, type: 'file', mode: 0o600, source: 'PROTOCOL.md §12' },
  { pattern: /^services$/, type: 'dir', mode: 0o700, source: 'not documented: service definitions and output, private' },
  { pattern: /^services\/_state\.json(\.bak)?$/, type: 'file', mode: 0o600, source: 'not documented: definitions (commands, env), private' },
  { pattern: /^services\/[^/_][^/]*$/, type: 'dir', mode: 0o700, source: 'not documented: one service, private' },
  { pattern: /^services\/[^/_][^/]*\/(stdout|stderr)\.log(\.\d+)?$/, type: 'file', mode: 0o600, source: 'not documented: service output, private' },
  { pattern: /^services\/[^/_][^/]*\/launch\.json$/, type: 'file', mode: 0o600, source: 'not documented: pid and start time of a live service, private' },
];

export interface Entry {
  /** Relative to the walked root, '/'-separated; '' for the root. */
  rel: string;
  path: string;
  type: EntryType | 'symlink' | 'other';
  mode: number;
  uid: number;
}

function typeOf(s: Stats): Entry['type'] {
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isDirectory()) return 'dir';
  if (s.isFile()) return 'file';
  if (s.isSocket()) return 'socket';
  return 'other';
}

/**
 * Every entry under `root`, the root included, without following symlinks. An entry that
 * vanishes while walking (a temporary file renamed away) is left out.
 */
export function walk(root: string): Entry[] {
  const out: Entry[] = [];
  const visit = (path: string) => {
    let s: Stats;
    try {
      s = lstatSync(path);
    } catch {
      return;
    }
    const entry: Entry = { rel: relative(root, path).split('\\').join('/'), path, type: typeOf(s), mode: s.mode & 0o7777, uid: s.uid };
    out.push(entry);
    if (entry.type !== 'dir') return;
    let names: string[] = [];
    try {
      names = readdirSync(path);
    } catch {
      return;
    }
    for (const name of names.sort()) visit(join(path, name));
  };
  visit(root);
  return out;
}

/** What is wrong with `entry` under `rules`: null when a rule matches it exactly. */
export function modeProblem(entry: Entry, rules: readonly ModeRule[], uid: number): string | null {
  const rule = rules.find((r) => r.pattern.test(entry.rel));
  const where = entry.rel === '' ? 'the home' : entry.rel;
  if (rule === undefined) return `${where} (${entry.type}, mode ${octal(entry.mode)}) is not a file the documentation knows: give it a mode and document it`;
  if (entry.type !== rule.type) return `${where} is a ${entry.type}, expected a ${rule.type} (${rule.source})`;
  if (entry.mode !== rule.mode) return `${where} has mode ${octal(entry.mode)}, expected ${octal(rule.mode)} (${rule.source})`;
  if (entry.uid !== uid) return `${where} is owned by uid ${entry.uid}, expected ${uid} (the supervisor's user)`;
  return null;
}

export function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}
