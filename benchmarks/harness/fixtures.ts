/**
 * What the socket questions measure against: a real supervisor in a temporary home (started
 * the way users start it, by connecting), and the baseline servers (raw socket with muxvisor's
 * framing; msgpackr point to point), each in a process of its own.
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
  const keeper = await connect({ home, name: 'bench-harness', handleExit: false, exportEnv: false, supervisor: { idleTimeoutMs: 0, ...settings } })
    .catch((error: unknown) => {
      rmSync(home, { recursive: true, force: true });
      throw error;
    });
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

/** The raw baseline server (raw-server.js): muxvisor's framing and batching, no logic. */
export function startRawServer(): Promise<Running> {
  return startServerProgram('raw-server.js', 'muxvisor-raw-');
}

/** The msgpackr point-to-point server (msgpackr-server.js): msgpackr's streams, nothing else. */
export function startMsgpackrServer(): Promise<Running> {
  return startServerProgram('msgpackr-server.js', 'muxvisor-msgpackr-');
}

/** Starts `node <program> <socket path>` in a temporary directory; it prints a line when it listens. */
async function startServerProgram(program: string, prefix: string): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const socket = join(dir, 'server.sock');
  const child = spawn(process.execPath, [`${programsDir}${program}`, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code, signal) => reject(new Error(`${program} exited with ${signal ?? code} before it listened`)));
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    address: socket,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
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

/** A supervisor and both baseline servers (raw socket, msgpackr point to point), stopped together. */
export async function startSupervisorAndBaselines(): Promise<{ supervisor: Running; raw: Running; msgpackr: Running; stop(): Promise<void> }> {
  const supervisor = await startSupervisor();
  const started: Running[] = [supervisor];
  const stop = async () => {
    for (const running of [...started].reverse()) await running.stop();
  };
  try {
    const raw = await startRawServer();
    started.push(raw);
    const msgpackr = await startMsgpackrServer();
    started.push(msgpackr);
    return { supervisor, raw, msgpackr, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
