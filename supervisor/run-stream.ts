/**
 * A run as the main thread sees it: who owns it, which worker hosts it, how many records went
 * there. The main thread never decodes a run's records; it forwards their bytes.
 */
import type { FinishOrder, OpenOrder } from './workers/batch.js';
import type { WorkerHandle } from './workers/pool.js';

export type RunState = 'opening' | 'open' | 'finishing' | 'finished';

/** The part of a connection a run needs to know. */
export interface Owner {
  readonly id: number;
  readonly pid: number;
  readonly name: string;
  /** The run is gone for this connection: forget the channel (later use is an unknown channel). */
  dropChannel(channel: number): void;
}

export class RunStream {
  readonly id: string;
  readonly dir: string;
  readonly order: OpenOrder;
  readonly openedAt = Date.now();
  worker: WorkerHandle;
  slot: number;
  state: RunState = 'opening';
  /** Connection → its channel for this run. */
  readonly owners = new Map<Owner, number>();
  /** Records forwarded to the worker: the next record's index. */
  records = 0;
  bytes = 0;
  /** Set once the run starts finishing: how it ends. */
  finishOrder: FinishOrder | null = null;
  /** Times its worker was replaced under it; past the limit the run is failed instead. */
  restarts = 0;
  /** FINISH requests waiting for the run's result: (connection, request id). */
  readonly finishWaiters: Array<{ conn: number; id: number }> = [];

  constructor(id: string, dir: string, order: OpenOrder, worker: WorkerHandle, slot: number) {
    this.id = id;
    this.dir = dir;
    this.order = order;
    this.worker = worker;
    this.slot = slot;
  }

  get live(): boolean {
    return this.state === 'opening' || this.state === 'open';
  }
}
