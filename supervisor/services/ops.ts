/**
 * The `services.*` operations (PROTOCOL.md section 12 lists them with their arguments). Each
 * checks its arguments here, once, and answers with a ServiceStatus or a typed error.
 */
import { ErrorCode, MuxvisorError } from '../../protocol/index.js';
import type { Operation } from '../ops.js';
import { SERVICE_TOPIC } from './manager.js';

/** Topic of the EVENTs of `services.logs` with `follow`. */
const LOG_TOPIC = 'service.log';

export const serviceOperations: Readonly<Record<string, Operation>> = {
  'services.add': (s, a) => s.services.add(a.definition, {
    inherited: envValues(a.inherited), replace: flag(a, 'replace', false), start: flag(a, 'start', true),
  }),
  'services.list': (s) => s.services.list(),
  'services.get': (s, a) => s.services.get(name(a)).info(),
  'services.start': (s, a) => s.services.start(name(a), a.inherited === undefined ? undefined : envValues(a.inherited)),
  'services.stop': (s, a) => s.services.stop(name(a), a.timeoutMs === undefined ? undefined : count(a, 'timeoutMs', 3_600_000)),
  'services.restart': (s, a) => s.services.restart(name(a)),
  'services.remove': async (s, a) => {
    const service = name(a);
    await s.services.remove(service);
    return { removed: service };
  },
  /** Answers when the service is ready; MUXVISOR_SERVICE_FAILED when it ends or fails first. */
  'services.wait': async (s, a, ctx) => {
    const service = s.services.get(name(a));
    await service.waitReady(ctx.signal);
    return service.info();
  },
  /**
   * The last `lines` lines (stdout and stderr in order). With `follow: true` it is a subscription:
   * then every new line is an EVENT on topic `service.log` ({time, stream, line}, seq counting
   * from 1), and one `{ removed: true }` event ends it if the service is removed.
   */
  'services.logs': (s, a, ctx) => {
    const service = s.services.get(name(a));
    const lines = a.lines === undefined ? 100 : count(a, 'lines', 10_000);
    const answer = { service: service.name, lines: service.output.last(lines).map(({ time, stream, line }) => ({ time, stream, line })), files: service.output.paths };
    if (!flag(a, 'follow', false)) return answer;
    let seq = 0;
    const send = (data: unknown) => ctx.conn.event(ctx.id, { topic: LOG_TOPIC, seq: ++seq, time: Date.now(), data });
    const offLine = service.output.onLine((stream, line) => send({ stream, line }));
    const offBus = s.bus.subscribe(SERVICE_TOPIC, (event) => {
      const e = event.data as { service?: string; state?: string };
      if (e.service === service.name && e.state === 'removed') send({ removed: true });
    });
    ctx.subscribe(() => {
      offLine();
      offBus();
    });
    return answer;
  },
  /**
   * Subscription to topic `service`. Answers with the current seq, the services as they are, and
   * (given `since`) the events after `since` that are still kept (`replay` is null when they are
   * not: the client missed some and should rely on the snapshot).
   */
  'services.events': (s, a, ctx) => {
    const since = a.since === undefined ? undefined : count(a, 'since', Number.MAX_SAFE_INTEGER);
    const { seq, replay } = s.services.events(since);
    const answer = { topic: SERVICE_TOPIC, seq, replay, services: s.services.list() };
    ctx.subscribe(s.bus.subscribe(SERVICE_TOPIC, (event) => ctx.conn.event(ctx.id, event)));
    return answer;
  },
};

function name(a: Record<string, unknown>): string {
  if (typeof a.name !== 'string' || a.name.length === 0) throw invalid(`\`name\` must be a service name, got ${typeof a.name}`);
  return a.name;
}

function flag(a: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = a[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalid(`\`${key}\` must be true or false, got ${typeof value}`);
  return value;
}

function count(a: Record<string, unknown>, key: string, max: number): number {
  const value = a[key];
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > max) throw invalid(`\`${key}\` must be an integer 0..${max}, got ${String(value)}`);
  return value as number;
}

function envValues(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw invalid('`inherited` must be a map of variable names to strings');
  }
  return value as Record<string, string>;
}

function invalid(message: string): MuxvisorError {
  return new MuxvisorError(ErrorCode.InvalidArgument, message);
}
