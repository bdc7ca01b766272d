/**
 * The process table as Linux's /proc tells it, and how a service's tree is found in it.
 *
 * A service's tree is every live process that is (a) in the service's process group, (b) a
 * descendant of one of those by parent pid, or (c) carries the service's marker in its
 * environment (`MUXVISOR_SUPERVISED=<home id>/<service>/<generation>`). (c) is what finds
 * processes that escaped with `setsid` and a double fork: they leave the group and are adopted by
 * init, but keep the environment they were born with.
 *
 * Contract: everything here is synchronous and reads /proc only; zombies (state Z) count as gone,
 * since they hold no resources but a pid and their parent reaps them.
 */
import { readdirSync, readFileSync } from 'node:fs';

export const MARKER_ENV = 'MUXVISOR_SUPERVISED';

export interface ProcEntry {
  pid: number;
  ppid: number;
  pgid: number;
  /** One letter: R, S, D, Z, T, ... */
  state: string;
  /** Start time in clock ticks since boot: with the pid, it names one process across pid reuse. */
  start: number;
}

/** Every process visible in /proc, by pid. Processes that vanish mid-scan are skipped. */
export function processTable(): Map<number, ProcEntry> {
  const table = new Map<number, ProcEntry>();
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const entry = readStat(Number(name));
    if (entry !== null) table.set(entry.pid, entry);
  }
  return table;
}

/** /proc/<pid>/stat, or null when the process is gone. */
export function readStat(pid: number): ProcEntry | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // The command name is in parentheses and may hold spaces and parentheses: cut at the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, state: fields[0] as string, ppid: Number(fields[1]), pgid: Number(fields[2]), start: Number(fields[19]) };
}

/** True when the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const s = readStat(pid);
  return s !== null && s.state !== 'Z' && s.state !== 'X';
}

/** Processes whose environment holds MUXVISOR_SUPERVISED with a value starting with `prefix`. */
export function markedProcesses(prefix: string, table: Map<number, ProcEntry> = processTable()): Map<number, string> {
  const needle = Buffer.from(`${MARKER_ENV}=${prefix}`);
  const found = new Map<number, string>();
  for (const entry of table.values()) {
    if (entry.state === 'Z' || entry.pid === process.pid) continue;
    let env: Buffer;
    try {
      env = readFileSync(`/proc/${entry.pid}/environ`);
    } catch {
      continue; // gone, or another user's
    }
    let at = env.indexOf(needle);
    while (at > 0 && env[at - 1] !== 0) at = env.indexOf(needle, at + 1);
    if (at < 0) continue;
    const end = env.indexOf(0, at);
    found.set(entry.pid, env.toString('utf8', at + MARKER_ENV.length + 1, end < 0 ? env.length : end));
  }
  return found;
}

export interface TreeQuery {
  /** The service's process group (its first process's pid), if it had one. */
  pgid: number | null;
  /** The marker prefix of the service (`<home id>/<name>/`). */
  marker: string | null;
  /** Pids known to be in the tree (e.g. from the last sample) that should still be counted. */
  known?: Iterable<ProcEntry>;
}

/**
 * The live processes of a tree: group members, marked processes, known members that are still
 * the same process, and every descendant of those.
 */
export function treeMembers(query: TreeQuery, table: Map<number, ProcEntry> = processTable(), withMarker = true): Map<number, ProcEntry> {
  const members = new Map<number, ProcEntry>();
  const add = (e: ProcEntry | undefined) => {
    if (e !== undefined && e.state !== 'Z' && e.state !== 'X' && e.pid !== process.pid) members.set(e.pid, e);
  };
  if (query.pgid !== null) for (const e of table.values()) if (e.pgid === query.pgid) add(e);
  if (withMarker && query.marker !== null) for (const pid of markedProcesses(query.marker, table).keys()) add(table.get(pid));
  for (const k of query.known ?? []) {
    const now = table.get(k.pid);
    if (now !== undefined && now.start === k.start) add(now);
  }
  // Descendants: walk children by parent pid until nothing new is found.
  const children = new Map<number, ProcEntry[]>();
  for (const e of table.values()) {
    const list = children.get(e.ppid);
    if (list === undefined) children.set(e.ppid, [e]);
    else list.push(e);
  }
  const queue = [...members.keys()];
  while (queue.length > 0) {
    for (const child of children.get(queue.pop() as number) ?? []) {
      if (members.has(child.pid)) continue;
      add(child);
      if (members.has(child.pid)) queue.push(child.pid);
    }
  }
  return members;
}

/** Sends `signal` to every pid, ignoring processes that are already gone. Returns how many it reached. */
export function signalAll(pids: Iterable<number>, signal: NodeJS.Signals): number {
  let reached = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
      reached++;
    } catch {
      // gone already, or not ours to signal
    }
  }
  return reached;
}

/** Signals a process group; false when it has no member left. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
