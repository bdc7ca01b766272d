/**
 * The message kinds: one discriminated union on `kind`, and their mapping to and from frames.
 *
 * The routing fields (kind, request id, run channel) live in the frame header (frame.ts), so the
 * supervisor routes a PUBLISH, or a REQUEST to a run, without decoding its payload. The payload is
 * one msgpack value: a map of the fields below, or for PUBLISH, RESPONSE, PING and PONG the
 * caller's own value. PROTOCOL.md is the reference; a test holds the two together.
 */
import { encodeFrameWithValue, decodeValue, type DecodeOptions } from './codec.js';
import { ErrorCode, MuxvisorError, type WireError } from './errors.js';
import type { Frame, FrameHeader } from './frame.js';
import {
  asBody, badMessage, type Body, describe, headerField, int, map, optBool, optInt, optStr, str, strArray,
} from './fields.js';
import type { VersionRange } from './handshake.js';

export const Kind = {
  Hello: 0x01,
  Welcome: 0x02,
  Goodbye: 0x03,
  Ping: 0x04,
  Pong: 0x05,
  Error: 0x06,
  Request: 0x10,
  Response: 0x11,
  Cancel: 0x12,
  Open: 0x20,
  Attach: 0x21,
  Publish: 0x22,
  Sync: 0x23,
  Finish: 0x24,
  Detach: 0x25,
  Event: 0x30,
} as const;

export type Kind = (typeof Kind)[keyof typeof Kind];

const names = new Map<number, string>(Object.entries(Kind).map(([name, code]) => [code, name.toLowerCase()]));

/** "publish", or "0x7f" for a kind this version does not know. */
export function kindName(kind: number): string {
  return names.get(kind) ?? `0x${kind.toString(16).padStart(2, '0')}`;
}

export function isKnownKind(kind: number): kind is Kind {
  return names.has(kind);
}

/** Kinds whose sender waits for exactly one RESPONSE or ERROR carrying the same id (PING: a PONG). */
export function expectsResponse(kind: number): boolean {
  return kind === Kind.Ping || kind === Kind.Request || (kind >= Kind.Open && kind <= Kind.Detach && kind !== Kind.Publish);
}

/** Kinds a client sends; the rest (WELCOME, RESPONSE, EVENT) only the supervisor sends. */
export function isClientKind(kind: number): boolean {
  return kind !== Kind.Welcome && kind !== Kind.Response && kind !== Kind.Event && isKnownKind(kind);
}

/**
 * The largest payloads of the messages a receiver decodes whole before it can act (PROTOCOL.md
 * section 9): a HELLO, and REQUEST, OPEN, ATTACH, FINISH, CANCEL, GOODBYE and ERROR. Records
 * (PUBLISH) and PING/PONG payloads are only checked and copied, so they may use the whole frame
 * limit. Decoding msgpack costs up to ~80 ms and ~20 MB of memory per MiB of tiny values, on the
 * one thread that serves every client: a 16 MiB `status` request stalled every other client for
 * 2 s and took the supervisor from 70 to 680 MB, and a 580 KB CANCEL held it for 44 ms. At
 * 256 KiB the worst is about 20 ms.
 */
export const MAX_HELLO_PAYLOAD_BYTES = 64 * 1024;
export const MAX_DECODED_PAYLOAD_BYTES = 256 * 1024;

/**
 * What a run id may look like: it names files in the supervisor's home, so 1 to 128 characters
 * of letters, digits, `.`, `_` and `-`, starting with a letter or digit. The supervisor answers an
 * OPEN or ATTACH with another id with MUXVISOR_INVALID_ARGUMENT (the connection stays open).
 */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isValidRunId(run: string): boolean {
  return RUN_ID_PATTERN.test(run);
}

/** How a run ended, as the client says it in FINISH. The supervisor adds `crashed`. */
export type FinishStatus = 'ok' | 'failed' | 'interrupted';
const finishStatuses: ReadonlySet<string> = new Set(['ok', 'failed', 'interrupted']);

