/**
 * A handshaken connection to the supervisor: the one owner of requests in flight.
 *
 * Contracts: every request either settles with its answer, or rejects with a MuxvisorError when
 * its deadline passes (MUXVISOR_TIMEOUT), its signal aborts (MUXVISOR_CANCELLED; a CANCEL goes to
 * the supervisor for REQUESTs), or the connection closes (MUXVISOR_CONNECTION_CLOSED, at once).
 * Timers and abort listeners are removed when a request settles. The socket is ref'd only while a
 * request waits, so an idle client never keeps its process alive.
 */
import { EventEmitter } from 'node:events';
import {
  encodeFrameWithValue, encodeMessage, ErrorCode, type Event, type Frame, decodeMessage, Kind, kindName,
  type Message, MuxvisorError, PROTOCOL_VERSIONS, type Welcome, MAX_U32,
} from '../protocol/index.js';
import { aborted } from './abort.js';
import { openSocket, Transport } from './transport.js';

export interface CallOptions {
  /** @default the connection's `requestTimeoutMs` */
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Pending {
  kind: number;
  what: string;
  resolve(value: unknown): void;
  reject(error: MuxvisorError): void;
  timer: NodeJS.Timeout;
  cleanup: () => void;
  /** The caller's stack, so an error that settles later still points at the call. */
  stack: string | undefined;
}

export interface ConnectionOptions {
  socketPath: string;
  token: string;
  name: string;
  timeoutMs: number;
  requestTimeoutMs: number;
  signal?: AbortSignal;
}

/** Events: 'close' (error: MuxvisorError | null), 'warning' (error: MuxvisorError), 'event' (Event). */
export class ClientConnection extends EventEmitter {
  readonly welcome: Welcome;
  readonly transport: Transport;
  /** The token this connection presented; children inherit it through MUXVISOR_SERVICE. */
  readonly token: string;
  readonly #requestTimeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  readonly #subscriptions = new Map<number, (event: Event) => void>();
  #nextId = 1;
  #closeError: MuxvisorError | null = null;
  #goodbye: string | null = null;
  /** close() callers waiting for the last request to settle. */
  #idleWaiters: Array<() => void> = [];

  private constructor(transport: Transport, welcome: Welcome, token: string, requestTimeoutMs: number) {
    super();
    this.transport = transport;
    this.welcome = welcome;
    this.token = token;
    this.#requestTimeoutMs = requestTimeoutMs;
  }

  /** Connects, says HELLO and waits for WELCOME, all within `timeoutMs`. */
  static async open(options: ConnectionOptions): Promise<ClientConnection> {
    const socket = await openSocket(options.socketPath, options.timeoutMs, options.signal);
    let connection: ClientConnection | null = null;
    let settle: ((m: Message | MuxvisorError) => void) | null = null;
    const handshake = new Promise<Message | MuxvisorError>((resolve) => (settle = resolve));
    const transport = new Transport(socket, {
      onFrame: (f) => {
        if (connection !== null) connection.#onFrame(f);
        else settle?.(decodeSafely(f));
      },
      onClose: (error) => {
        if (connection !== null) connection.#onClose(error);
        else settle?.(error ?? new MuxvisorError(ErrorCode.ConnectionClosed, `the supervisor at ${options.socketPath} closed the connection during the handshake`));
      },
    });
    transport.send(encodeMessage({ kind: Kind.Hello, versions: PROTOCOL_VERSIONS, token: options.token, pid: process.pid, name: options.name, caps: [] }));
    const timer = setTimeout(() => settle?.(new MuxvisorError(ErrorCode.Timeout, `no WELCOME from ${options.socketPath} within ${options.timeoutMs} ms`)), options.timeoutMs);
    const reply = await handshake.finally(() => clearTimeout(timer));
    if (reply instanceof MuxvisorError || reply.kind !== Kind.Welcome) {
      transport.destroy();
      if (reply instanceof MuxvisorError) throw reply;
      if (reply.kind === Kind.Error) throw MuxvisorError.fromWire(reply.error);
      throw new MuxvisorError(ErrorCode.BadMessage, `expected WELCOME, got ${kindName(reply.kind)}`);
    }
    connection = new ClientConnection(transport, reply, options.token, options.requestTimeoutMs);
    transport.unref();
    return connection;
  }

