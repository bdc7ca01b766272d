/**
 * What the socket questions measure against: a real supervisor in a temporary home (started
 * the way users start it, by connecting), and the raw baseline server in a process of its own.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../lib/index.js';
import { programsDir } from './child.js';

export interface Running {
  /** The home (supervisor) or the socket path (raw server). */
  address: string;
  stop(): Promise<void>;
}

export async function startSupervisor(settings: { serviceSampleMs?: number } = {}): Promise<Running> {
  const home = mkdtempSync(join(tmpdir(), 'muxvisor-bench-'));
  const keeper = await connect({ home, name: 'bench-harness', handleExit: false, exportEnv: false, supervisor: { idleTimeoutMs: 0, ...settings } });
  return {
    address: home,
    async stop() {
      await keeper.request('shutdown').catch(() => {});
      await keeper.close().catch(() => {});
      const pid = keeper.server.pid;
      for (let i = 0; i < 500; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}

export async function startRawServer(): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-raw-'));
  const socket = join(dir, 'raw.sock');
  const child = spawn(process.execPath, [`${programsDir}raw-server.js`, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`raw server exited with ${code}`)));
  });
  return {
    address: socket,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A supervisor and the raw baseline server side by side, stopped together. */
export async function startSupervisorAndBaseline(): Promise<{ supervisor: Running; raw: Running; stop(): Promise<void> }> {
  const supervisor = await startSupervisor();
  const raw = await startRawServer();
  return {
    supervisor,
    raw,
    async stop() {
      await supervisor.stop();
      await raw.stop();
    },
  };
}
