/**
 * One client connection: handshake first, then one dispatch switch over the kinds. The hot path
 * (PUBLISH) reads only the frame header, checks the payload is well-formed msgpack, and copies
 * its bytes to the run's worker. Bad input of any kind closes this connection only.
 *
 * Contracts: every request this connection sends is answered exactly once while it is open
 * (`#inflight` is the single owner of that promise); the socket has one writer (`writer`); a
 * fatal error sends one ERROR frame with id 0 and `fatal: true`, then closes.
 */
import { readSync } from 'node:fs';
import type { Socket } from 'node:net';
import {
  decodeMessage, HEADER_BYTES, encodeFrame, encodeFrameWithValue, encodeMessage, ErrorCode, type Frame, FrameDecoder,
  Kind, kindName, MAX_DECODED_PAYLOAD_BYTES, MAX_HELLO_PAYLOAD_BYTES, MuxvisorError, negotiateCaps, negotiateVersion, tokenMatches,
} from '../protocol/index.js';
import type { Logger } from './log.js';
import { PayloadChecks } from './payload-checks.js';
import type { ResolvedOptions } from './options.js';
import type { Owner, RunStream } from './run-stream.js';
import type { StreamMux } from './stream-mux.js';
import type { WorkerPool } from './workers/pool.js';
import { FrameWriter } from './writer.js';

export const ConnState = { AwaitHello: 'await-hello', Open: 'open', Closing: 'closing', Closed: 'closed' } as const;
export type ConnState = (typeof ConnState)[keyof typeof ConnState];

/** A request waiting for its one answer. */
export interface Inflight {
  kind: number;
  /** The run it went to; null for supervisor operations. */
  run: RunStream | null;
  op: string | null;
  /** For supervisor operations: aborted when the request is cancelled or the connection closes. */
  abort?: AbortController;
}

/** What a supervisor operation gets besides its arguments. */
export interface OpContext {
  conn: Connection;
  /** The request id; a subscription's EVENTs carry it. */
  id: number;
  /** Aborted when the client cancels the request or goes away: long waits must end then. */
  signal: AbortSignal;
  /**
   * Makes this request a subscription (PROTOCOL.md section 8): after its answer, `conn.event(id,
   * ...)` sends EVENTs, until the client cancels it or leaves; then `cancel` is called once.
   */
  subscribe(cancel: () => void): void;
}

/** What a connection needs from the supervisor. */
export interface ConnectionHost {
  readonly options: ResolvedOptions;
  readonly token: string;
  readonly tokenPath: string;
  readonly server: { name: string; version: string; pid: number };
  readonly mux: StreamMux;
  readonly pool: WorkerPool;
  /** False while draining: new runs and requests are refused with MUXVISOR_SHUTTING_DOWN. */
  accepting(): boolean;
  /** Runs supervisor operation `op` and answers request `id` of `conn`. */
  operation(ctx: OpContext, op: string, args: unknown, timeoutMs: number | undefined): void;
  closed(conn: Connection): void;
}

export class Connection implements Owner {
  readonly id: number;
  readonly socket: Socket;
  readonly writer: FrameWriter;
  readonly connectedAt = Date.now();
  log: Logger;
  state: ConnState = ConnState.AwaitHello;
  pid = 0;
  name = '';
  bytesIn = 0;
  recordsIn = 0;
  requestsIn = 0;
  readonly #host: ConnectionHost;
  readonly #decoder: FrameDecoder;
  readonly #inflight = new Map<number, Inflight>();
  /** Live subscriptions by request id, with what ends each. */
  readonly #subscriptions = new Map<number, () => void>();
  readonly #channels = new Map<number, RunStream>();
  #nextChannel = 1;
  readonly #warned = new Set<number>();
  /** Records dropped per channel because its run no longer took records: a SYNC there must fail. */
  readonly #dropped = new Map<number, number>();
  readonly #paused = new Set<string>();
  #handshakeTimer: NodeJS.Timeout | null;
  /** Destroys the socket of a peer that does not close its end after ours; cleared on close (it holds this connection). */
  #lingerTimer: NodeJS.Timeout | null = null;
  /** The chunk being decoded: frames whose payload lies in it have their header just before. */
  #chunk: Buffer | null = null;
  /** Consecutive PUBLISH frames of this chunk for one run, not yet handed over. */
  #span: { run: RunStream; source: Buffer; start: number; end: number; count: number } | null = null;
  #closeReason = 'client closed the connection';
  /** Main-thread ms spent on this connection's input since it last yielded (BUSY_SLICE_MS). */
  #busyMs = 0;
  /** REQUESTs to runs in flight (see RUN_REQUESTS_AHEAD). */
  #runRequests = 0;
  /** While set, input is collected here instead of taken (#takeWhatIsLeft). */
  #collecting: Buffer[] | null = null;
  /** The part of a chunk left for after a yield (#take), when there is one. */
  #rest: Buffer | null = null;
  /** Checks the payloads this thread does not decode; large ones as they arrive. */
  readonly #payloads = new PayloadChecks();

