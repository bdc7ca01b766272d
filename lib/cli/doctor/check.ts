/**
 * What `muxvisor doctor` reports, and the small helpers its checks share. A check is one line of
 * the report: a status, what was seen (with the numbers), and, for a problem, one command a
 * person can paste to fix it. Checks only look: they never change the home or start anything.
 */
import { accessSync, constants, type Stats, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { defaultHome } from '../../../protocol/index.js';

/** `fail` makes the doctor exit 7; `warn` is printed but exits 0; `skip`: nothing to check. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface Check {
  /** Stable: scripts pick a check out of `--json` by it. */
  id: string;
  title: string;
  status: CheckStatus;
  /** What was seen, with the numbers: modes, sizes, pids, versions. */
  detail: string;
  /** One command to paste (a `warn` or `fail` has one when a fix is known), else null. */
  fix: string | null;
}

export function check(id: string, title: string, status: CheckStatus, detail: string, fix: string | null = null): Check {
  return { id, title, status, detail, fix };
}

/** Words quoted for a POSIX shell, and ` --home <dir>` for suggested commands (context.ts). */
import { shellQuote as sh } from '../context.js';

export { homeFlag as homeOption } from '../context.js';
export { sh };

/** The permission bits as `755`. */
export function octal(stats: Stats): string {
  return (stats.mode & 0o777).toString(8).padStart(3, '0');
}

/** This process's uid (null where the platform has none) and user name, for `chown` fixes. */
export function me(): { uid: number | null; user: string } {
  const uid = process.getuid?.() ?? null;
  let user = process.env.USER ?? String(uid ?? 'me');
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry: $USER or the uid will do
  }
  return { uid, user };
}

export function ownedByMe(stats: Stats): boolean {
  const { uid } = me();
  return uid === null || stats.uid === uid;
}

/** `sudo chown -R <me> <path>`: the fix for anything in the home owned by someone else. */
export function chownFix(path: string): string {
  return `sudo chown -R ${sh(me().user)} ${sh(path)}`;
}

/** The stats of `path` (following symlinks), or null when it does not exist. Other errors throw. */
export function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw error;
  }
}

/** `path` itself or its nearest ancestor that exists. */
export function nearestExisting(path: string): string {
  for (let p = path; ; p = dirname(p)) {
    if (statOrNull(p) !== null || dirname(p) === p) return p;
  }
}

/** True when this process may create entries in the directory `dir`. */
export function writableDir(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The shortest default home this user could switch to: `$XDG_STATE_HOME/muxvisor` or `~/.local/state/muxvisor`. */
export function defaultHomeWithoutEnv(): string {
  const env = { ...process.env };
  delete env.MUXVISOR_HOME;
  return defaultHome(env);
}
