/**
 * The supervisor's event topics (`service`, ...): each event gets the next sequence number of
 * its topic, with no gaps, and the last `historySize` events of each topic are kept so that a
 * subscriber can ask for everything after the last seq it saw (PROTOCOL.md section 8).
 *
 * Contract: `publish` delivers synchronously to every subscriber, in seq order; a subscriber must
 * not throw (one that does is dropped, and the others still get the event).
 */
/** The supervisor's own life: started, draining, a worker thread failed, leftovers killed. */
export const SUPERVISOR_TOPIC = 'supervisor';

export interface BusEvent {
  topic: string;
  seq: number;
  time: number;
  data: unknown;
}

export type Subscriber = (event: BusEvent) => void;

export class EventBus {
  readonly #historySize: number;
  readonly #seq = new Map<string, number>();
  readonly #history = new Map<string, BusEvent[]>();
  readonly #subscribers = new Map<string, Set<Subscriber>>();

  constructor(historySize = 1000) {
    this.#historySize = historySize;
  }

  /** The seq of the topic's last event (0 before the first). */
  current(topic: string): number {
    return this.#seq.get(topic) ?? 0;
  }

  publish(topic: string, data: unknown): BusEvent {
    const event: BusEvent = { topic, seq: this.current(topic) + 1, time: Date.now(), data };
    this.#seq.set(topic, event.seq);
    let history = this.#history.get(topic);
    if (history === undefined) this.#history.set(topic, (history = []));
    history.push(event);
    if (history.length >= 2 * this.#historySize) history.splice(0, history.length - this.#historySize);
    for (const subscriber of this.#subscribers.get(topic) ?? []) {
      try {
        subscriber(event);
      } catch {
        this.#subscribers.get(topic)?.delete(subscriber);
      }
    }
    return event;
  }

  /** Events after `seq`, oldest first; null when the history no longer reaches back that far. */
  since(topic: string, seq: number): BusEvent[] | null {
    const history = this.#history.get(topic) ?? [];
    if (seq === this.current(topic)) return [];
    if (seq > this.current(topic)) return null; // a seq of another supervisor: what it missed is unknown
    const first = history[0]?.seq ?? this.current(topic) + 1;
    if (seq + 1 < first) return null;
    return history.slice(seq + 1 - first);
  }

  /** Every event of the topic still kept (at least the last `historySize`), oldest first. */
  kept(topic: string): BusEvent[] {
    return [...(this.#history.get(topic) ?? [])];
  }

  subscribe(topic: string, subscriber: Subscriber): () => void {
    let set = this.#subscribers.get(topic);
    if (set === undefined) this.#subscribers.set(topic, (set = new Set()));
    set.add(subscriber);
    return () => set.delete(subscriber);
  }
}