  constructor(id: number, socket: Socket, host: ConnectionHost, log: Logger) {
    this.id = id;
    this.socket = socket;
    this.writer = new FrameWriter(socket, (error) => this.#takeWhatIsLeft(error));
    this.#host = host;
    this.log = log.child({ conn: id });
    // Frames are reused: nothing here keeps a frame object past its callback.
    this.#decoder = new FrameDecoder((frame) => this.#onFrame(frame), {
      maxPayloadBytes: host.options.maxPayloadBytes, reuseFrames: true,
      onPayloadProgress: (h, payload, filled) => {
        if (this.state === ConnState.Open) this.#payloads.progress(h, payload, filled);
      },
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('close', () => this.#onClose());
    socket.on('error', (error) => this.log.debug({ err: error.message }, 'socket error'));
    socket.on('drain', () => this.#resume('output'));
    this.#handshakeTimer = setTimeout(() => {
      this.fatal(new MuxvisorError(ErrorCode.Timeout, `no HELLO within ${host.options.handshakeTimeoutMs} ms of connecting`));
    }, host.options.handshakeTimeoutMs);
  }

  get inflightCount(): number {
    return this.#inflight.size;
  }

  get channelCount(): number {
    return this.#channels.size;
  }

  /** Runs this connection owns, with their channels. */
  runs(): Array<[number, RunStream]> {
    return [...this.#channels];
  }

  /** An answer from a worker or an operation: written only if request `id` still waits for one. */
  answer(id: number, frame: Buffer): void {
    const entry = this.#inflight.get(id);
    if (entry === undefined) return;
    this.#inflight.delete(id);
    this.#settled(entry);
    if (this.state === ConnState.Closed) return;
    this.#send(frame);
  }

  /** Answers request `id` (if it still waits) with `error`. */
  fail(id: number, error: MuxvisorError): void {
    const entry = this.#inflight.get(id);
    if (entry === undefined) return;
    this.#inflight.delete(id);
    this.#settled(entry);
    entry.abort?.abort(error);
    this.#endSubscription(id);
    this.#send(encodeMessage({ kind: Kind.Error, id, error: error.toWire(), fatal: false }));
  }

  get subscriptionCount(): number {
    return this.#subscriptions.size;
  }

  /**
   * An EVENT for subscription `id`. A client that leaves its socket unread while events pile up
   * loses the subscription (one ERROR with its id, MUXVISOR_OVERLOADED), never the supervisor's memory.
   */
  event(id: number, event: { topic: string; seq: number; time: number; data: unknown }): void {
    if (!this.#subscriptions.has(id) || this.state !== ConnState.Open) return;
    const waiting = this.socket.writableLength;
    if (waiting > 2 * this.#host.options.outputHighWaterBytes) {
      this.#endSubscription(id);
      this.#reply(id, new MuxvisorError(ErrorCode.Overloaded, `subscription ${id} ended at ${event.topic} seq ${event.seq - 1}: ${waiting} bytes were waiting unread on this connection; subscribe again with since=${event.seq - 1}`, {
        data: { topic: event.topic, seq: event.seq - 1, waitingBytes: waiting },
      }));
      return;
    }
    this.#send(encodeMessage({ kind: Kind.Event, id, topic: event.topic, seq: event.seq, time: event.time, data: event.data }));
  }

