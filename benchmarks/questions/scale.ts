/**
 * scale: what the supervisor costs with many runs or many clients at once. Every repetition has a
 * supervisor (and raw server) of its own, so that memory one repetition grew is not counted again.
 * - runs open: one client opens N runs at once (all OPENs in flight) and keeps them open; the
 *   supervisor's RSS with them open (its `status`) and how long the N opens took. No baseline:
 *   nothing else holds a run. The supervisor's own RSS is the reference instead: idle (before
 *   any run), what its worker threads add (they start with the first runs; the client starts
 *   them before the N), and KB per run over the RSS with the threads running and no run open.
 * - idle connections: N handshaken connections from a few holder processes sit idle while a
 *   separate client measures PING round trips; the supervisor's RSS (by pid) and the PING
 *   latency. Baseline: the raw server with N idle plain sockets, and the same client's echo.
 * Each server needs a descriptor per connection or run: setup checks `ulimit -n` (inherited by the
 * servers it starts) is at least N + 200, and says how to raise it if not.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homeLayout } from '../../protocol/index.js';
import { pidFileValue } from '../../lib/daemon.js';
import type { OpenManyResult } from '../programs/scale-client.js';
import type { Percentiles } from '../programs/measure.js';
import { runProgram } from '../harness/child.js';
import { startSupervisor } from '../harness/fixtures.js';
import { type Held, rssOf, startAllHeld, startHeld } from '../harness/held.js';
import type { Metric, Question } from '../harness/question.js';

const MB = 1024 * 1024;
/** Holder processes for the idle connections: 100 connections per Node process is light. */
const HOLDERS = 10;

export const scale: Question = {
  name: 'scale',
  title: 'many runs open, many idle clients: supervisor memory, and latency beside them',
  setup({ quick }) {
    const runs = quick ? 50 : 1_000;
    const connections = quick ? 50 : 1_000;
    const holders = quick ? 2 : HOLDERS;
    const pings = quick ? 300 : 10_000;
    const settleMs = quick ? 50 : 500;
    checkOpenFiles(Math.max(runs, connections) + 200);

    const idleConnections = async (side: 'muxvisor' | 'raw'): Promise<Record<string, number>> => {
      const server = side === 'muxvisor' ? await supervisorWithPid() : await rawServerWithPid();
      let held: Held[] = [];
      try {
        const before = await rssOf(server.pid);
        held = await startAllHeld('scale-client.js', split(connections, holders).map((n) => [JSON.stringify({ task: 'hold', n, ...server.target })]));
        await sleep(settleMs);
        const rss = await rssOf(server.pid);
        const latency = side === 'muxvisor'
          ? await runProgram<Percentiles>('bench-client.js', { task: 'roundtrip', n: pings, target: 'ping', home: server.target.home })
          : await runProgram<Percentiles>('raw-client.js', { task: 'roundtrip', n: pings, target: 'ping', socket: server.target.socket });
        return { rssMB: rss / MB, perConnKB: (rss - before) / 1024 / connections, p50: latency.p50, p99: latency.p99 };
      } finally {
        await Promise.all(held.map((h) => h.stop()));
        await server.stop();
      }
    };

    return {
      workload: `${runs.toLocaleString('en')} runs open on one connection; ${connections.toLocaleString('en')} idle connections from ${holders} processes, ${pings.toLocaleString('en')} PINGs beside them`,
      cases: [
        {
          name: `${runs} runs open`, unit: 'MB', higherIsBetter: false,
          metrics: [
            { key: 'rssMB', unit: 'MB', higherIsBetter: false },
            { key: 'idleRssMB', unit: 'MB', higherIsBetter: false },
            { key: 'threadsMB', unit: 'MB', higherIsBetter: false },
            { key: 'perRunKB', unit: 'KB', higherIsBetter: false },
            { key: 'openMs', unit: 'ms', higherIsBetter: false },
          ],
          contender: {
            label: 'muxvisor supervisor RSS, N runs open',
            run: async () => {
              const supervisor = await startSupervisor();
              try {
                return { ...await runProgram<OpenManyResult>('scale-client.js', { task: 'open-many', home: supervisor.address, n: runs, settleMs }) };
              } finally {
                await supervisor.stop();
              }
            },
          },
        },
        {
          name: `${connections} idle connections`, unit: 'MB', higherIsBetter: false,
          metrics: [
            { key: 'rssMB', unit: 'MB', higherIsBetter: false },
            { key: 'perConnKB', unit: 'KB', higherIsBetter: false },
            ...(['p50', 'p99'] as const).map((key): Metric => ({ key, unit: 'µs', higherIsBetter: false })),
          ],
          contender: { label: 'muxvisor supervisor; PING from another client', run: () => idleConnections('muxvisor') },
          baseline: { label: 'raw server, plain sockets; echo from another client', run: () => idleConnections('raw') },
        },
      ],
    };
  },
};

interface Server {
  pid: number;
  /** What a holder is given to connect to. */
  target: { home: string; socket?: undefined } | { socket: string; home?: undefined };
  stop(): Promise<void>;
}

async function supervisorWithPid(): Promise<Server> {
  const supervisor = await startSupervisor();
  const pid = pidFileValue(homeLayout(supervisor.address));
  if (pid === null) {
    await supervisor.stop();
    throw new Error(`the supervisor in ${supervisor.address} wrote no pid file`);
  }
  return { pid, target: { home: supervisor.address }, stop: () => supervisor.stop() };
}

async function rawServerWithPid(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'muxvisor-raw-'));
  const socket = join(dir, 'raw.sock');
  try {
    // raw-server does not watch its stdin: SIGTERM closes it (after its clients have gone).
    const server = await startHeld('raw-server.js', [socket], { stopSignal: 'SIGTERM' });
    return {
      pid: server.pid, target: { socket },
      async stop() {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Fails at once, saying what to do, when a server started from here (it inherits this process's
 * limit) could not hold `needed` descriptors. Where /proc is missing the check is skipped.
 */
function checkOpenFiles(needed: number): void {
  let limits: string;
  try {
    limits = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return;
  }
  const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
  if (soft !== undefined && Number(soft) < needed) {
    throw new Error(`scale needs about ${needed} open files in each server process, and \`ulimit -n\` is ${soft}: raise it (\`ulimit -n ${2 * needed}\`) or run with --quick`);
  }
}

/** `total` as `parts` near-equal whole numbers. */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}
