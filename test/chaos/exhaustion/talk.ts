/**
 * Talking to the section's child programs: they print one JSON object per line (`{"event": ...}`)
 * and take one command per line on stdin.
 */
import type { Spawned } from '../context.js';

export type ChildEvent = Record<string, unknown> & { event: string };

/** Every whole JSON line the child printed so far. */
export function events(child: Spawned): ChildEvent[] {
  const out: ChildEvent[] = [];
  for (const line of child.stdout().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as ChildEvent);
    } catch {
      // a line still being written
    }
  }
  return out;
}

/**
 * The child's `nth` (0-based) event named `name`, once printed. Throws when the child exits
 * without it, `timeoutMs` pass, or `signal` aborts.
 */
export async function waitEvent(child: Spawned, name: string, timeoutMs: number, signal?: AbortSignal, nth = 0): Promise<ChildEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = events(child).filter((e) => e.event === name)[nth];
    if (found !== undefined) return found;
    const gone = child.done;
    if (gone || Date.now() > deadline || signal?.aborted) {
      const why = gone ? `it exited (${child.process.exitCode ?? child.process.signalCode})` : signal?.aborted ? 'the run was aborted' : `${timeoutMs} ms passed`;
      throw new Error(`pid ${child.pid} printed no "${name}" event: ${why}; stderr: ${child.stderr().slice(-800)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Writes one command line to the child's stdin (ignored when it has gone). */
export function tell(child: Spawned, line: string): void {
  if (child.process.stdin?.writable) child.process.stdin.write(`${line}\n`);
}

/** Waits up to `ms` for the child to exit; SIGKILLs it after that. */
export async function ended(child: Spawned, ms = 10_000): Promise<void> {
  const timer = setTimeout(() => child.process.kill('SIGKILL'), ms);
  await child.exited;
  clearTimeout(timer);
}