  #endSubscription(id: number): void {
    const cancel = this.#subscriptions.get(id);
    if (cancel === undefined) return;
    this.#subscriptions.delete(id);
    cancel();
  }

  /**
   * Answers every request waiting on one of `runs` with `error`, except FINISH (retried by the
   * mux) and the SYNCs to runs in `resumed`, which stay waiting and are returned to be sent again.
   */
  failPendingOn(runs: ReadonlySet<RunStream>, error: MuxvisorError, resumed: ReadonlySet<RunStream>): Array<{ id: number; run: RunStream }> {
    const kept: Array<{ id: number; run: RunStream }> = [];
    for (const [id, entry] of this.#inflight) {
      if (entry.run === null || !runs.has(entry.run) || entry.kind === Kind.Finish) continue;
      if (entry.kind === Kind.Sync && resumed.has(entry.run)) kept.push({ id, run: entry.run });
      else this.fail(id, error);
    }
    return kept;
  }

  dropChannel(channel: number): void {
    this.#channels.delete(channel);
  }

  /** Says goodbye, flushes, and closes (the supervisor is stopping or idle). */
  goodbye(reason: string): void {
    if (this.state === ConnState.Closing || this.state === ConnState.Closed) return;
    this.#send(encodeMessage({ kind: Kind.Goodbye, reason }));
    this.#beginClose(`supervisor said goodbye: ${reason}`);
  }

  #onData(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    if (this.#collecting !== null) this.#collecting.push(chunk);
    else this.#take(chunk);
  }

  /**
   * Decodes `chunk` until it is used up or this connection has had BUSY_SLICE_MS of the main
   * thread; then it stops being read, and what is left of the chunk waits, until the event loop
   * has served everyone else once. libuv reads a socket up to 32 times in a row and one 64 KiB
   * read holds up to ~3,000 requests: a client sending megabytes of tiny msgpack values, or
   * thousands of pipelined requests, held the thread for 40-100 ms otherwise.
   */
  #take(chunk: Buffer): void {
    const started = performance.now();
    const deadline = started + BUSY_SLICE_MS - this.#busyMs;
    let frames = 0;
    // The clock is read every 32 frames: a record costs well under a microsecond to take.
    const stop = () => (++frames & 31) === 0 && this.state === ConnState.Open && performance.now() >= deadline;
    const used = this.#decode(chunk, stop);
    this.#busyMs += performance.now() - started;
    const rest = used < chunk.length && this.state === ConnState.Open ? chunk.subarray(used) : null;
    if (rest === null && (this.#busyMs < BUSY_SLICE_MS || this.state !== ConnState.Open)) {
      this.#resume('turn'); // the rest of a chunk, taken after a yield: read on
      return;
    }
    this.#busyMs = 0;
    if (!this.#paused.has('turn')) this.#pause('turn');
    this.#rest = rest;
    setImmediate(() => {
      const left = this.#rest;
      this.#rest = null;
      if (left !== null && this.state === ConnState.Open) this.#take(left);
      else this.#resume('turn');
    });
  }

  /**
   * A write to the client failed: it is gone (EPIPE, ECONNRESET), and Node destroys the socket
   * right after this, unread input and all. That input can be what the client sent last as it
   * died: the FINISH of a process killed by SIGTERM (the library writes it, then re-raises the
   * signal), records held back by push-back. So it is taken now, in order: the rest of a chunk
   * waiting for a yield, what Node read but has not passed on (the socket may be paused), and what
   * is still in the kernel, read straight from the descriptor (up to LEFT_MAX_BYTES).
   */
  #takeWhatIsLeft(error: Error): void {
    if (this.state !== ConnState.Open && this.state !== ConnState.AwaitHello) return;
    const chunks: Buffer[] = this.#rest === null ? [] : [this.#rest];
    this.#rest = null;
    // read() hands out what Node holds as 'data' events, which #onData collects here meanwhile.
    this.#collecting = chunks;
    try {
      while (this.socket.read() !== null);
    } catch {
      // nothing buffered can be had: go on with the descriptor
    }
    this.#collecting = null;
    const fd = descriptorOf(this.socket);
    let read = 0;
    if (fd !== null) {
      const buffer = Buffer.allocUnsafe(64 * 1024);
      while (read < LEFT_MAX_BYTES) {
        let n: number;
        try {
          n = readSync(fd, buffer, 0, buffer.length, null);
        } catch {
          break; // EAGAIN: nothing more is waiting (or the descriptor is unusable)
        }
        if (n === 0) break;
        chunks.push(Buffer.from(buffer.subarray(0, n)));
        this.bytesIn += n;
        read += n;
      }
    }
    this.log.debug({ err: error.message, kernelBytes: read }, 'write failed: the client is gone; taking what it sent last');
    for (const chunk of chunks) {
      if (this.state !== ConnState.Open && this.state !== ConnState.AwaitHello) break;
      this.#decode(chunk);
    }
  }

  /**
   * Takes the frames of `chunk` until it is used up or `stop` says so; returns the bytes used.
   * Bad input is fatal to this connection (the chunk's rest is then of no use).
   */
  #decode(chunk: Buffer, stop?: () => boolean): number {
    let used = chunk.length;
    this.#chunk = chunk;
    try {
      used = this.#decoder.push(chunk, stop);
      this.#flushSpan();
    } catch (error) {
      this.#flushSpan();
      this.fatal(error);
    }
    this.#chunk = null;
    this.#payloads.release();
    return used;
  }

  #onFrame(f: Frame): void {
    if (this.state === ConnState.Open) {
      if (f.kind === Kind.Publish) this.#publish(f);
      else {
        this.#flushSpan(); // everything published before this frame goes first
        this.#dispatch(f);
      }
    } else if (this.state === ConnState.AwaitHello) {
      this.#hello(f);
    }
  }

  /**
   * Hands the current span of PUBLISH frames to the run's worker in one copy. Spans never cross
   * another kind of frame, a chunk boundary or a change of run, so order is kept.
   */
  #flushSpan(): void {
    const span = this.#span;
    if (span === null) return;
    this.#span = null;
    this.#host.mux.frames(span.run, this.id, span.source, span.start, span.end, span.count);
    if (this.#host.pool.mustWait(span.run.worker, this.id, span.end - span.start)) this.#waitFor(span.run);
  }

  #publish(f: Frame): void {
    if (f.id !== 0) throw bad(`publish: header \`id\` must be 0, got ${f.id}`);
    if (f.end === f.start) throw bad('publish: payload must hold the record, got nothing');
    this.#payloads.check(f);
    const run = this.#channels.get(f.channel);
    if (run === undefined || !run.live) {
      this.#unknownChannel(f.channel, run);
      return;
    }
    this.recordsIn++;
    const headerAt = f.start - HEADER_BYTES;
    if (f.source !== this.#chunk) {
      // Reassembled across chunks: its header is not beside its payload. Send it on its own.
      this.#flushSpan();
      this.#host.mux.record(run, this.id, f.source, f.start, f.end);
      if (this.#host.pool.mustWait(run.worker, this.id, f.end - f.start)) this.#waitFor(run);
      return;
    }
    const span = this.#span;
    if (span !== null && span.run === run && span.end === headerAt) {
      span.end = f.end;
      span.count++;
      return;
    }
    this.#flushSpan();
    this.#span = { run, source: f.source, start: headerAt, end: f.end, count: 1 };
  }

  #dispatch(f: Frame): void {
    if (f.end - f.start > MAX_DECODED_PAYLOAD_BYTES && this.#oversized(f)) return;
    switch (f.kind) {
      case Kind.Request: {
        if (!this.#admit(f)) return;
        this.requestsIn++;
        if (f.channel === 0) {
          const m = decodeMessage(f);
          if (m.kind !== Kind.Request) return;
          const abort = new AbortController();
          this.#inflight.set(f.id, { kind: f.kind, run: null, op: m.op, abort });
          if (!this.#host.accepting() && m.op !== 'status') return this.fail(f.id, shuttingDown());
          const id = f.id;
          this.#host.operation({
            conn: this, id, signal: abort.signal,
            subscribe: (cancel) => {
              if (this.state === ConnState.Open) this.#subscriptions.set(id, cancel);
              else cancel();
            },
          }, m.op, m.args, m.timeoutMs);
          return;
        }
        const run = this.#run(f);
        if (run === null) return;
        this.#payloads.check(f);
        this.#inflight.set(f.id, { kind: f.kind, run, op: null});
        this.#host.mux.request(run, this.id, f.id, f.source, f.start, f.end);
        if (++this.#runRequests >= RUN_REQUESTS_AHEAD) this.#pause('requests');
        return;
      }
      case Kind.Ping: {
        if (f.id === 0) throw bad('ping: header `id` must be non-zero, got 0');
        if (f.channel !== 0) throw bad(`ping: header \`channel\` must be 0, got ${f.channel}`);
        this.#payloads.check(f);
        this.#send(encodeFrame({ kind: Kind.Pong, flags: 0, id: f.id, channel: 0 }, f.payload));
        return;
      }
      case Kind.Cancel: {
        const m = decodeMessage(f);
        if (m.kind !== Kind.Cancel) return;
        const subscription = this.#subscriptions.get(m.id);
        if (subscription !== undefined) {
          this.#subscriptions.delete(m.id);
          subscription();
          return;
        }
        const entry = this.#inflight.get(m.id);
        // Only REQUEST can be cancelled; OPEN, SYNC, FINISH and the rest always complete.
        if (entry === undefined || entry.kind !== Kind.Request) return;
        if (entry.run !== null) this.#host.mux.cancel(entry.run, this.id, m.id);
        else this.fail(m.id, new MuxvisorError(ErrorCode.Cancelled, `request ${m.id} (\`${entry.op}\`) was cancelled`));
        return;
      }
      case Kind.Open: {
        if (!this.#admit(f)) return;
        const m = decodeMessage(f);
        if (m.kind !== Kind.Open) return;
        if (!this.#host.accepting()) return this.#reply(f.id, shuttingDown());
        const channel = this.#nextChannel++;
        try {
          const run = this.#host.mux.open(this, f.id, channel, m, m.dedicated === true);
          this.#channels.set(channel, run);
          this.#inflight.set(f.id, { kind: f.kind, run, op: null});
        } catch (error) {
          this.#reply(f.id, asError(error));
        }
        return;
      }
      case Kind.Attach: {
        if (!this.#admit(f)) return;
        const m = decodeMessage(f);
        if (m.kind !== Kind.Attach) return;
        try {
          const { run, channel } = this.#host.mux.attach(this, this.#nextChannel, m.run);
          if (channel === this.#nextChannel) this.#nextChannel++;
          this.#channels.set(channel, run);
          this.#send(encodeFrameWithValue({ kind: Kind.Response, flags: 0, id: f.id, channel: 0 }, { run: run.id, channel, records: run.records }));
        } catch (error) {
          this.#reply(f.id, asError(error));
        }
        return;
      }
      case Kind.Sync: {
        this.#payloads.check(f);
        if (!this.#admit(f)) return;
        const run = this.#run(f, true);
        if (run === null) return;
        // A SYNC promises that everything this connection published there is durable: when some
        // of it was dropped (the run stopped taking records first), that promise cannot be kept.
        if (this.#refuseDropped(f, run)) return;
        this.#inflight.set(f.id, { kind: f.kind, run, op: null});
        this.#host.mux.sync(run, this.id, f.id);
        return;
      }
      case Kind.Finish: {
        if (!this.#admit(f)) return;
        const m = decodeMessage(f);
        if (m.kind !== Kind.Finish) return;
        const run = this.#run(f, true);
        if (run === null) return;
        if (this.#refuseDropped(f, run)) return;
        this.#inflight.set(f.id, { kind: f.kind, run, op: null});
        const order = { status: m.status ?? 'ok', ...(m.reason === undefined ? {} : { reason: m.reason }), ...(m.exitCode === undefined ? {} : { exitCode: m.exitCode }) };
        this.#host.mux.finish(run, order, { conn: this.id, id: f.id });
        return;
      }
      case Kind.Detach: {
        this.#payloads.check(f);
        if (!this.#admit(f)) return;
        const run = this.#run(f, true);
        if (run === null) return;
        this.#host.mux.release(this, run, `its last owner (${this.#describe()}) detached without finishing`);
        this.#send(encodeFrameWithValue({ kind: Kind.Response, flags: 0, id: f.id, channel: 0 }, { run: run.id }));
        return;
      }
      case Kind.Goodbye: {
        const m = decodeMessage(f);
        this.#beginClose(`client said goodbye: ${m.kind === Kind.Goodbye ? m.reason : ''}`);
        return;
      }
      case Kind.Error: {
        const m = decodeMessage(f);
        this.log.warn({ reported: m.kind === Kind.Error ? m.error : null }, 'client reported an error');
        return;
      }
      case Kind.Pong:
        if (f.id === 0 || f.channel !== 0) throw bad(`pong: header \`id\` must be non-zero and \`channel\` 0, got ${f.id} and ${f.channel}`);
        this.#payloads.check(f);
        return;
      case Kind.Hello:
        throw bad('hello: the handshake is already done (a connection sends HELLO once)');
      case Kind.Welcome:
      case Kind.Response:
      case Kind.Event:
        throw bad(`${kindName(f.kind)}: only the supervisor sends this kind`);
      default:
        throw new MuxvisorError(ErrorCode.UnknownKind, `unknown message kind ${kindName(f.kind)}`, { data: { kind: f.kind } });
    }
  }

  #hello(f: Frame): void {
    if (f.kind !== Kind.Hello) {
      throw new MuxvisorError(ErrorCode.HandshakeRequired, `expected HELLO as the first frame, got ${kindName(f.kind)}`, { data: { kind: f.kind } });
    }
    const bytes = f.end - f.start;
    if (bytes > MAX_HELLO_PAYLOAD_BYTES) {
      throw new MuxvisorError(ErrorCode.FrameTooLarge, `a HELLO of ${bytes} bytes is more than the ${MAX_HELLO_PAYLOAD_BYTES} bytes a HELLO may have`, { data: { bytes, limit: MAX_HELLO_PAYLOAD_BYTES } });
    }
    const m = decodeMessage(f);
    if (m.kind !== Kind.Hello) return;
    if (!tokenMatches(m.token, this.#host.token)) {
      throw new MuxvisorError(ErrorCode.BadToken, `token refused: it is not this supervisor's token (the token is in ${this.#host.tokenPath} and in MUXVISOR_SERVICE)`);
    }
    const version = negotiateVersion(m.versions);
    this.pid = m.pid;
    this.name = m.name;
    this.state = ConnState.Open;
    this.log = this.log.child({ clientPid: m.pid, client: m.name });
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = null;
    const { maxPayloadBytes, maxInFlight } = this.#host.options;
    this.#send(encodeMessage({
      kind: Kind.Welcome, version, connection: this.id, server: this.#host.server, caps: negotiateCaps(m.caps), limits: { maxPayloadBytes, maxInFlight },
    }));
    this.log.debug('handshake done');
  }

  /**
   * A message this thread decodes whole, over MAX_DECODED_PAYLOAD_BYTES (PROTOCOL.md section 9):
   * a request is answered MUXVISOR_INVALID_ARGUMENT unread and the connection goes on; a CANCEL,
   * GOODBYE or ERROR is fatal. Records and PINGs are only checked, never decoded: false for them.
   */
  #oversized(f: Frame): boolean {
    const answered = f.kind === Kind.Request || (f.kind >= Kind.Open && f.kind <= Kind.Detach && f.kind !== Kind.Publish);
    if (!answered && f.kind !== Kind.Cancel && f.kind !== Kind.Goodbye && f.kind !== Kind.Error) return false;
    const bytes = f.end - f.start;
    const data = { bytes, limit: MAX_DECODED_PAYLOAD_BYTES };
    const what = `a ${kindName(f.kind).toUpperCase()} of ${bytes} bytes is more than the ${MAX_DECODED_PAYLOAD_BYTES} bytes the supervisor decodes for one message`;
    if (!answered) throw new MuxvisorError(ErrorCode.FrameTooLarge, what, { data });
    if (this.#admit(f)) this.#reply(f.id, new MuxvisorError(ErrorCode.InvalidArgument, `${what} (records may be larger): send less`, { data }));
    return true;
  }

  /** A request left `#inflight`: a request to a run frees its place in `RUN_REQUESTS_AHEAD`. */
  #settled(entry: Inflight): void {
    if (entry.kind === Kind.Request && entry.run !== null && --this.#runRequests <= RUN_REQUESTS_AHEAD / 2) this.#resume('requests');
  }

  /** Checks a request's id: non-zero and not in flight (else fatal), under the in-flight limit. */
  #admit(f: Frame): boolean {
    if (f.id === 0) throw bad(`${kindName(f.kind)}: header \`id\` must be non-zero, got 0`);
    if (this.#inflight.has(f.id)) throw bad(`${kindName(f.kind)}: request id ${f.id} is already in flight`);
    if (this.#subscriptions.has(f.id)) throw bad(`${kindName(f.kind)}: request id ${f.id} is a live subscription (cancel it before reusing its id)`);
    const limit = this.#host.options.maxInFlight;
    if (this.#inflight.size >= limit) {
      this.#reply(f.id, new MuxvisorError(ErrorCode.Overloaded, `${this.#inflight.size} requests in flight on this connection; the limit is ${limit}`, { data: { inflight: this.#inflight.size, limit } }));
      return false;
    }
    return true;
  }

  /** The run on the frame's channel, or null after answering MUXVISOR_UNKNOWN_RUN. */
  #run(f: Frame, finishingToo = false): RunStream | null {
    const run = f.channel === 0 ? undefined : this.#channels.get(f.channel);
    if (run !== undefined && (run.live || (finishingToo && run.state === 'finishing'))) return run;
    this.#reply(f.id, new MuxvisorError(ErrorCode.UnknownRun, run ? `run ${run.id} is ${run.state}` : `no open run on channel ${f.channel}`, { data: { channel: f.channel } }));
    return null;
  }

  /**
   * A SYNC or FINISH answered with a result promises that everything this connection published to
   * the run is durable. When some of it was dropped (the run stopped taking records first: another
   * owner or a drain finished it), that promise cannot be kept: answer MUXVISOR_UNKNOWN_RUN instead.
   */
  #refuseDropped(f: Frame, run: RunStream): boolean {
    const dropped = this.#dropped.get(f.channel) ?? 0;
    if (dropped === 0) return false;
    this.#reply(f.id, new MuxvisorError(ErrorCode.UnknownRun,
      `run ${run.id} is ${run.state}: ${dropped} records published to it on channel ${f.channel} after it stopped taking records were dropped, so they are not durable`,
      { data: { channel: f.channel, run: run.id, dropped } }));
    return true;
  }

  /** Records to a channel that is not open here are dropped, with one warning per channel. */
  #unknownChannel(channel: number, run: RunStream | undefined): void {
    this.#dropped.set(channel, (this.#dropped.get(channel) ?? 0) + 1);
    if (this.#warned.has(channel)) return;
    this.#warned.add(channel);
    const why = run?.finishOrder?.reason ? ` (${run.finishOrder.status}: ${run.finishOrder.reason})` : '';
    const message = run ? `run ${run.id} is ${run.state}${why}: records published to it on channel ${channel} are dropped` : `no open run on channel ${channel}: records published to it are dropped`;
    this.#send(encodeMessage({ kind: Kind.Error, id: 0, error: { code: ErrorCode.UnknownRun, message, data: { channel } }, fatal: false }));
  }

  /** An immediate error answer to a request that was never registered in flight. */
  #reply(id: number, error: MuxvisorError): void {
    this.#send(encodeMessage({ kind: Kind.Error, id, error: error.toWire(), fatal: false }));
  }

  #send(frame: Buffer): void {
    this.writer.write(frame);
    if (this.socket.writableLength > this.#host.options.outputHighWaterBytes) this.#pause('output');
  }

  #waitFor(run: RunStream): void {
    const reason = `worker:${run.worker.index}`;
    if (this.#paused.has(reason)) return;
    this.#pause(reason);
    run.worker.waiters.add(() => this.#resume(reason));
  }

  #pause(reason: string): void {
    if (this.#paused.size === 0) this.socket.pause();
    this.#paused.add(reason);
  }

  #resume(reason: string): void {
    if (!this.#paused.delete(reason) || this.#paused.size > 0 || this.state !== ConnState.Open) return;
    this.socket.resume();
  }

  /** Sends a fatal ERROR (id 0) and closes: for bad input, found here or by a worker. */
  fatal(error: unknown): void {
    if (this.state === ConnState.Closing || this.state === ConnState.Closed) return;
    const e = asError(error);
    this.log.warn({ code: e.code, err: e.message }, 'closing connection after bad input');
    this.#send(encodeMessage({ kind: Kind.Error, id: 0, error: e.toWire(), fatal: true }));
    this.#beginClose(`bad input: ${e.code}`);
  }

  /** Stops taking frames, gives up this connection's runs and requests, flushes, and closes. */
  #beginClose(reason: string): void {
    if (this.state === ConnState.Closing || this.state === ConnState.Closed) return;
    this.state = ConnState.Closing;
    this.#closeReason = reason;
    this.#releaseAll();
    this.writer.end();
    // A peer that never closes its end must not keep the socket forever.
    this.#lingerTimer = setTimeout(() => this.socket.destroy(), 2_000).unref();
  }

  /** The client ended its side. Inside a frame that is MUXVISOR_TRUNCATED, said before we close. */
  #onEnd(): void {
    if (this.state === ConnState.Open || this.state === ConnState.AwaitHello) {
      try {
        this.#decoder.end();
      } catch (error) {
        this.fatal(error);
        return;
      }
      this.#beginClose(this.#closeReason);
    } else {
      this.writer.end();
    }
  }

  #onClose(): void {
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    this.#releaseAll();
    this.state = ConnState.Closed;
    this.#host.closed(this);
  }

  #releaseAll(): void {
    const hadRequests = this.#inflight.size > 0;
    for (const entry of this.#inflight.values()) entry.abort?.abort(new MuxvisorError(ErrorCode.ConnectionClosed, `the connection closed: ${this.#closeReason}`));
    this.#inflight.clear();
    this.#runRequests = 0;
    for (const id of [...this.#subscriptions.keys()]) this.#endSubscription(id);
    const runs = new Set(this.#channels.values());
    for (const run of runs) this.#host.mux.release(this, run, `its last owner (${this.#describe()}) went away without finishing: ${this.#closeReason}`);
    this.#channels.clear();
    if (hadRequests || runs.size > 0) this.#host.mux.connectionGone(this.id);
  }

  #describe(): string {
    return `connection ${this.id}, pid ${this.pid}${this.name ? ` ${this.name}` : ''}`;
  }
}

/**
 * REQUESTs to runs one connection may have in flight before the supervisor stops reading it; it
 * reads on once half of them are answered (PROTOCOL.md section 11: a flood is slowed down). When
 * shared workers took entries in arrival order, 4,400 pipelined `echo`s of one client held another
 * client's request to its own run, on the same worker, for 80 ms (30 ms with this bound); they now
 * take runs in turn (workers/lanes.ts), and this bound still keeps the queue, and the memory it
 * holds, short. What one read already holds (up to ~1,400 small requests) is still taken. 1,024 keeps
 * one client's pipelining: 269k requests/s at 1,024 in flight against 283k without (spread 18 %);
 * 256 cost it 16 %.
 */
const RUN_REQUESTS_AHEAD = 1024;

/** The most of a dead client's unread input taken from the kernel after a failed write (#takeWhatIsLeft). */
const LEFT_MAX_BYTES = 16 * 1024 * 1024;

/**
 * The file descriptor under a connected socket, or null. Node has no public way to read a socket
 * synchronously; its stream handle's `fd` is what that takes (Unix only; -1 once closed).
 */
function descriptorOf(socket: Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/** Main-thread time one connection's input may take before it lets the others go first (#take). */
const BUSY_SLICE_MS = 8;

function bad(message: string): MuxvisorError {
  return new MuxvisorError(ErrorCode.BadMessage, message);
}

function shuttingDown(): MuxvisorError {
  return new MuxvisorError(ErrorCode.ShuttingDown, 'the supervisor is shutting down and takes no new work');
}

function asError(error: unknown): MuxvisorError {
  return error instanceof MuxvisorError ? error : new MuxvisorError(ErrorCode.Internal, `internal error: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}
