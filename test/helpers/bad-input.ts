/**
 * Tools for feeding a live supervisor bad input through a raw socket: hand-made frame headers
 * (with fields the encoder refuses to write), bounded waits, and the one check every fatal case
 * shares (one ERROR, id 0, fatal, then the connection closes, and nothing else is answered).
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { type Client, connect } from '../../lib/index.js';
import {
  encodeFrame, encodeValue, type ErrorMessage, Kind, type Message,
} from '../../protocol/index.js';
import { type TempHome, tempHome } from './home.js';
import { type RawClient, rawClient } from './raw.js';

export { type RawHeader, rawFrame } from './raw-frame.js';

/** A well-formed frame of `kind` whose payload is `value` encoded as msgpack (none for undefined). */
export function valueFrame(kind: number, value: unknown, routing: { id?: number; channel?: number } = {}): Buffer {
  return encodeFrame({ kind, flags: 0, id: routing.id ?? 0, channel: routing.channel ?? 0 }, encodeValue(value));
}

/** A well-formed frame of `kind` carrying exactly `payload` (valid msgpack or not). */
export function payloadFrame(kind: number, payload: Uint8Array, routing: { id?: number; channel?: number } = {}): Buffer {
  return encodeFrame({ kind, flags: 0, id: routing.id ?? 0, channel: routing.channel ?? 0 }, payload);
}

/** Resolves with `promise`, or rejects naming `what` when `ms` pass first. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function isError(m: Message): m is ErrorMessage {
  return m.kind === Kind.Error;
}

/** Raw clients opened by a test; `destroyAll` closes them (call it in afterEach). */
export class RawClients {
  readonly #open: RawClient[] = [];
  readonly #socketPath: string;
  readonly #token: () => string;

  constructor(socketPath: string, token: () => string) {
    this.#socketPath = socketPath;
    this.#token = token;
  }

  /** A connected raw client that has said nothing yet. */
  async connect(): Promise<RawClient> {
    const raw = await within(rawClient(this.#socketPath), 3_000, 'a raw connection');
    this.#open.push(raw);
    return raw;
  }

  /** A raw client past a successful handshake (its WELCOME is consumed). */
  async welcomed(): Promise<RawClient> {
    const raw = await this.connect();
    const answer = await raw.hello(this.#token());
    expect(answer.kind, `handshake answer: ${JSON.stringify(answer)}`).toBe(Kind.Welcome);
    return raw;
  }

  destroyAll(): void {
    for (const raw of this.#open.splice(0)) raw.close();
  }
}

/**
 * Waits for the supervisor to close the connection after bad input, then checks what it sent:
 * exactly one ERROR frame, with id 0, `fatal: true` and `code`, and nothing after it. Returns the
 * ERROR. (Every frame the supervisor sent is in `raw.messages` before its close is seen.)
 */
export async function expectFatal(raw: RawClient, code: string, ms = 3_000): Promise<ErrorMessage> {
  try {
    await within(raw.closed, ms, `the supervisor to close the connection with ${code}`);
  } catch (error) {
    throw new Error(`${(error as Error).message}; received so far: ${JSON.stringify(raw.messages)}`);
  }
  const errors = raw.messages.filter(isError);
  const got = errors.map((e) => ({ id: e.id, fatal: e.fatal, code: e.error.code }));
  expect(got, `ERROR frames received before the close: ${JSON.stringify(raw.messages)}`).toEqual([{ id: 0, fatal: true, code }]);
  const error = errors[0] as ErrorMessage;
  expect(raw.messages.at(-1), 'nothing after the fatal ERROR').toBe(error);
  return error;
}

/**
 * Waits for the non-fatal ERROR answering request `id` (0: about the connection) and checks its
 * code. Returns it.
 */
export async function expectAnswerError(raw: RawClient, id: number, code: string, ms = 3_000): Promise<ErrorMessage> {
  const m = (await raw.next((x) => isError(x) && x.id === id, ms)) as ErrorMessage;
  expect({ id: m.id, fatal: m.fatal, code: m.error.code }, m.error.message).toEqual({ id, fatal: false, code });
  return m;
}

/** Proves the connection still works: a PING with a fresh id and a payload comes back as a PONG. */
export async function expectPong(raw: RawClient, id: number, ms = 3_000): Promise<void> {
  raw.send(valueFrame(Kind.Ping, { probe: id }, { id }));
  const pong = await raw.next((m) => m.kind === Kind.Pong && m.id === id, ms);
  expect(pong).toEqual({ kind: Kind.Pong, id, data: { probe: id } });
  expect(raw.socket.destroyed, 'the connection is still open').toBe(false);
}

/** A supervisor of a test file's own, a library client on it, its token, and raw clients. */
export interface RawSupervisor {
  readonly home: TempHome;
  readonly client: Client;
  readonly token: string;
  readonly raws: RawClients;
}

/**
 * Registers the hooks of a test file that speaks raw frames to a supervisor of its own: before
 * all, a temporary home (`prefix`) and a supervisor started by a library client; after each test,
 * its raw clients closed; after all, the client closed and the home removed. The fields are set
 * once `beforeAll` has run.
 */
export function rawSupervisor(prefix: string): RawSupervisor {
  const state = {} as { home: TempHome; client: Client; token: string; raws: RawClients };
  beforeAll(async () => {
    state.home = tempHome(prefix);
    state.client = await connect({ home: state.home.home, supervisor: { idleTimeoutMs: 0 }, handleExit: false, exportEnv: false });
    state.token = readFileSync(state.home.layout.tokenPath, 'utf8').trim();
    state.raws = new RawClients(state.home.layout.socketPath, () => state.token);
  });
  afterEach(() => state.raws?.destroyAll());
  afterAll(async () => {
    state.raws?.destroyAll();
    await state.client?.close();
    await state.home?.cleanup();
  });
  return state;
}
