/**
 * Stopping a whole process tree: the stop signal to the group (and to members that escaped it),
 * a wait of `timeoutMs`, then SIGKILL to everything left (tree-kill for the descendants of a live
 * root, the group, every marked escapee), and a check that nothing is left.
 *
 * Contract: resolves only when no process of the tree is alive, or after `killGraceMs` more with
 * the pids that survived SIGKILL (a process stuck in the kernel); never rejects.
 */
import treeKill from 'tree-kill';
import { type ProcEntry, signalAll, signalGroup, treeMembers, type TreeQuery } from './proc.js';

export interface TerminateOptions extends TreeQuery {
  /** The first process, while it has not exited (its descendants are found through it). */
  root: number | null;
  signal: NodeJS.Signals;
  /** Time between the stop signal and SIGKILL; 0 kills at once. */
  timeoutMs: number;
  /** How long to wait for SIGKILL to take effect. @default 5000 */
  killGraceMs?: number;
}

export interface TerminateResult {
  /** Processes the tree had when the stop began. */
  found: number;
  /** Processes still alive at the stop timeout, sent SIGKILL. */
  killed: number;
  /** Processes alive after SIGKILL and the grace time (normally none). */
  remaining: number[];
  durationMs: number;
}

export async function terminateTree(options: TerminateOptions): Promise<TerminateResult> {
  const began = Date.now();
  let members = treeMembers(options);
  const found = members.size;
  if (found === 0) return { found, killed: 0, remaining: [], durationMs: Date.now() - began };
  if (options.pgid !== null) signalGroup(options.pgid, options.signal);
  signalAll([...members.values()].filter((e) => e.pgid !== options.pgid).map((e) => e.pid), options.signal);
  members = await waitEmpty(options, members, options.timeoutMs);
  let killed = 0;
  if (members.size > 0) {
    killed = members.size;
    if (options.root !== null && members.has(options.root)) await new Promise<void>((resolve) => treeKill(options.root as number, 'SIGKILL', () => resolve()));
    if (options.pgid !== null) signalGroup(options.pgid, 'SIGKILL');
    signalAll(treeMembers({ ...options, known: members.values() }).keys(), 'SIGKILL');
    members = await waitEmpty(options, members, options.killGraceMs ?? 5_000);
  }
  return { found, killed, remaining: [...members.keys()], durationMs: Date.now() - began };
}

/** Polls the tree (cheaply: known members, the group and descendants; the marker scan now and then). */
async function waitEmpty(query: TreeQuery, members: Map<number, ProcEntry>, timeoutMs: number): Promise<Map<number, ProcEntry>> {
  const deadline = Date.now() + timeoutMs;
  let pause = 5;
  let polls = 0;
  for (;;) {
    const full = polls++ % 8 === 7 || Date.now() >= deadline;
    members = treeMembers({ ...query, known: members.values() }, undefined, full);
    if (members.size === 0) {
      // Confirm with a marker scan: an escapee may have appeared since the last full scan.
      members = treeMembers({ ...query, known: [] });
      if (members.size === 0) return members;
    }
    if (Date.now() >= deadline) return members;
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, Math.max(1, deadline - Date.now()))));
    pause = Math.min(100, pause * 2);
  }
}
