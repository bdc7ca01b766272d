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
  Deadlines, encodeFrameScratch, encodeFrameWithValue, encodeMessage, type FrameHeader, HEADER_BYTES, type ScratchFrame, ErrorCode, type Event, type Frame, decodeMessage, Kind, kindName,
  type Message, MuxvisorError, PROTOCOL_VERSIONS, type Welcome, MAX_U32,
} from '../protocol/index.js';
import { aborted } from './abort.js';
import { openSocket, Transport } from './transport.js';

export interface CallOptions {
  /** @default the connection's `requestTimeoutMs` */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A request waiting for its one answer. */
class Pending {
  /** Deadlines' slot: the bucket this request waits in, 0 once settled. */
  deadlineBucket = 0;
  readonly id: number;
  readonly kind: number;
  readonly what: string;
  readonly timeoutMs: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: MuxvisorError) => void;
  /** Set when the caller gave an AbortSignal: the listener to remove when the request settles. */
  abort: { signal: AbortSignal; listener: () => void } | null = null;

  constructor(id: number, kind: number, what: string, timeoutMs: number, resolve: (value: unknown) => void, reject: (error: MuxvisorError) => void) {
    this.id = id;
    this.kind = kind;
    this.what = what;
    this.timeoutMs = timeoutMs;
    this.resolve = resolve;
    this.reject = reject;
  }
}

