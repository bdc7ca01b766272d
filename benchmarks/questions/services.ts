/**
 * services: what supervising costs.
 * - sampling: supervisor CPU per resource-sampling tick with N supervised processes (the
 *   supervisor measures its own tick). Baseline: one pidusage call over the same pids from a
 *   plain process, the least any tree-aware sampler must do.
 * - start-to-ready: `services.add` of a trivial TCP service until the library hears it is ready.
 *   Baseline: spawning the same program directly and connecting until its port answers. The
 *   difference is the supervisor's overhead.
 */
import { spawn } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { performance } from 'node:perf_hooks';
import pidusage from 'pidusage';
import { type Client, connect } from '../../lib/index.js';
import { allocatePort } from '../../supervisor/services/ports.js';
import { programsDir } from '../harness/child.js';
import { startSupervisor } from '../harness/fixtures.js';
import type { Question } from '../harness/question.js';

interface Tick {
  durationMs: number;
  cpuMicros: number;
  processes: number;
}

export const services: Question = {
  name: 'services',
  title: 'supervising services: sampling cost and start-to-ready',
  async setup({ quick }) {
    const supervisor = await startSupervisor({ serviceSampleMs: quick ? 200 : 500 });
    const client = await connect({ home: supervisor.address, name: 'bench-services', handleExit: false, exportEnv: false });
    const n = quick ? 10 : 100;
    await Promise.all(Array.from({ length: n }, (_, i) => client.services.add({ name: `sleeper-${i}`, command: 'sleep', args: ['3600'], stopTimeoutMs: 1_000 })));
    const pids = (await client.services.list()).map((s) => s.pid as number);
    let added = 0;
    const server = `${programsDir}tiny-server.js`;
    return {
      workload: `${n} supervised processes (sleep); a trivial TCP service (node, listens on $PORT)`,
      cases: [
        {
          name: `sampling tick, ${n} processes`, unit: 'ms', higherIsBetter: false,
          metrics: [{ key: 'cpuMs', unit: 'ms CPU', higherIsBetter: false }, { key: 'wallMs', unit: 'ms', higherIsBetter: false }],
          contender: { label: 'muxvisor sampler (supervisor CPU per tick)', run: () => nextTick(client) },
          baseline: {
            label: 'one pidusage call, same pids',
            run: async () => {
              const cpu = process.cpuUsage();
              const began = performance.now();
              await pidusage(pids);
              const used = process.cpuUsage(cpu);
              return { cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - began };
            },
          },
        },
        {
          name: 'start-to-ready, trivial service', unit: 'ms', higherIsBetter: false,
          contender: {
            label: 'muxvisor services.add, tcp probe',
            run: async () => {
              const name = `tiny-${added++}`;
              const began = performance.now();
              await client.services.add({ name, command: process.execPath, args: [server], ports: { tcp: 0 }, stopTimeoutMs: 1_000 });
              const ms = performance.now() - began;
              await client.services.remove(name);
              return ms;
            },
          },
          baseline: {
            label: 'spawn + connect until it answers',
            run: async () => {
              const port = await allocatePort();
              const began = performance.now();
              const child = spawn(process.execPath, [server], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
              while (!(await canConnect(port))) await new Promise((r) => setTimeout(r, 1));
              const ms = performance.now() - began;
              const exited = new Promise((r) => child.once('exit', r));
              child.kill('SIGKILL');
              await exited;
              return ms;
            },
          },
        },
      ],
      async teardown() {
        await client.close();
        await supervisor.stop();
      },
    };
  },
};

/** Waits for the supervisor's next sampling tick and returns what it cost. */
async function nextTick(client: Client): Promise<{ cpuMs: number; wallMs: number }> {
  const sampler = async () => ((await client.status()).services as { sampler: { ticks: number; lastTick: Tick | null } }).sampler;
  const before = (await sampler()).ticks;
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    const now = await sampler();
    if (now.ticks > before && now.lastTick !== null) return { cpuMs: now.lastTick.cpuMicros / 1000, wallMs: now.lastTick.durationMs };
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
