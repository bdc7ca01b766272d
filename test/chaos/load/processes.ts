/**
 * Talking to a group of chaos programs over their stdin/stdout: wait until each has printed a
 * JSON line with a given `event`, send every one a command line. Each program prints one JSON
 * value per line; the last line with an event is the one returned.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Spawned } from '../context.js';

/** The last JSON line of `child` whose `event` is `event`, or null. */
export function lastEvent<T>(child: Spawned, event: string): T | null {
  const lines = child.stdout().trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    if (!line.includes(`"event":"${event}"`)) continue;
    try {
      return JSON.parse(line) as T;
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * Waits until every child has printed `event` (their values, in order). Throws when one exits
 * first, when `ms` pass, or when `signal` aborts, naming the children that did not get there.
 */
export async function awaitEvent<T>(children: readonly Spawned[], event: string, ms: number, signal?: AbortSignal): Promise<T[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const values = children.map((c) => lastEvent<T>(c, event));
    if (values.every((v) => v !== null)) return values as T[];
    const dead = children.find((c, i) => values[i] === null && c.done);
    if (dead) throw new Error(`pid ${dead.pid} exited (${dead.process.exitCode}) before "${event}": ${dead.stderr().trim().slice(-600)}`);
    if (Date.now() > deadline || signal?.aborted) {
      const missing = children.filter((_, i) => values[i] === null).map((c) => c.pid);
      throw new Error(`${missing.length} of ${children.length} processes did not report "${event}" within ${ms} ms (pids ${missing.slice(0, 10).join(', ')})`);
    }
    await sleep(20);
  }
}

export function tell(children: readonly Spawned[], line: string): void {
  for (const c of children) c.process.stdin?.write(`${line}\n`);
}
