/**
 * The order in which a worker applies the entries it was sent: run by run in turn, not in arrival
 * order. Each run (slot) has a lane; a round takes one entry from every lane that has one. A run
 * whose client floods its worker (4,000 requests, 72 MB of echo answers) so makes the other runs
 * on the thread wait for one of its entries, not for all of them.
 *
 * Contracts:
 * - Entries of one slot are applied in the order they were sent.
 * - An entry for slot 0 (the whole worker, e.g. "connection gone") is applied after every entry
 *   sent before it, whatever its slot; entries sent after it need not wait for it.
 * - A batch is done once all its entries are applied; `done()` gives the highest seq up to which
 *   every batch is done, so acknowledgements stay in order.
 * - Entries are views into their batch (shared ring or transferred heap buffer): the caller must
 *   not acknowledge a batch (freeing its bytes) before `done()` says so.
 *
 * Single owner: the worker's message loop. No I/O, no timers: the caller decides when to stop.
 */
import { ENTRY_HEADER_BYTES } from './batch.js';

export type ApplyEntry = (op: number, slot: number, conn: number, id: number, batch: Buffer, start: number, end: number) => void;

interface BatchState {
  readonly seq: number;
  readonly bytes: Buffer;
  /** Entries not yet applied. */
  left: number;
}

interface Item {
  readonly batch: BatchState;
  /** Where the entry's header starts in `batch.bytes`. */
  readonly at: number;
  /** Its place in the order of arrival over all lanes. */
  readonly n: number;
}

/** A FIFO of one slot's entries; `head` moves instead of shifting the array. */
interface Lane {
  readonly slot: number;
  items: Item[];
  head: number;
}

/** A slot-0 entry and how many entries sent before it are still to be applied. */
interface Barrier {
  readonly item: Item;
  before: number;
}

export class Lanes {
  readonly #lanes = new Map<number, Lane>();
  /** Lanes with entries, in the order they get their next turn. */
  #turns: Lane[] = [];
  #turn = 0;
  #barriers: Barrier[] = [];
  /** Batches not yet reported done, oldest first. */
  readonly #batches: BatchState[] = [];
  /** Entries added (numbers them) and entries not yet applied, slot-0 entries excluded. */
  #n = 0;
  #waiting = 0;
  #lastDone = -1;

  /** True when some entry waits to be applied. */
  get pending(): boolean {
    return this.#waiting > 0 || this.#barriers.length > 0;
  }

  /** Takes in batch `seq` (batch.ts layout); its entries are applied by later `run` calls. */
  add(seq: number, bytes: Buffer): void {
    const batch: BatchState = { seq, bytes, left: 0 };
    this.#batches.push(batch);
    for (let at = 0; at < bytes.length; at += ENTRY_HEADER_BYTES + bytes.readUInt32LE(at + 16)) {
      const item: Item = { batch, at, n: this.#n++ };
      batch.left++;
      const slot = bytes.readUInt32LE(at + 4);
      if (slot === 0) {
        this.#barriers.push({ item, before: this.#waiting });
        continue;
      }
      this.#waiting++;
      let lane = this.#lanes.get(slot);
      if (lane === undefined) {
        lane = { slot, items: [], head: 0 };
        this.#lanes.set(slot, lane);
      }
      if (lane.head === lane.items.length) this.#turns.push(lane); // it had no turn: it gets one
      lane.items.push(item);
    }
  }

  /**
   * Applies entries, one per lane in turn, until none is left or `more()` (asked after each
   * entry) says stop. Returns how many were applied.
   */
  run(apply: ApplyEntry, more: () => boolean = () => true): number {
    let applied = this.#applyBarriers(apply);
    while (this.#turns.length > 0) {
      if (this.#turn >= this.#turns.length) this.#turn = 0;
      const lane = this.#turns[this.#turn] as Lane;
      const item = lane.items[lane.head++] as Item;
      if (lane.head === lane.items.length) {
        // Empty: it leaves the turns (and the map, so that finished slots leave nothing behind).
        this.#turns.splice(this.#turn, 1);
        this.#lanes.delete(lane.slot);
      } else {
        if (lane.head >= 1024 && lane.head * 2 >= lane.items.length) {
          lane.items = lane.items.slice(lane.head);
          lane.head = 0;
        }
        this.#turn++;
      }
      this.#waiting--;
      this.#applyItem(item, apply);
      for (const b of this.#barriers) if (item.n < b.item.n) b.before--;
      applied += 1 + this.#applyBarriers(apply);
      if (!more()) break;
    }
    return applied;
  }

  /** The highest seq up to which every batch is applied, if that moved since the last call; else -1. */
  done(): number {
    while (this.#batches.length > 0 && (this.#batches[0] as BatchState).left === 0) this.#lastDone = (this.#batches.shift() as BatchState).seq;
    const out = this.#lastDone;
    this.#lastDone = -1;
    return out;
  }

  /** Applies the slot-0 entries that nothing sent before them waits ahead of. */
  #applyBarriers(apply: ApplyEntry): number {
    let applied = 0;
    while (this.#barriers.length > 0 && (this.#barriers[0] as Barrier).before === 0) {
      this.#applyItem((this.#barriers.shift() as Barrier).item, apply);
      applied++;
    }
    return applied;
  }

  #applyItem(item: Item, apply: ApplyEntry): void {
    const b = item.batch.bytes;
    const at = item.at;
    const start = at + ENTRY_HEADER_BYTES;
    item.batch.left--;
    apply(b[at] as number, b.readUInt32LE(at + 4), b.readUInt32LE(at + 8), b.readUInt32LE(at + 12), b, start, start + b.readUInt32LE(at + 16));
  }
}
