/**
 * The daemon's file-creation mask. The supervisor process runs with umask 0077, so that nothing
 * it creates in the home (logs, run data, service state) is ever readable by others, whatever the
 * code creating it asks for. Services are the user's programs, not the supervisor's files: they
 * get the umask the supervisor was started with, as if started from the user's shell.
 *
 * Main thread only (process.umask cannot be set from a worker thread).
 */

/** The umask the process had before `makePrivate`; null while it was never called (in-process use). */
let inherited: number | null = null;

/** Sets the process umask to 0077, remembering the one it replaces. Idempotent. */
export function makePrivate(): void {
  const previous = process.umask(0o077);
  inherited ??= previous;
}

/**
 * Runs `spawn` (synchronous: the child is forked inside it) with the umask the supervisor was
 * started with, and restores 0077 before returning. Nothing else runs on this thread meanwhile.
 */
export function withInheritedUmask<T>(spawn: () => T): T {
  if (inherited === null) return spawn();
  const own = process.umask(inherited);
  try {
    return spawn();
  } finally {
    process.umask(own);
  }
}
