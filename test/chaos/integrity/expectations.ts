/**
 * What the chaos section knows a home's runs must show, gathered from what the clients reported
 * and what the section did. The checker holds the logs to it.
 */

/** The statuses a finished run may have (RELIABILITY.md). */
export const FINAL_STATUSES = ['ok', 'crashed', 'interrupted', 'failed'] as const;

export interface ExpectedEnd {
  /** Statuses that are correct for it (more than one when a finish may have been in flight). */
  statuses: string[];
  /** What ended it, for messages: `client SIGKILL`, `supervisor SIGTERM`, ... */
  because: string;
}

export class Expectations {
  /** run → publisher → the highest seq acknowledged durable (by a sync or a finish). */
  readonly acked = new Map<string, Map<string, number>>();
  /** run → publisher → the last seq published in an earlier turn before `process.exit`. */
  readonly flushedAtExit = new Map<string, Map<string, number>>();
  /** run → how many records its finish reported, when a client saw it finish. */
  readonly finishedRecords = new Map<string, number>();
  /** run → how it must have ended; the first cause recorded wins. */
  readonly ends = new Map<string, ExpectedEnd>();
  /** run → bytes of torn tail the section appended to its log while no supervisor ran. */
  readonly tornBytes = new Map<string, number>();

  ack(run: string, publisher: string, seq: number): void {
    raise(this.acked, run, publisher, seq);
  }

  flushed(run: string, publisher: string, seq: number): void {
    raise(this.flushedAtExit, run, publisher, seq);
  }

  end(run: string, statuses: string[], because: string): void {
    if (!this.ends.has(run)) this.ends.set(run, { statuses, because });
  }

  torn(run: string, bytes: number): void {
    this.tornBytes.set(run, (this.tornBytes.get(run) ?? 0) + bytes);
  }
}

function raise(map: Map<string, Map<string, number>>, run: string, publisher: string, seq: number): void {
  if (seq < 0) return;
  let byPublisher = map.get(run);
  if (!byPublisher) map.set(run, (byPublisher = new Map()));
  byPublisher.set(publisher, Math.max(seq, byPublisher.get(publisher) ?? -1));
}
