/**
 * The header rules of every kind (PROTOCOL.md section 4: where id and channel must be 0 or
 * non-zero, a payload where one is required), the direction rule (kinds only the supervisor
 * sends), unknown kinds, and the handshake rule (nothing before HELLO), one rule per case of the
 * `wrong types` family. Each has one right answer, or two where PROTOCOL.md allows both.
 */
import { ErrorCode, Kind } from '../../../protocol/index.js';
import type { Rng } from '../random.js';
import { expectAnswerOrFatal, expectFatal, type FuzzCase } from './case.js';
import { frameOf, helloBody } from './wire.js';

interface HeaderRule {
  what: string;
  frame: (token: string) => Buffer;
  beforeHello?: boolean;
  /** The fatal code; or `answer`: the request (id 23) is answered with one of these codes, or refused as BAD_MESSAGE. */
  fatal?: string;
  answer?: string[];
}

const req = (kind: number, id: number, channel: number, body?: unknown) => () => frameOf(kind, body, { id, channel });

/** Each kind's header rules (PROTOCOL.md section 4), the direction rule, unknown kinds and the handshake rule. */
const HEADER_RULES: readonly HeaderRule[] = [
  { what: 'hello with an id', frame: (t) => frameOf(Kind.Hello, helloBody(t), { id: 9 }), beforeHello: true, fatal: ErrorCode.BadMessage },
  { what: 'hello with a channel', frame: (t) => frameOf(Kind.Hello, helloBody(t), { channel: 9 }), beforeHello: true, fatal: ErrorCode.BadMessage },
  { what: 'goodbye with an id', frame: req(Kind.Goodbye, 9, 0, { reason: 'x' }), fatal: ErrorCode.BadMessage },
  { what: 'error with a channel', frame: req(Kind.Error, 0, 9, { code: 'X', message: 'y' }), fatal: ErrorCode.BadMessage },
  { what: 'ping with id 0', frame: req(Kind.Ping, 0, 0), fatal: ErrorCode.BadMessage },
  { what: 'ping with a channel', frame: req(Kind.Ping, 23, 9), fatal: ErrorCode.BadMessage },
  { what: 'pong with id 0', frame: req(Kind.Pong, 0, 0), fatal: ErrorCode.BadMessage },
  { what: 'request with id 0', frame: req(Kind.Request, 0, 0, { op: 'status' }), fatal: ErrorCode.BadMessage },
  { what: 'cancel with id 0', frame: req(Kind.Cancel, 0, 0), fatal: ErrorCode.BadMessage },
  { what: 'cancel with a channel', frame: req(Kind.Cancel, 23, 9), fatal: ErrorCode.BadMessage },
  { what: 'open with id 0', frame: req(Kind.Open, 0, 0, { run: 'fuzz-h0' }), fatal: ErrorCode.BadMessage },
  { what: 'open with a channel', frame: req(Kind.Open, 23, 9, { run: 'fuzz-h1' }), fatal: ErrorCode.BadMessage },
  { what: 'attach with id 0', frame: req(Kind.Attach, 0, 0, { run: 'fuzz-h2' }), fatal: ErrorCode.BadMessage },
  { what: 'attach with a channel', frame: req(Kind.Attach, 23, 9, { run: 'fuzz-h3' }), fatal: ErrorCode.BadMessage },
  { what: 'publish with an id', frame: req(Kind.Publish, 23, 1, { a: 1 }), fatal: ErrorCode.BadMessage },
  { what: 'publish with no payload', frame: req(Kind.Publish, 0, 1), fatal: ErrorCode.BadMessage },
  { what: 'sync with id 0', frame: req(Kind.Sync, 0, 1), fatal: ErrorCode.BadMessage },
  { what: 'finish with id 0', frame: req(Kind.Finish, 0, 1), fatal: ErrorCode.BadMessage },
  { what: 'detach with id 0', frame: req(Kind.Detach, 0, 1), fatal: ErrorCode.BadMessage },
  // Channel 0 names no run: answered UNKNOWN_RUN (PROTOCOL.md 7), or refused as a bad header (4).
  { what: 'sync on channel 0', frame: req(Kind.Sync, 23, 0), answer: [ErrorCode.UnknownRun] },
  { what: 'finish on channel 0', frame: req(Kind.Finish, 23, 0), answer: [ErrorCode.UnknownRun] },
  { what: 'detach on channel 0', frame: req(Kind.Detach, 23, 0), answer: [ErrorCode.UnknownRun] },
  { what: 'a client sending welcome', frame: req(Kind.Welcome, 0, 0, { version: 1 }), fatal: ErrorCode.BadMessage },
  { what: 'a client sending response', frame: req(Kind.Response, 23, 0, 1), fatal: ErrorCode.BadMessage },
  { what: 'a client sending event', frame: req(Kind.Event, 23, 0, { topic: 'x', seq: 1, time: 1 }), fatal: ErrorCode.BadMessage },
  { what: 'unknown kind 0x00', frame: req(0x00, 0, 0), fatal: ErrorCode.UnknownKind },
  { what: 'unknown kind 0x7f', frame: req(0x7f, 23, 0, { op: 'status' }), fatal: ErrorCode.UnknownKind },
  { what: 'unknown kind 0xff', frame: req(0xff, 0, 0, 1), fatal: ErrorCode.UnknownKind },
  { what: 'a request before hello', frame: req(Kind.Request, 23, 0, { op: 'status' }), beforeHello: true, fatal: ErrorCode.HandshakeRequired },
  { what: 'a ping before hello', frame: req(Kind.Ping, 23, 0), beforeHello: true, fatal: ErrorCode.HandshakeRequired },
  { what: 'an unknown kind before hello', frame: req(0x99, 0, 0), beforeHello: true, fatal: ErrorCode.HandshakeRequired },
];

export function badHeader(rng: Rng): FuzzCase {
  const rule = rng.pick(HEADER_RULES);
  return {
    family: 'wrong types',
    what: rule.what,
    async run(env) {
      const conn = rule.beforeHello ? await env.connect() : await env.welcomed();
      conn.write(rule.frame(env.target.token));
      if (rule.answer) return expectAnswerOrFatal(env, conn, 23, rule.answer, [ErrorCode.BadMessage]);
      return expectFatal(env, conn, [rule.fatal as string], true);
    },
  };
}

