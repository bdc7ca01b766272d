/**
 * Supervisor operations: REQUESTs on channel 0. Each takes the request's `args` and returns the
 * result (or a promise of it); a throw is answered as an error. PROTOCOL.md lists them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, MuxvisorError, PROTOCOL_VERSIONS } from '../protocol/index.js';
import type { OpContext } from './connection.js';
import type { Supervisor } from './server.js';
import { serviceOperations } from './services/ops.js';

export type Operation = (supervisor: Supervisor, args: Record<string, unknown>, ctx: OpContext) => unknown;

export const operations: Readonly<Record<string, Operation>> = {
  ...serviceOperations,
  status: (s) => status(s),
  'connections.list': (s) => [...s.connections()].map((c) => ({
    conn: c.id, pid: c.pid, name: c.name, state: c.state, runs: c.channelCount, pending: c.inflightCount,
    bytesIn: c.bytesIn, bytesOut: c.writer.bytesWritten, recordsIn: c.recordsIn, requestsIn: c.requestsIn, ageMs: Date.now() - c.connectedAt,
  })),
  'runs.list': (s, args) => ({ open: openRuns(s), recorded: args.recorded === false ? [] : recordedRuns(s.layout.runsDir) }),
  shutdown: (s, _args, { conn }) => {
    setImmediate(() => void s.close(`shutdown requested by pid ${conn.pid} ${conn.name}`));
    return { stopping: true, pid: process.pid };
  },
};

export function status(s: Supervisor) {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  let pending = 0;
  for (const c of s.connections()) pending += c.inflightCount;
  const workers = s.pool.workers.map((w) => ({ index: w.index, dedicated: w.dedicated, runs: w.runs.size, backlogBytes: w.backlogBytes }));
  const problems: string[] = [];
  if (s.workerFailures > 0) problems.push(`${s.workerFailures} worker thread failure(s) since start; their runs were restarted from their logs`);
  for (const w of workers) if (w.backlogBytes > s.options.workerHighWaterBytes) problems.push(`worker ${w.index} is congested: ${w.backlogBytes} bytes waiting`);
  for (const service of s.services.values()) {
    if (service.state === 'failed' || service.state === 'backoff') problems.push(`service \`${service.name}\` is ${service.state}: ${service.reason}`);
  }
  return {
    server: s.server,
    protocol: PROTOCOL_VERSIONS,
    state: s.state,
    home: s.layout.home,
    socket: s.layout.socketPath,
    startedAt: s.startedAt,
    uptimeMs: Date.now() - s.startedAt,
    connections: s.connectionCount,
    runs: { open: s.mux.size, opened: s.mux.opened, finished: s.mux.finished, crashed: s.mux.crashed },
    workers,
    traffic: s.traffic(),
    rates: s.rates(),
    pendingRequests: pending,
    services: servicesSummary(s),
    process: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, cpuUserMicros: cpu.user, cpuSystemMicros: cpu.system },
    problems,
  };
}

function servicesSummary(s: Supervisor) {
  const byState: Record<string, number> = {};
  let cpuPercent = 0;
  let memoryBytes = 0;
  for (const service of s.services.values()) {
    byState[service.state] = (byState[service.state] ?? 0) + 1;
    cpuPercent += service.usage?.cpuPercent ?? 0;
    memoryBytes += service.usage?.memoryBytes ?? 0;
  }
  const { intervalMs, ticks, lastTick } = s.services.sampler;
  return { count: s.services.size, byState, cpuPercent, memoryBytes, sampler: { intervalMs, ticks, lastTick } };
}

function openRuns(s: Supervisor) {
  return [...s.mux.values()].map((r) => ({
    run: r.id, state: r.state, records: r.records, bytes: r.bytes, worker: r.worker.index, openedAt: r.openedAt,
    handler: r.order.handler ?? 'default', restarts: r.restarts,
    owners: [...r.owners.keys()].map((o) => ({ conn: o.id, pid: o.pid, name: o.name })),
  }));
}

/** What meta.json says of every run recorded in this home, newest first. */
export function recordedRuns(runsDir: string): Array<Record<string, unknown>> {
  let names: string[];
  try {
    names = readdirSync(runsDir);
  } catch {
    return [];
  }
  const runs: Array<Record<string, unknown>> = [];
  for (const name of names) {
    try {
      runs.push(JSON.parse(readFileSync(join(runsDir, name, 'meta.json'), 'utf8')) as Record<string, unknown>);
    } catch {
      // a run directory without readable meta: not one of ours, or being created right now
    }
  }
  return runs.sort((a, b) => Number(b.openedAt ?? 0) - Number(a.openedAt ?? 0));
}

export function unknownOp(op: string): MuxvisorError {
  const known = Object.keys(operations).sort();
  return new MuxvisorError(ErrorCode.UnknownOp, `the supervisor has no op \`${op}\` (known: ${known.join(', ')})`, { data: { op, known } });
}
