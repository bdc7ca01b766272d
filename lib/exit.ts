/**
 * What the library does when its process ends without closing its clients:
 * - on 'exit' (process.exit(), an uncaught exception, the end of the event loop) every byte a
 *   client had accepted is written to the supervisor synchronously, so no record handed over in
 *   an earlier turn is lost; the supervisor then sees the connection close and finishes the runs
 *   as crashed;
 * - on SIGINT, SIGTERM or SIGHUP, if no other listener handles the signal (so the process is about
 *   to die of it), every open run is finished as `interrupted`, the bytes are flushed the same
 *   way, and the signal is raised again so the process ends as it would have without us.
 * Listeners are installed only while a client that wants this is open.
 */

export interface ExitParticipant {
  /** Write everything not yet in the kernel, synchronously. */
  flushSync(): void;
  /** Queue FINISH (interrupted) for the open runs; flushSync follows. */
  interrupted(signal: NodeJS.Signals): void;
}

const participants = new Set<ExitParticipant>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let installed = false;

function onExit(): void {
  for (const p of participants) p.flushSync();
}

function onSignal(signal: NodeJS.Signals): void {
  // Somebody else handles this signal: the process is not necessarily ending; leave it to them.
  if (process.listenerCount(signal) > 1) return;
  for (const p of participants) {
    p.interrupted(signal);
    p.flushSync();
  }
  uninstall();
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', onExit);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', onExit);
  for (const s of SIGNALS) process.off(s, onSignal);
}

export function registerExit(p: ExitParticipant): void {
  participants.add(p);
  install();
}

export function unregisterExit(p: ExitParticipant): void {
  participants.delete(p);
  if (participants.size === 0) uninstall();
}
