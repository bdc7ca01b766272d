import { describe, expect, it } from 'vitest';
import {
  decodeMessage, encodeFrame, encodeMessage, encodeValue, ErrorCode, expectsResponse, FrameDecoder, isClientKind, isValidRunId,
  Kind, kindName, type Message,
} from '../../protocol/index.js';
import { expectMuxvisorError } from '../helpers/errors.js';
import { sampleMessages } from '../helpers/messages.js';

/** Decodes the single frame in `bytes`. */
function decodeOne(bytes: Buffer): Message {
  const messages: Message[] = [];
  const decoder = new FrameDecoder((f) => messages.push(decodeMessage(f)));
  decoder.push(bytes);
  decoder.end();
  expect(messages).toHaveLength(1);
  return messages[0] as Message;
}

const raw = (kind: number, payload: unknown, id = 0, channel = 0) =>
  encodeFrame({ kind, flags: 0, id, channel }, encodeValue(payload));




describe('messages', () => {
  it('round-trips one message of every kind, optional fields present and absent', () => {
    const kinds = new Set(sampleMessages.map((m) => m.kind));
    expect([...kinds].sort((a, b) => a - b)).toEqual(Object.values(Kind).sort((a, b) => a - b));
    for (const message of sampleMessages) expect(decodeOne(encodeMessage(message))).toEqual(message);
  });

  it('puts the routing fields in the header, so a publish is routed without decoding its record', () => {
    const bytes = encodeMessage({ kind: Kind.Publish, channel: 7, record: { step: 1 } });
    expect([bytes[2], bytes.readUInt32LE(8), bytes.readUInt32LE(12)]).toEqual([Kind.Publish, 0, 7]);
    const request = encodeMessage({ kind: Kind.Request, id: 99, channel: 7, op: 'summary' });
    expect([request[2], request.readUInt32LE(8), request.readUInt32LE(12)]).toEqual([Kind.Request, 99, 7]);
  });

  it('refuses an unknown kind with MUXVISOR_UNKNOWN_KIND', () => {
    const error = expectMuxvisorError(() => decodeOne(raw(0x7f, undefined)), ErrorCode.UnknownKind);
    expect(error.message).toContain('0x7f');
  });

  it('names the missing or mistyped field and what it got', () => {
    const hello = { versions: [1, 1], token: 't', pid: 1, name: 'n' };
    const { token: _, ...withoutToken } = hello;
    const noToken = expectMuxvisorError(() => decodeOne(raw(Kind.Hello, withoutToken)), ErrorCode.BadMessage);
    expect(noToken.message).toBe('hello: field `token` must be a string, got nothing');
    const nilToken = expectMuxvisorError(() => decodeOne(raw(Kind.Hello, { ...hello, token: null })), ErrorCode.BadMessage);
    expect(nilToken.message).toBe('hello: field `token` must be a string, got nil');
    const pidString = expectMuxvisorError(() => decodeOne(raw(Kind.Hello, { ...hello, pid: 'x' })), ErrorCode.BadMessage);
    expect(pidString.message).toContain('field `pid` must be an integer');
    expect(pidString.data).toMatchObject({ message: 'hello', field: 'pid' });
    const badRange = expectMuxvisorError(() => decodeOne(raw(Kind.Hello, { ...hello, versions: [3, 1] })), ErrorCode.BadMessage);
    expect(badRange.message).toContain('`versions`');
  });

  it('reads a nil in an optional field as absent (PROTOCOL.md §3): a HELLO with nil caps has none', () => {
    const hello = { versions: [1, 1], token: 't', pid: 1, name: 'n' };
    expect(decodeOne(raw(Kind.Hello, { ...hello, caps: null }))).toEqual(decodeOne(raw(Kind.Hello, hello)));
    expect(decodeOne(raw(Kind.Hello, { ...hello, caps: null }))).toMatchObject({ caps: [] });
  });

  it('refuses a payload that is not a map where a map is required', () => {
    const error = expectMuxvisorError(() => decodeOne(raw(Kind.Open, [1, 2], 1)), ErrorCode.BadMessage);
    expect(error.message).toBe('open: payload must be a map, got an array of 2');
  });

  it('requires a request id where a response is expected, and a channel where a run is addressed', () => {
    expectMuxvisorError(() => decodeOne(raw(Kind.Request, { op: 'status' }, 0)), ErrorCode.BadMessage);
    expectMuxvisorError(() => decodeOne(raw(Kind.Publish, { a: 1 }, 0, 0)), ErrorCode.BadMessage);
    expectMuxvisorError(() => decodeOne(raw(Kind.Finish, undefined, 1, 0)), ErrorCode.BadMessage);
    expectMuxvisorError(() => decodeOne(raw(Kind.Hello, { versions: [1, 1], token: 't', pid: 1, name: 'n' }, 5)), ErrorCode.BadMessage);
  });

  it('refuses a publish without a record', () => {
    const error = expectMuxvisorError(() => decodeOne(raw(Kind.Publish, undefined, 0, 1)), ErrorCode.BadMessage);
    expect(error.message).toContain('record');
  });

  it('refuses a finish status outside ok, failed, interrupted', () => {
    const error = expectMuxvisorError(() => decodeOne(raw(Kind.Finish, { status: 'crashed' }, 1, 1)), ErrorCode.BadMessage);
    expect(error.message).toContain('"crashed"');
  });

  it('ignores fields it does not know, so newer peers can add them', () => {
    const message = decodeOne(raw(Kind.Attach, { run: 'r1', future: { x: 1 } }, 4));
    expect(message).toEqual({ kind: Kind.Attach, id: 4, run: 'r1' });
  });

  it('passes invalid msgpack on as MUXVISOR_BAD_PAYLOAD', () => {
    const frame = encodeFrame({ kind: Kind.Request, flags: 0, id: 1, channel: 0 }, Buffer.from([0xc1]));
    expectMuxvisorError(() => decodeOne(frame), ErrorCode.BadPayload);
  });

  it('knows which kinds expect a response and which a client may send', () => {
    const expecting = Object.values(Kind).filter(expectsResponse).map(kindName).sort();
    expect(expecting).toEqual(['attach', 'detach', 'finish', 'open', 'ping', 'request', 'sync']);
    const serverOnly = Object.values(Kind).filter((k) => !isClientKind(k)).map(kindName).sort();
    expect(serverOnly).toEqual(['event', 'response', 'welcome']);
    expect(isClientKind(0x7f)).toBe(false);
  });

  it('accepts run ids that are safe file names and nothing else', () => {
    for (const ok of ['r1', 'A', 'run-2026.11_21', 'x'.repeat(128)]) expect(isValidRunId(ok), ok).toBe(true);
    for (const bad of ['', '.hidden', '-x', 'a/b', '../up', 'sp ace', 'x'.repeat(129), 'é']) expect(isValidRunId(bad), bad).toBe(false);
  });
});