export interface Hello { kind: typeof Kind.Hello; versions: VersionRange; token: string; pid: number; name: string; caps: string[] }
export interface Welcome {
  kind: typeof Kind.Welcome;
  version: number;
  connection: number;
  server: { name: string; version: string; pid: number };
  caps: string[];
  limits: { maxPayloadBytes: number; maxInFlight: number };
}
export interface Goodbye { kind: typeof Kind.Goodbye; reason: string }
export interface Ping { kind: typeof Kind.Ping; id: number; data?: unknown }
export interface Pong { kind: typeof Kind.Pong; id: number; data?: unknown }
/** `id` is the request this error answers, or 0 for the connection as a whole. */
export interface ErrorMessage { kind: typeof Kind.Error; id: number; error: WireError; fatal: boolean }
/** `channel` 0 addresses the supervisor; a run's channel addresses that run's handler. */
export interface Request { kind: typeof Kind.Request; id: number; channel: number; op: string; args?: unknown; timeoutMs?: number }
export interface Response { kind: typeof Kind.Response; id: number; result?: unknown }
export interface Cancel { kind: typeof Kind.Cancel; id: number; reason?: string }
/** `dedicated`: host the run's handler on a worker thread of its own. */
export interface Open { kind: typeof Kind.Open; id: number; run: string; handler?: string; config?: unknown; dedicated?: boolean }
export interface Attach { kind: typeof Kind.Attach; id: number; run: string }
export interface Publish { kind: typeof Kind.Publish; channel: number; record: unknown }
export interface Sync { kind: typeof Kind.Sync; id: number; channel: number }
export interface Finish { kind: typeof Kind.Finish; id: number; channel: number; status?: FinishStatus; exitCode?: number; reason?: string }
export interface Detach { kind: typeof Kind.Detach; id: number; channel: number }
/** `id` is the request that subscribed; `seq` counts up by one per topic with no gaps. */
export interface Event { kind: typeof Kind.Event; id: number; topic: string; seq: number; time: number; data?: unknown }

export type Message =
  | Hello | Welcome | Goodbye | Ping | Pong | ErrorMessage | Request | Response | Cancel
  | Open | Attach | Publish | Sync | Finish | Detach | Event;

/** The frame bytes of `message`. Throws MUXVISOR_INVALID_ARGUMENT or MUXVISOR_BAD_FRAME for what cannot be sent. */
export function encodeMessage(message: Message): Buffer {
  const [header, payload] = toWire(message);
  return encodeFrameWithValue(header, payload);
}

function toWire(m: Message): [FrameHeader, unknown] {
  const h = (id: number, channel: number): FrameHeader => ({ kind: m.kind, flags: 0, id, channel });
  switch (m.kind) {
    case Kind.Hello:
      return [h(0, 0), { versions: [m.versions[0], m.versions[1]], token: m.token, pid: m.pid, name: m.name, caps: m.caps }];
    case Kind.Welcome:
      return [h(0, 0), { version: m.version, connection: m.connection, server: m.server, caps: m.caps, limits: m.limits }];
    case Kind.Goodbye:
      return [h(0, 0), { reason: m.reason }];
    case Kind.Ping:
    case Kind.Pong:
      return [h(m.id, 0), m.data];
    case Kind.Error:
      return [h(m.id, 0), m.fatal ? { ...m.error, fatal: true } : m.error];
    case Kind.Request:
      return [h(m.id, m.channel), compact({ op: m.op, args: m.args, timeoutMs: m.timeoutMs })];
    case Kind.Response:
      return [h(m.id, 0), m.result];
    case Kind.Cancel:
      return [h(m.id, 0), m.reason === undefined ? undefined : { reason: m.reason }];
    case Kind.Open:
      return [h(m.id, 0), compact({ run: m.run, handler: m.handler, config: m.config, dedicated: m.dedicated })];
    case Kind.Attach:
      return [h(m.id, 0), { run: m.run }];
    case Kind.Publish:
      return [h(0, m.channel), m.record];
    case Kind.Sync:
    case Kind.Detach:
      return [h(m.id, m.channel), undefined];
    case Kind.Finish: {
      const body = compact({ status: m.status, exitCode: m.exitCode, reason: m.reason });
      return [h(m.id, m.channel), Object.keys(body).length === 0 ? undefined : body];
    }
    case Kind.Event:
      return [h(m.id, 0), compact({ topic: m.topic, seq: m.seq, time: m.time, data: m.data })];
  }
}

/** Drops undefined fields, so optional fields are absent on the wire rather than nil. */
function compact(body: Body): Body {
  for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
  return body;
}

/**
 * The message a frame carries, with every field checked. Throws MUXVISOR_UNKNOWN_KIND,
 * MUXVISOR_BAD_PAYLOAD (not msgpack) or MUXVISOR_BAD_MESSAGE (a field missing or of the wrong
 * type, named in the message). Fields a newer peer adds are ignored.
 */
