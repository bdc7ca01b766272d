/**
 * One raw connection of the fuzzer: it writes whatever a case gives it and reads every frame the
 * supervisor sends back, checking the supervisor's side of the protocol as it goes. What it
 * finds wrong is kept in `problems` (the case turns each into a violation):
 * - bytes that are not valid frames, or a frame over the payload limit;
 * - a kind only clients send;
 * - an ERROR that does not decode, whose code this version does not know, that is local to a
 *   client (never sent), MUXVISOR_INTERNAL (a bug by definition), fatal with a code that does not
 *   close the connection, or fatal with an id;
 * - anything after a fatal ERROR;
 * - a second answer to a request the case sent once (`expect`), except the one
 *   MUXVISOR_OVERLOADED that ends a subscription.
 */
import { connect, type Socket } from 'node:net';
import {
  DEFAULT_MAX_PAYLOAD_BYTES, decodeMessage, decodeValue, ErrorCode, type Frame, FrameDecoder, isFatalCode, isKnownCode, Kind, kindName, type WireError,
} from '../../../protocol/index.js';

export interface Received {
  kind: number;
  id: number;
  channel: number;
  length: number;
  /** ERROR frames: the error and whether it was fatal. */
  error?: WireError;
  fatal?: boolean;
  /** WELCOME, and RESPONSE payloads up to 64 KiB: the decoded value. */
  value?: unknown;
}

const DECODE_RESPONSES_UP_TO = 64 * 1024;
const NEVER_SENT: ReadonlySet<string> = new Set([ErrorCode.ConnectionClosed, ErrorCode.Unavailable]);
const SUPERVISOR_KINDS: ReadonlySet<number> = new Set([Kind.Welcome, Kind.Goodbye, Kind.Ping, Kind.Pong, Kind.Error, Kind.Response, Kind.Event]);

export class FuzzConn {
  readonly socket: Socket;
  readonly received: Received[] = [];
  readonly problems: string[] = [];
  /** The supervisor ended its side (FIN seen), or the socket is gone. */
  ended = false;
  closed = false;
  fatal: Received | null = null;
  /** Bytes handed to `write` (the kernel may not have taken them all). */
  bytesWritten = 0;
  readonly #answers = new Map<number, Received[]>();
  readonly #expected = new Set<number>();
  readonly #waiters = new Set<() => void>();
  readonly #decoder: FrameDecoder;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.#decoder = new FrameDecoder((f) => this.#onFrame(f), { maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES });
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#decoder.push(chunk);
      } catch (error) {
        this.#problem(`the supervisor sent bytes that are not valid frames: ${(error as Error).message}`);
      }
      this.#wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.#wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => {}); // EPIPE / ECONNRESET after the supervisor closed: 'close' follows
  }

  static open(socketPath: string, ms = 5_000): Promise<FuzzConn> {
    return new Promise((resolve, reject) => {
      const socket = connect(socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connecting to ${socketPath} took more than ${ms} ms`));
      }, ms);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', reject);
        resolve(new FuzzConn(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Writes `bytes` (ignored once the socket is gone); false when they wait in this process. */
  write(bytes: Uint8Array): boolean {
    if (this.socket.destroyed) return false;
    this.bytesWritten += bytes.length;
    return this.socket.write(bytes);
  }

  /** Half-closes: "I send nothing more". */
  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The case sent request `id` exactly once: a second answer to it is a problem. */
  expect(id: number): void {
    this.#expected.add(id);
  }

  answers(id: number): Received[] {
    return this.#answers.get(id) ?? [];
  }

  answered(id: number): boolean {
    return this.#answers.has(id);
  }

  /** Resolves true once `done()` holds (checked on every frame and at the end), false after `ms`. */
  until(done: () => boolean, ms: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!done() && !this.closed) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve(done());
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        resolve(done());
      }, ms);
      this.#waiters.add(check);
    });
  }

  /** Resolves true once the supervisor has ended its side, false after `ms`. */
  endedWithin(ms: number): Promise<boolean> {
    return this.until(() => this.ended, ms);
  }

  #wake(): void {
    for (const check of [...this.#waiters]) check();
  }

  #problem(message: string): void {
    if (this.problems.length < 5) this.problems.push(message);
  }

  #onFrame(f: Frame): void {
    const r: Received = { kind: f.kind, id: f.id, channel: f.channel, length: f.payload.length };
    if (this.fatal !== null) this.#problem(`the supervisor sent ${kindName(f.kind)} (id ${f.id}) after its fatal ERROR ${this.fatal.error?.code}`);
    if (!SUPERVISOR_KINDS.has(f.kind)) this.#problem(`the supervisor sent kind ${kindName(f.kind)}, which only clients send`);
    try {
      if (f.kind === Kind.Error) {
        const m = decodeMessage(f);
        if (m.kind === Kind.Error) this.#checkError(r, m.error, m.fatal);
      } else if (f.kind === Kind.Welcome) {
        const m = decodeMessage(f);
        r.value = m;
      } else if (f.kind === Kind.Response && f.payload.length <= DECODE_RESPONSES_UP_TO) {
        r.value = decodeValue(f.payload);
      }
    } catch (error) {
      this.#problem(`the supervisor sent a ${kindName(f.kind)} frame that does not decode: ${(error as Error).message}`);
    }
    this.received.push(r);
    if (r.fatal) this.fatal = r;
    const answers = f.kind === Kind.Response || f.kind === Kind.Pong || (f.kind === Kind.Error && f.id !== 0);
    if (!answers) return;
    const list = this.#answers.get(f.id) ?? [];
    list.push(r);
    this.#answers.set(f.id, list);
    const endsSubscription = list.length === 2 && list[0]?.kind === Kind.Response && r.error?.code === ErrorCode.Overloaded;
    if (list.length > 1 && this.#expected.has(f.id) && !endsSubscription) {
      this.#problem(`request ${f.id} was answered ${list.length} times (${list.map((a) => a.error?.code ?? kindName(a.kind)).join(', ')})`);
    }
  }

  #checkError(r: Received, error: WireError, fatal: boolean): void {
    r.error = error;
    r.fatal = fatal;
    const code = error.code;
    if (!isKnownCode(code)) this.#problem(`ERROR with a code this version does not know: ${code} (${error.message})`);
    else if (NEVER_SENT.has(code)) this.#problem(`ERROR with ${code}, a code local to clients that is never sent (${error.message})`);
    else if (code === ErrorCode.Internal) this.#problem(`MUXVISOR_INTERNAL (a bug in the supervisor): ${error.message}`);
    if (fatal && !isFatalCode(code) && code !== ErrorCode.Timeout) this.#problem(`a fatal ERROR with ${code}, which does not close connections (${error.message})`);
    if (fatal && r.id !== 0) this.#problem(`a fatal ERROR with id ${r.id} (must be 0): ${code}`);
  }
}
