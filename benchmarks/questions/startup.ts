/**
 * startup: how long `connect()` takes, measured inside a fresh client process.
 * - cold: into a home where no supervisor runs, so that the call starts one (spawn the daemon,
 *   lock, token, listen, ready, connect, HELLO/WELCOME). Every repetition has a new home and stops
 *   its supervisor. Baseline: spawning a plain Node process that listens on a Unix socket
 *   (echo-server.js), connecting to it and one round trip: the same "start a server process and
 *   reach it", with no muxvisor in it. `bootMs` (Node start-up and the import before the call)
 *   is reported beside it and not included.
 * - warm: connect() to a running supervisor (connect + handshake), then close, many times in one
 *   process; p50/p99 of the connect. Baseline: a plain connection to the raw server plus one PING.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSupervisorOf, pidFileValue, processAlive, waitForExit } from '../../lib/daemon.js';
import { homeLayout } from '../../protocol/index.js';
import type { ColdResult } from '../programs/startup-client.js';
import { runProgram } from '../harness/child.js';
import { startRawServer, startSupervisor } from '../harness/fixtures.js';
import type { Metric, Question } from '../harness/question.js';

const coldMetrics: Metric[] = [
  { key: 'ms', unit: 'ms', higherIsBetter: false },
  { key: 'bootMs', unit: 'ms', higherIsBetter: false },
];
const warmMetrics: Metric[] = ['p50', 'p99'].map((key) => ({ key, unit: 'ms', higherIsBetter: false }));

export const startup: Question = {
  name: 'startup',
  title: 'connect(): starting the supervisor (cold), and reaching a running one (warm)',
  async setup({ quick }) {
    const n = quick ? 50 : 500;
    const supervisor = await startSupervisor();
    const raw = await startRawServer().catch(async (error: unknown) => {
      await supervisor.stop();
      throw error;
    });
    return {
      workload: `cold: one start per repetition, fresh home; warm: ${n} connects (+ 20 untimed), one at a time`,
      cases: [
        {
          name: 'cold connect', unit: 'ms', higherIsBetter: false, metrics: coldMetrics,
          contender: { label: 'muxvisor connect(), starts the supervisor', run: () => inTempDir((dir) => coldStart(join(dir, 'home'))) },
          baseline: {
            label: 'spawn a Node echo server, connect, one round trip',
            run: () => inTempDir(async (dir) => pick(await runProgram<ColdResult>('startup-client.js', { task: 'cold-raw', socket: join(dir, 'echo.sock') }, 60_000))),
          },
        },
        {
          name: 'warm connect', unit: 'ms', higherIsBetter: false, metrics: warmMetrics,
          contender: { label: 'muxvisor connect() + handshake', run: () => runProgram('startup-client.js', { task: 'warm', home: supervisor.address, n }) },
          baseline: { label: 'plain socket connect + one PING', run: () => runProgram('startup-client.js', { task: 'warm-raw', socket: raw.address, n }) },
        },
      ],
      async teardown() {
        await raw.stop();
        await supervisor.stop();
      },
    };
  },
};

/** One cold start into `home`; whatever happens, no supervisor of that home outlives it. */
async function coldStart(home: string): Promise<Record<string, number>> {
  let reported: number | null = null;
  try {
    const result = await runProgram<ColdResult>('startup-client.js', { task: 'cold', home }, 60_000);
    reported = result.pid ?? null;
    return pick(result);
  } finally {
    for (const pid of new Set([reported, pidFileValue(homeLayout(home))])) {
      if (pid !== null && isSupervisorOf(pid, home) !== false) await stopPid(pid, pid === reported);
    }
  }
}

/** Waits for `pid` to go: a while if it was asked to shut down, then SIGTERM, then SIGKILL. */
async function stopPid(pid: number, askedToStop: boolean): Promise<void> {
  if (askedToStop && (await waitForExit(pid, 5_000))) return;
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    if (!processAlive(pid)) return;
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    if (await waitForExit(pid, 10_000)) return;
  }
}

async function inTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-startup-'));
  try {
    return await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pick = (r: ColdResult) => ({ ms: r.ms, bootMs: r.bootMs });