export function decodeMessage(frame: Frame, options?: DecodeOptions): Message {
  const what = kindName(frame.kind);
  if (!isKnownKind(frame.kind)) {
    throw new MuxvisorError(ErrorCode.UnknownKind, `unknown message kind ${what}`, { data: { kind: frame.kind } });
  }
  const value = decodeValue(frame.payload, options);
  const id = (required: boolean) => headerField(what, 'id', frame.id, required);
  const channel = (required: boolean) => headerField(what, 'channel', frame.channel, required);
  const body = () => asBody(what, value);
  const optBody = () => (value === undefined ? {} : asBody(what, value));
  switch (frame.kind) {
    case Kind.Hello: {
      id(false), channel(false);
      const b = body();
      return { kind: Kind.Hello, versions: versionRange(what, b), token: str(what, b, 'token', 1024), pid: int(what, b, 'pid'), name: str(what, b, 'name', 256), caps: b.caps === undefined || b.caps === null ? [] : strArray(what, b, 'caps') };
    }
    case Kind.Welcome: {
      id(false), channel(false);
      const b = body();
      const server = map(what, b, 'server');
      const limits = map(what, b, 'limits');
      return {
        kind: Kind.Welcome, version: int(what, b, 'version', 1, 0xffff), connection: int(what, b, 'connection'),
        server: { name: str(what, server, 'name'), version: str(what, server, 'version'), pid: int(what, server, 'pid') },
        caps: strArray(what, b, 'caps'),
        limits: { maxPayloadBytes: int(what, limits, 'maxPayloadBytes'), maxInFlight: int(what, limits, 'maxInFlight') },
      };
    }
    case Kind.Goodbye:
      id(false), channel(false);
      return { kind: Kind.Goodbye, reason: str(what, body(), 'reason') };
    case Kind.Ping:
    case Kind.Pong:
      channel(false);
      return value === undefined ? { kind: frame.kind, id: id(true) } : { kind: frame.kind, id: id(true), data: value };
    case Kind.Error: {
      channel(false);
      const b = body();
      const error: WireError = { code: str(what, b, 'code', 256), message: str(what, b, 'message', 65536) };
      if (b.data !== undefined) error.data = b.data;
      return { kind: Kind.Error, id: frame.id, error, fatal: optBool(what, b, 'fatal') ?? false };
    }
    case Kind.Request: {
      const b = body();
      const m: Request = { kind: Kind.Request, id: id(true), channel: frame.channel, op: str(what, b, 'op', 256) };
      if (b.args !== undefined) m.args = b.args;
      const timeoutMs = optInt(what, b, 'timeoutMs', 0, 0xffff_ffff);
      if (timeoutMs !== undefined) m.timeoutMs = timeoutMs;
      return m;
    }
    case Kind.Response:
      channel(false);
      return value === undefined ? { kind: Kind.Response, id: id(true) } : { kind: Kind.Response, id: id(true), result: value };
    case Kind.Cancel: {
      channel(false);
      const reason = optStr(what, optBody(), 'reason');
      return reason === undefined ? { kind: Kind.Cancel, id: id(true) } : { kind: Kind.Cancel, id: id(true), reason };
    }
    case Kind.Open: {
      channel(false);
      const b = body();
      const m: Open = { kind: Kind.Open, id: id(true), run: str(what, b, 'run', 256) };
      const handler = optStr(what, b, 'handler');
      if (handler !== undefined) m.handler = handler;
      if (b.config !== undefined) m.config = b.config;
      const dedicated = optBool(what, b, 'dedicated');
      if (dedicated !== undefined) m.dedicated = dedicated;
      return m;
    }
    case Kind.Attach:
      channel(false);
      return { kind: Kind.Attach, id: id(true), run: str(what, body(), 'run', 256) };
    case Kind.Publish:
      id(false);
      if (value === undefined) throw badMessage(what, 'payload must hold the record, got nothing');
      return { kind: Kind.Publish, channel: channel(true), record: value };
    case Kind.Sync:
    case Kind.Detach:
      return { kind: frame.kind, id: id(true), channel: channel(true) };
    case Kind.Finish: {
      const b = optBody();
      const m: Finish = { kind: Kind.Finish, id: id(true), channel: channel(true) };
      const status = optStr(what, b, 'status');
      if (status !== undefined) {
        if (!finishStatuses.has(status)) throw badMessage(what, `field \`status\` must be one of ok, failed, interrupted, got ${describe(status)}`, { field: 'status' });
        m.status = status as FinishStatus;
      }
      const exitCode = optInt(what, b, 'exitCode', -0x8000_0000, 0x7fff_ffff);
      if (exitCode !== undefined) m.exitCode = exitCode;
      const reason = optStr(what, b, 'reason');
      if (reason !== undefined) m.reason = reason;
      return m;
    }
    case Kind.Event: {
      channel(false);
      const b = body();
      const m: Event = { kind: Kind.Event, id: id(true), topic: str(what, b, 'topic', 256), seq: int(what, b, 'seq'), time: int(what, b, 'time') };
      if (b.data !== undefined) m.data = b.data;
      return m;
    }
  }
}

function versionRange(what: string, b: Body): VersionRange {
  const v = b.versions;
  if (!Array.isArray(v) || v.length !== 2 || !v.every((n) => Number.isInteger(n) && n >= 1 && n <= 0xffff) || v[0] > v[1]) {
    throw badMessage(what, `field \`versions\` must be [min, max] with 1 <= min <= max <= 65535, got ${describe(v)}`, { field: 'versions' });
  }
  return [v[0] as number, v[1] as number];
}
