/**
 * A temporary home for one test file: a fresh directory, the layout of it, and a cleanup that
 * stops whatever supervisor runs there (SIGTERM, then SIGKILL) before removing it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive as alive, waitForExit } from '../../lib/daemon.js';
import { type HomeLayout, homeLayout } from '../../protocol/index.js';
import { homeMarkerId } from '../../supervisor/services/manager.js';
import { markedProcesses, signalAll } from '../../supervisor/services/proc.js';

/** True while `pid` runs (a zombie counts as gone), and a wait for it to be gone: the library's. */
export { alive, waitForExit };

export interface TempHome {
  home: string;
  layout: HomeLayout;
  /** The pid in the home's pid file, or null when no supervisor runs. */
  supervisorPid(): number | null;
  /** Stops the supervisor (if any) and waits until it is gone. */
  stopSupervisor(signal?: NodeJS.Signals): Promise<void>;
  /** Pids of live processes of this home's services (they carry its marker), by marker. */
  serviceProcesses(): Map<number, string>;
  cleanup(): Promise<void>;
}

export function tempHome(prefix = 'muxvisor-test-'): TempHome {
  const home = mkdtempSync(join(tmpdir(), prefix));
  const layout = homeLayout(home);
  const supervisorPid = () => {
    try {
      const pid = Number(readFileSync(layout.pidPath, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : null;
    } catch {
      return null;
    }
  };
  const stopSupervisor = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const pid = supervisorPid();
    if (pid === null) return;
    process.kill(pid, signal);
    if (!(await waitForExit(pid, 10_000))) {
      process.kill(pid, 'SIGKILL');
      await waitForExit(pid, 5_000);
    }
  };
  const serviceProcesses = () => markedProcesses(`${homeMarkerId(layout.home)}/`);
  return {
    home,
    layout,
    supervisorPid,
    stopSupervisor,
    serviceProcesses,
    async cleanup() {
      await stopSupervisor();
      // A supervisor that had to be killed leaves its services: never let them outlive the test.
      signalAll(serviceProcesses().keys(), 'SIGKILL');
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a truthy value or `ms` pass; throws with `what` on timeout. */
export async function eventually<T>(check: () => T | Promise<T>, what: string, ms = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