interface Subscription {
  onEvent: (event: Event) => void;
  onEnd: (error: MuxvisorError) => void;
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
  readonly #deadlines = new Deadlines<Pending>((p) =>
    this.#abandon(p.id, new MuxvisorError(ErrorCode.Timeout, `${p.what} timed out after ${p.timeoutMs} ms (${this.#pending.size} pending)`, { data: { timeoutMs: p.timeoutMs, pending: this.#pending.size } })));
  readonly #subscriptions = new Map<number, Subscription>();
  #nextId = 1;
  /** The header of outgoing requests, filled in per call (encoding copies it at once). */
  readonly #header = { kind: 0, flags: 0, id: 0, channel: 0 };
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
    }, { reuseFrames: true }); // every frame is decoded before its callback returns
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
    return this.#call(this.#allocateId(), kind, channel, value, what, options);
  }

  /**
   * A REQUEST that becomes a subscription (PROTOCOL.md section 8): resolves with its answer, then
   * `onEvent` gets its EVENTs in order until `end()` (which sends CANCEL) or until the
   * subscription ends on its own (`onEnd` gets why: the supervisor's error, or the connection
   * closing). While it lives, it keeps the process alive, as a pending request does.
   * `first`, when given, sees the answer before `onEvent` sees any EVENT: EVENTs that arrive
   * before it (they can come in the same read as the answer) wait, so a replay carried in the
   * answer is delivered ahead of the live events.
   */
  async subscribe(
    op: string, args: unknown, onEvent: (event: Event) => void, onEnd: (error: MuxvisorError) => void, options: CallOptions = {},
    first?: (result: unknown) => void,
  ): Promise<{ result: unknown; end: () => void }> {
    const id = this.#allocateId();
    let held: Event[] | null = [];
    this.#subscriptions.set(id, { onEvent: (e) => (held === null ? onEvent(e) : held.push(e)), onEnd });
    let result: unknown;
    try {
      result = await this.#call(id, Kind.Request, 0, args === undefined ? { op } : { op, args }, `subscription \`${op}\``, options);
    } catch (error) {
      this.#subscriptions.delete(id);
      throw error;
    }
    let end = () => undefined as void;
    if (this.#subscriptions.has(id)) {
      this.transport.ref();
      end = () => {
        if (!this.#subscriptions.delete(id)) return;
        if (!this.transport.closed) this.transport.send(encodeMessage({ kind: Kind.Cancel, id, reason: 'unsubscribed' }));
        this.#maybeUnref();
      };
    }
    first?.(result);
    const waiting = held;
    held = null;
    for (const e of waiting) onEvent(e);
    return { result, end };
  }

  #maybeUnref(): void {
    if (this.#pending.size === 0 && this.#subscriptions.size === 0) this.transport.unref();
  }

  #call(id: number, kind: number, channel: number, value: unknown, what: string, options: CallOptions): Promise<unknown> {
    if (this.transport.closed) return Promise.reject(this.#closedError(what));
    if (options.signal?.aborted) return Promise.reject(aborted(options.signal, what));
    const timeoutMs = options.timeoutMs ?? this.#requestTimeoutMs;
    // No call-site stack is captured: `new Error()` costs ~4 µs here, more than the round trip's
    // own work. Errors name the request, its run and the numbers instead.
    this.#header.kind = kind;
    this.#header.id = id;
    this.#header.channel = channel;
    let frame: ScratchFrame;
    try {
      frame = this.#checked(encodeFrameScratch(this.#header, value), what);
    } catch (error) {
      return Promise.reject(error);
    }
    this.transport.sendRange(frame.buffer, frame.start, frame.end);
    return new Promise((resolve, reject) => {
      const pending = new Pending(id, kind, what, timeoutMs, resolve, reject);
      const signal = options.signal;
      if (signal !== undefined) {
        const listener = () => this.#abandon(id, aborted(signal, what));
        pending.abort = { signal, listener };
        signal.addEventListener('abort', listener, { once: true });
      }
      this.#pending.set(id, pending);
      this.#deadlines.add(pending, timeoutMs);
      if (this.#pending.size === 1) this.transport.ref();
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

  /** Fire-and-forget with no allocation: `value` packed straight into the outgoing batch. */
  sendValue(header: FrameHeader, value: unknown): void {
    if (this.transport.closed) throw this.#closedError('sending');
    const frame = this.#checked(encodeFrameScratch(header, value), 'the record');
    this.transport.sendRange(frame.buffer, frame.start, frame.end);
  }

  /**
   * Throws MUXVISOR_FRAME_TOO_LARGE for a frame the supervisor would refuse (it closes the
   * connection for one): such a frame is never sent.
   */
  #checked(frame: ScratchFrame, what: string): ScratchFrame {
    const size = frame.end - frame.start - HEADER_BYTES;
    const limit = this.welcome.limits.maxPayloadBytes;
    if (size > limit) {
      throw new MuxvisorError(ErrorCode.FrameTooLarge, `${what} is ${size} bytes encoded, more than the supervisor's limit of ${limit} bytes; nothing was sent`, {
        data: { bytes: size, limit },
      });
    }
    return frame;
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
    pending.reject(error);
  }

  #endSubscription(id: number, error: MuxvisorError): void {
    const subscription = this.#subscriptions.get(id);
    if (subscription === undefined) return;
    this.#subscriptions.delete(id);
    subscription.onEnd(error);
    if (!this.transport.closed) this.#maybeUnref();
  }

  #settle(id: number): Pending | null {
    const pending = this.#pending.get(id);
    if (pending === undefined) return null;
    this.#pending.delete(id);
    this.#deadlines.delete(pending);
    pending.abort?.signal.removeEventListener('abort', pending.abort.listener);
    if (this.#pending.size === 0) {
      this.#maybeUnref();
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
          if (pending !== null) pending.reject(error);
          else this.#endSubscription(m.id, error);
        } else if (m.fatal) {
          this.#closeError = error;
        } else {
          this.emit('warning', error);
        }
        return;
      }
      case Kind.Event:
        this.#subscriptions.get(m.id)?.onEvent(m);
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
      pending?.reject(new MuxvisorError(ErrorCode.ConnectionClosed, `${pending.what}: ${closed.message}`, { cause, data: closed.data }));
    }
    for (const id of [...this.#subscriptions.keys()]) this.#endSubscription(id, closed);
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


