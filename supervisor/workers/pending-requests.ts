/**
 * The requests a worker thread is answering. Each is answered exactly once: by its handler, by
 * its deadline (MUXVISOR_TIMEOUT), or by a cancel (MUXVISOR_CANCELLED); or forgotten, with its
 * connection. An entry is its own RequestContext: the AbortController behind `signal` is made
 * only if the handler reads it.
 */
import { Deadlines, ErrorCode, MuxvisorError } from '../../protocol/index.js';
import type { RequestContext } from '../handler-api.js';
import type { Outbox } from './outbox.js';

export class PendingRequest implements RequestContext {
  /** Deadlines' slot: the bucket this request waits in, 0 once answered. */
  deadlineBucket = 0;
  readonly conn: number;
  readonly id: number;
  readonly op: string;
  readonly run: string;
  readonly ms: number;
  readonly deadline: number;
  #controller: AbortController | null = null;

  constructor(conn: number, id: number, op: string, run: string, ms: number) {
    this.conn = conn;
    this.id = id;
    this.op = op;
    this.run = run;
    this.ms = ms;
    this.deadline = Date.now() + ms;
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  abort(reason: MuxvisorError): void {
    this.#controller?.abort(reason);
  }
}

export class PendingRequests {
  readonly #outbox: Outbox;
  readonly #byConn = new Map<number, Map<number, PendingRequest>>();
  readonly #deadlines = new Deadlines<PendingRequest>((p) => this.#expire(p));

  constructor(outbox: Outbox) {
    this.#outbox = outbox;
  }

  get size(): number {
    return this.#deadlines.size;
  }

  start(conn: number, id: number, op: string, run: string, ms: number): PendingRequest {
    const pending = new PendingRequest(conn, id, op, run, ms);
    let forConn = this.#byConn.get(conn);
    if (forConn === undefined) this.#byConn.set(conn, (forConn = new Map()));
    forConn.set(id, pending);
    this.#deadlines.add(pending, ms);
    return pending;
  }

  /** Answers with `result`, unless the request was answered already. */
  respond(pending: PendingRequest, result: unknown): void {
    if (this.#take(pending)) this.#outbox.respond(pending.conn, pending.id, result);
  }

  /** Answers with `error` (a non-MuxvisorError becomes MUXVISOR_HANDLER_ERROR), unless answered already. */
  fail(pending: PendingRequest, error: unknown): void {
    if (this.#take(pending)) this.#outbox.fail(pending.conn, pending.id, error, ErrorCode.HandlerError);
  }

  cancel(conn: number, id: number): void {
    const pending = this.#byConn.get(conn)?.get(id);
    if (pending === undefined || !this.#take(pending)) return; // already answered: that answer stands
    pending.abort(new MuxvisorError(ErrorCode.Cancelled, 'cancelled by the client'));
    this.#outbox.fail(conn, id, new MuxvisorError(ErrorCode.Cancelled, `request ${id} (\`${pending.op}\`) on run ${pending.run} was cancelled`));
  }

  /** The connection is gone: nobody waits for these answers; abort the work. */
  forgetConnection(conn: number): void {
    const forConn = this.#byConn.get(conn);
    if (forConn === undefined) return;
    this.#byConn.delete(conn);
    for (const pending of forConn.values()) {
      this.#deadlines.delete(pending);
      pending.abort(new MuxvisorError(ErrorCode.Cancelled, 'the client disconnected'));
    }
  }

  #expire(pending: PendingRequest): void {
    this.#remove(pending);
    const error = new MuxvisorError(ErrorCode.Timeout, `request \`${pending.op}\` on run ${pending.run} timed out after ${pending.ms} ms`, {
      data: { op: pending.op, run: pending.run, timeoutMs: pending.ms },
    });
    pending.abort(error);
    this.#outbox.fail(pending.conn, pending.id, error);
  }

  /** Removes `pending`; false if it was no longer waiting. */
  #take(pending: PendingRequest): boolean {
    if (!this.#deadlines.delete(pending)) return false;
    this.#remove(pending);
    return true;
  }

  #remove(pending: PendingRequest): void {
    const forConn = this.#byConn.get(pending.conn);
    forConn?.delete(pending.id);
    if (forConn?.size === 0) this.#byConn.delete(pending.conn);
  }
}
