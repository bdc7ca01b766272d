/**
 * The supervisor's state-change stream (`events` op, PROTOCOL.md section 8): services changing
 * state, runs opening and finishing, the supervisor starting, draining, losing a worker.
 */
import type { MuxvisorError } from '../protocol/index.js';
import type { CallOptions, ClientConnection } from './connection.js';

/** The topics there are: `service`, `run`, `supervisor`. */
export type EventTopic = 'service' | 'run' | 'supervisor';

export interface SupervisorEvent {
  topic: EventTopic;
  /** Counts up by one per topic, with no gaps, from 1 at the supervisor's start. */
  seq: number;
  /** Milliseconds since the epoch, the supervisor's clock. */
  time: number;
  /** `{ event: 'opened' | 'finished', run, ... }` for runs, a ServiceEvent for services, ... */
  data: Record<string, unknown>;
}

export interface EventsOptions extends CallOptions {
  /** @default every topic */
  topics?: EventTopic[];
  /** Replay the kept events after these seqs first (the last seq seen, per topic). */
  since?: Partial<Record<EventTopic, number>>;
  /** Why the subscription ended on its own (connection closed, or too slow to read). */
  onEnd?: (error: MuxvisorError) => void;
}

export interface EventsSubscription {
  /** Each topic's seq when the subscription began. */
  current: Record<string, number>;
  /** Topics whose history no longer reached back to `since`: some of their events are missed (the replay has those still kept). */
  lost: string[];
  /** Ends the subscription (sends CANCEL). */
  close(): void;
}

/** Calls `onEvent` for the replay (oldest first), then for every event as it happens, in order. */
export async function subscribeEvents(conn: ClientConnection, onEvent: (event: SupervisorEvent) => void, options: EventsOptions = {}): Promise<EventsSubscription> {
  const { topics, since, onEnd, ...call } = options;
  const args: Record<string, unknown> = {};
  if (topics !== undefined) args.topics = topics;
  if (since !== undefined) args.since = since;
  const last = new Map<string, number>();
  const deliver = (e: { topic: string; seq: number; time: number; data?: unknown }) => {
    if (e.seq <= (last.get(e.topic) ?? -1)) return;
    last.set(e.topic, e.seq);
    onEvent({ topic: e.topic as EventTopic, seq: e.seq, time: e.time, data: (e.data ?? {}) as Record<string, unknown> });
  };
  const { result, end } = await conn.subscribe('events', args, deliver, onEnd ?? (() => undefined), call, (answer) => {
    for (const e of (answer as { replay: SupervisorEvent[] }).replay) deliver(e);
  });
  const answer = result as { current: Record<string, number>; lost: string[] };
  return { current: answer.current, lost: answer.lost, close: end };
}
