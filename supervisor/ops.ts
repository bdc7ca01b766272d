/**
 * Supervisor operations: REQUESTs on channel 0. Each takes the request's `args` and returns the
 * result (or a promise of it); a throw is answered as an error. PROTOCOL.md lists them.
 */
import { ErrorCode, MuxvisorError, PROTOCOL_VERSIONS } from '../protocol/index.js';
import type { OpContext } from './connection.js';
import { type BusEvent, SUPERVISOR_TOPIC } from './events.js';
import { droppedLogLines } from './log.js';
import type { Supervisor } from './server.js';
import { runOperations } from './run-ops.js';
import { SERVICE_TOPIC } from './services/manager.js';
import { serviceOperations } from './services/ops.js';
import { RUN_TOPIC } from './stream-mux.js';

export type Operation = (supervisor: Supervisor, args: Record<string, unknown>, ctx: OpContext) => unknown;

export const operations: Readonly<Record<string, Operation>> = {
  ...serviceOperations,
  ...runOperations,
  status: (s, _a, ctx) => status(s, ctx.conn),
  'connections.list': (s) => [...s.connections()].map((c) => ({
    conn: c.id, pid: c.pid, name: c.name, state: c.state, runs: c.channelCount, pending: c.inflightCount,
    bytesIn: c.bytesIn, bytesOut: c.writer.bytesWritten, recordsIn: c.recordsIn, requestsIn: c.requestsIn, ageMs: Date.now() - c.connectedAt,
  })),
  events: (s, a, ctx) => subscribeEvents(s, a, ctx),
  shutdown: (s, _args, { conn }) => {
    setImmediate(() => void s.close(`shutdown requested by pid ${conn.pid} ${conn.name}`));
    return { stopping: true, pid: process.pid };
  },
};

/** The supervisor's report; `asker`'s own `status` request is not counted as pending. */
export function status(s: Supervisor, asker?: { readonly inflightCount: number }) {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  let pending = 0;
  for (const c of s.connections()) pending += c.inflightCount;
  if (asker !== undefined && asker.inflightCount > 0) pending--;
  const workers = s.pool.workers.map((w) => ({ index: w.index, dedicated: w.dedicated, runs: w.runs.size, backlogBytes: w.backlogBytes }));
  const problems: string[] = [];
  if (s.workerFailures > 0) problems.push(`${s.workerFailures} worker thread failure(s) since start; their runs were restarted from their logs`);
  const admission = s.admission;
  if (admission !== null && admission.refused > 0) problems.push(`${admission.refused} connection(s) refused since start: more than ${admission.budget.maxConnections} at once (limit of open files ${admission.budget.fileLimit})`);
  if (admission !== null && admission.acceptErrors > 0) problems.push(`${admission.acceptErrors} connection(s) could not be accepted since start (out of file descriptors?)`);
  const droppedLines = droppedLogLines();
  if (droppedLines > 0) problems.push(`${droppedLines} lines of the supervisor log were dropped: ${s.layout.supervisorLog} could not be written (disk full?)`);
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
    connectionLimit: admission === null ? null : { ...admission.budget, refused: admission.refused, acceptErrors: admission.acceptErrors },
    runs: { open: s.mux.size, opened: s.mux.opened, finished: s.mux.finished, crashed: s.mux.crashed },
    workers,
    traffic: s.traffic(),
    rates: s.rates(),
    pendingRequests: pending,
    services: servicesSummary(s),
    process: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, cpuUserMicros: cpu.user, cpuSystemMicros: cpu.system },
    eventLoopDelay: s.loopDelay.report(),
    problems,
  };
}

function servicesSummary(s: Supervisor) {
  const byState: Record<string, number> = {};
  // null until some service has been sampled: "not measured yet" is not "0 bytes".
  let cpuPercent: number | null = null;
  let memoryBytes: number | null = null;
  for (const service of s.services.values()) {
    byState[service.state] = (byState[service.state] ?? 0) + 1;
    if (service.usage === null || service.usage === undefined) continue;
    cpuPercent = (cpuPercent ?? 0) + service.usage.cpuPercent;
    memoryBytes = (memoryBytes ?? 0) + service.usage.memoryBytes;
  }
  const { intervalMs, ticks, lastTick } = s.services.sampler;
  return { count: s.services.size, byState, cpuPercent, memoryBytes, sampler: { intervalMs, ticks, lastTick } };
}

/** Topics a client may subscribe to with `events`. */
const TOPICS: readonly string[] = [SERVICE_TOPIC, RUN_TOPIC, SUPERVISOR_TOPIC];

/**
 * Subscription to several topics at once (default: all). Answers with each topic's current seq,
 * the kept events after `since[topic]` merged in time order (`lost` names the topics whose
 * history no longer reaches back that far), then EVENT frames in the order they happen.
 */
function subscribeEvents(s: Supervisor, a: Record<string, unknown>, ctx: OpContext) {
  const topics = a.topics === undefined ? TOPICS : a.topics;
  if (!Array.isArray(topics) || topics.length === 0 || !topics.every((t) => typeof t === 'string' && TOPICS.includes(t))) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, `\`topics\` must be a non-empty list of ${TOPICS.join(', ')}`, { data: { known: TOPICS } });
  }
  const since = a.since ?? {};
  if (typeof since !== 'object' || since === null || Array.isArray(since) || !Object.values(since).every((v) => Number.isSafeInteger(v) && (v as number) >= 0)) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, '`since` must map topics to the last seq seen: { service: 12, run: 3 }');
  }
  const current: Record<string, number> = {};
  const replay: BusEvent[] = [];
  const lost: string[] = [];
  for (const topic of topics as string[]) {
    current[topic] = s.bus.current(topic);
    const after = (since as Record<string, number>)[topic];
    if (after === undefined) continue;
    const kept = s.bus.since(topic, after);
    if (kept !== null) replay.push(...kept);
    else {
      // Some events after `since` are gone: say so, and still give every one that is kept.
      lost.push(topic);
      replay.push(...s.bus.kept(topic));
    }
  }
  replay.sort((x, y) => x.time - y.time);
  const cancels = (topics as string[]).map((topic) => s.bus.subscribe(topic, (event) => ctx.conn.event(ctx.id, event)));
  ctx.subscribe(() => {
    for (const cancel of cancels) cancel();
  });
  return { topics, current, replay, lost };
}

export function unknownOp(op: string): MuxvisorError {
  const known = Object.keys(operations).sort();
  return new MuxvisorError(ErrorCode.UnknownOp, `the supervisor has no op \`${op}\` (known: ${known.join(', ')})`, { data: { op, known } });
}