  get closed(): boolean {
    return this.transport.closed;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Sends a request frame (payload `value`) and waits for its one answer. */
  call(kind: number, channel: number, value: unknown, what: string, options: CallOptions = {}): Promise<unknown> {
    if (this.transport.closed) return Promise.reject(this.#closedError(what));
    if (options.signal?.aborted) return Promise.reject(aborted(options.signal, what));
    const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
    const id = this.#allocateId();
    const stack = new Error().stack;
    const frame = encodeFrameWithValue({ kind, flags: 0, id, channel }, value);
    return new Promise((resolve, reject) => {
      const onAbort = () => this.#abandon(id, aborted(options.signal, what));
      const pending: Pending = {
        kind, what, resolve, reject, stack,
        timer: setTimeout(() => this.#abandon(id, new MuxvisorError(ErrorCode.Timeout, `${what} timed out after ${timeoutMs} ms (${this.#pending.size} pending)`, { data: { timeoutMs, pending: this.#pending.size } })), timeoutMs),
        cleanup: () => options.signal?.removeEventListener('abort', onAbort),
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, pending);
      if (this.#pending.size === 1) this.transport.ref();
      this.transport.send(frame);
    });
  }

  /** A request whose answer nobody will wait for (the process is exiting). */
  sendUnanswered(kind: number, channel: number, value: unknown): void {
    if (this.transport.closed) return;
    this.transport.send(encodeFrameWithValue({ kind, flags: 0, id: this.#allocateId(), channel }, value));
  }

  /** Fire-and-forget: a frame with no answer (PUBLISH, GOODBYE, CANCEL). */
  send(frame: Uint8Array): void {
    if (this.transport.closed) throw this.#closedError('sending');
    this.transport.send(frame);
  }

  /** Registers the receiver of EVENTs for subscription `id`. */
  subscribe(id: number, onEvent: (event: Event) => void): void {
    this.#subscriptions.set(id, onEvent);
  }

  /** The next request id that is not in flight (ids wrap around after 2^32-1). */
  #allocateId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= MAX_U32 ? 1 : id + 1;
      if (!this.#pending.has(id) && !this.#subscriptions.has(id)) return id;
    }
  }

  /** Gives up on request `id` locally; a REQUEST is also cancelled at the supervisor. */
  #abandon(id: number, error: MuxvisorError): void {
    const pending = this.#settle(id);
    if (pending === null) return;
    if (pending.kind === Kind.Request && !this.transport.closed) {
      this.transport.send(encodeMessage({ kind: Kind.Cancel, id, reason: error.message }));
    }
    pending.reject(withStack(error, pending.stack));
  }

  #settle(id: number): Pending | null {
    const pending = this.#pending.get(id);
    if (pending === undefined) return null;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.cleanup();
    if (this.#pending.size === 0) {
      this.transport.unref();
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    }
    return pending;
  }

  #onFrame(f: Frame): void {
    const m = decodeSafely(f);
    if (m instanceof MuxvisorError) {
      this.transport.destroy(m);
      return;
    }
    switch (m.kind) {
      case Kind.Response:
      case Kind.Pong: {
        const pending = this.#settle(m.id);
        pending?.resolve(m.kind === Kind.Response ? m.result : m.data);
        return;
      }
      case Kind.Error: {
        const error = MuxvisorError.fromWire(m.error);
        if (m.id !== 0) {
          const pending = this.#settle(m.id);
          pending?.reject(withStack(error, pending.stack));
        } else if (m.fatal) {
          this.#closeError = error;
        } else {
          this.emit('warning', error);
        }
        return;
      }
      case Kind.Event:
        this.#subscriptions.get(m.id)?.(m);
        this.emit('event', m);
        return;
      case Kind.Goodbye:
        this.#goodbye = m.reason;
        return;
      case Kind.Ping:
        this.transport.send(encodeFrameWithValue({ kind: Kind.Pong, flags: 0, id: m.id, channel: 0 }, m.data));
        return;
      default:
        return;
    }
  }

  #onClose(error: MuxvisorError | null): void {
    const cause = this.#closeError ?? error;
    const closed = this.#closedError('the request', cause);
    for (const id of [...this.#pending.keys()]) {
      const pending = this.#settle(id);
      pending?.reject(withStack(new MuxvisorError(ErrorCode.ConnectionClosed, `${pending.what}: ${closed.message}`, { cause, data: closed.data }), pending.stack));
    }
    this.#subscriptions.clear();
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
    this.emit('close', cause ?? (this.#goodbye === null ? closed : null));
  }

  #closedError(what: string, cause: MuxvisorError | null = this.#closeError): MuxvisorError {
    const why = this.#goodbye !== null ? `the supervisor said goodbye (${this.#goodbye})`
      : cause !== null ? `the connection closed: ${cause.code} ${cause.message}`
        : 'the connection to the supervisor closed';
    return new MuxvisorError(ErrorCode.ConnectionClosed, `${what} failed: ${why}`, { cause, data: { goodbye: this.#goodbye, code: cause?.code ?? null } });
  }

  /** Closes after the requests in flight are answered (each within its own deadline). */
  async close(): Promise<void> {
    if (this.transport.closed) return;
    if (this.#pending.size > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    if (this.transport.closed) return;
    this.transport.send(encodeMessage({ kind: Kind.Goodbye, reason: 'client closed' }));
    await this.transport.end();
  }

  /** Closes now: requests in flight reject with MUXVISOR_CONNECTION_CLOSED. */
  destroy(error: MuxvisorError | null = null): void {
    if (error !== null) this.#closeError = error;
    this.transport.destroy(error);
  }
}

function decodeSafely(f: Frame): Message | MuxvisorError {
  try {
    return decodeMessage(f);
  } catch (error) {
    return error instanceof MuxvisorError ? error : new MuxvisorError(ErrorCode.Internal, (error as Error).message);
  }
}

/** Gives `error` the stack of the call that made the request (its first line stays its own). */
function withStack(error: MuxvisorError, stack: string | undefined): MuxvisorError {
  if (stack !== undefined) error.stack = `${error.name}: ${error.message}\n${stack.split('\n').slice(2).join('\n')}`;
  return error;
}

