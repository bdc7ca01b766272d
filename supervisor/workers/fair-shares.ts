/**
 * Fair push-back for one worker. While the bytes on their way to a worker are over its high-water
 * mark, connections that publish to its runs stop being read until it catches up. Without this,
 * a client that sends a record now and then was paused for its neighbour's flood (one 16 MiB
 * record is enough), and waited unread behind it, PINGs included.
 *
 * So, during one congestion (from the moment the worker is over its mark until it has drained
 * below half of it): a connection that has sent at most `quietShareBytes` into it passes, as long
 * as all such connections together stay within `quietBudgetBytes`; any other waits. The extra
 * memory a congestion can gather is thereby bounded by `quietBudgetBytes`, whatever the flood.
 *
 * Owner: the main thread's pool, one per worker. `drained()` starts the next congestion afresh.
 */
export class FairShares {
  readonly #quietShareBytes: number;
  readonly #quietBudgetBytes: number;
  /** Bytes each connection sent during this congestion. */
  readonly #sent = new Map<number, number>();
  /** Bytes let through for quiet connections during this congestion. */
  #quietBytes = 0;

  constructor(quietShareBytes: number, quietBudgetBytes: number) {
    this.#quietShareBytes = quietShareBytes;
    this.#quietBudgetBytes = quietBudgetBytes;
  }

  /** The worker is congested and `conn` has just added `bytes` for it: true when it must stop reading. */
  mustWait(conn: number, bytes: number): boolean {
    const sent = (this.#sent.get(conn) ?? 0) + bytes;
    this.#sent.set(conn, sent);
    if (sent > this.#quietShareBytes || this.#quietBytes + bytes > this.#quietBudgetBytes) return true;
    this.#quietBytes += bytes;
    return false;
  }

  /** The worker caught up (below half its mark): the next congestion counts from zero. */
  drained(): void {
    if (this.#sent.size === 0) return;
    this.#sent.clear();
    this.#quietBytes = 0;
  }
}
