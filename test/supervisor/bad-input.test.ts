/**
 * Bad input, end to end: a real supervisor (started by `connect()` as users start it) is fed
 * hand-made frames through raw sockets. Each fatal case must get one ERROR (id 0, fatal) with the
 * right code and a closed connection; each non-fatal case an ERROR answer on a connection that
 * keeps working. Beside it all, one well-behaved client keeps a run open for the whole file and
 * publishes a batch before and after every test's bad input: its records, pings and final FINISH prove that nothing the
 * bad connections did reached it (PROTOCOL.md sections 5, 10 and 11).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Client, connect, type Run } from '../../lib/index.js';
import {
  DEFAULT_MAX_PAYLOAD_BYTES, encodeMessage, encodeValue, ErrorCode, Kind, type Message, PROTOCOL_VERSIONS,
} from '../../protocol/index.js';
import {
  expectAnswerError, expectFatal, expectPong, isError, payloadFrame, RawClients, rawFrame, valueFrame, within,
} from '../helpers/bad-input.js';
import { eventually, type TempHome, tempHome } from '../helpers/home.js';
import { finishedMeta, meta, records } from '../helpers/logs.js';

const BATCH = 10;
const GOOD_RUN = 'good-run';

let home: TempHome;
let client: Client;
let good: Run;
let supervisorPid: number;
let token: string;
let published = 0;
let raws: RawClients;

/** Publishes one batch on the good run; returns without waiting (records leave batched). */
function publishBatch(): void {
  for (let i = 0; i < BATCH; i++) {
    good.publish({ step: published, loss: 1 / (published + 1), tag: 'good' });
    published++;
  }
}

/**
 * The well-behaved client beside the bad connection: it publishes a batch, every record it ever
 * published is in the log (SYNC counts them), the latest one is the run's summary, a PING comes
 * back, and the supervisor is the same process as at the start.
 */
async function expectGoodClientUnaffected(): Promise<void> {
  publishBatch();
  const synced = await good.sync({ timeoutMs: 5_000 });
  expect(synced.records, 'records of the good run').toBe(published);
  const summary = await good.summary(undefined, { timeoutMs: 5_000 });
  expect(summary).toMatchObject({ step: published - 1, tag: 'good' });
  expect(await client.ping({ timeoutMs: 2_000 })).toBeGreaterThanOrEqual(0);
  expect(client.connected).toBe(true);
  expect(home.supervisorPid()).toBe(supervisorPid);
}

/** True when the supervisor made a directory for run `run` (it does so on a valid OPEN). */
function runDirExists(run: string): boolean {
  return existsSync(join(home.layout.runsDir, run));
}

beforeAll(async () => {
  home = tempHome('muxvisor-bad-input-');
  client = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
  expect(client.started).toBe(true);
  supervisorPid = client.server.pid;
  expect(home.supervisorPid()).toBe(supervisorPid);
  token = readFileSync(home.layout.tokenPath, 'utf8').trim();
  raws = new RawClients(home.layout.socketPath, () => token);
  good = await client.openRun(GOOD_RUN);
  publishBatch();
});

// A batch goes out before each test's bad input too, so good records are in flight beside it.
beforeEach(() => publishBatch());

afterEach(async () => {
  raws.destroyAll();
  // Every bad connection is gone from the supervisor: only the good client's remains.
  await eventually(async () => ((await client.request('connections.list', undefined, { timeoutMs: 2_000 })) as unknown[]).length === 1, 'raw connections to be closed', 3_000);
});

afterAll(async () => {
  raws?.destroyAll();
  await client?.close();
  await home?.cleanup();
});

describe('the home and its files', () => {
  const mode = (path: string) => statSync(path).mode & 0o777;

  it('keeps the home and its directories at 0700 and the token file at 0600', () => {
    expect(mode(home.layout.home).toString(8)).toBe('700');
    expect(mode(home.layout.runtimeDir).toString(8)).toBe('700');
    expect(mode(home.layout.runsDir).toString(8)).toBe('700');
    expect(mode(home.layout.logsDir).toString(8)).toBe('700');
    expect(mode(home.layout.tokenPath).toString(8)).toBe('600');
  });

  it('creates the socket with mode 0600 or stricter', () => {
    expect(statSync(home.layout.socketPath).isSocket()).toBe(true);
    const socketMode = mode(home.layout.socketPath);
    expect(socketMode & ~0o600, `socket mode ${socketMode.toString(8)} has bits beyond 0600`).toBe(0);
  });
});

describe('framing errors close the connection', () => {
  const phases = ['before HELLO', 'after the handshake'] as const;
  const open = (phase: (typeof phases)[number]) => (phase === 'before HELLO' ? raws.connect() : raws.welcomed());

  it.each(phases)('refuses garbage bytes (an HTTP request) with MUXVISOR_BAD_MAGIC, %s', async (phase) => {
    const raw = await open(phase);
    raw.send(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    const error = await expectFatal(raw, ErrorCode.BadMagic);
    expect(error.error.data).toMatchObject({ byte: 'G'.charCodeAt(0) });
    await expectGoodClientUnaffected();
  });

  it.each(phases)('refuses a frame of an unsupported frame version with MUXVISOR_UNSUPPORTED_VERSION, %s', async (phase) => {
    const raw = await open(phase);
    raw.send(rawFrame({ version: 2, kind: Kind.Ping, id: 1 }));
    const error = await expectFatal(raw, ErrorCode.UnsupportedVersion);
    expect(error.error.data).toMatchObject({ version: 2 });
    await expectGoodClientUnaffected();
  });

  it.each(phases)('refuses a frame with flags set with MUXVISOR_BAD_FRAME, %s', async (phase) => {
    const raw = await open(phase);
    raw.send(rawFrame({ kind: Kind.Ping, flags: 0x01, id: 1 }));
    const error = await expectFatal(raw, ErrorCode.BadFrame);
    expect(error.error.data).toMatchObject({ flags: 1 });
    await expectGoodClientUnaffected();
  });

  it.each([
    ['0xFFFFFFFF', 'before HELLO', 0xffff_ffff],
    ['16 MiB + 1', 'before HELLO', DEFAULT_MAX_PAYLOAD_BYTES + 1],
    ['0xFFFFFFFF', 'after the handshake', 0xffff_ffff],
    ['16 MiB + 1', 'after the handshake', DEFAULT_MAX_PAYLOAD_BYTES + 1],
  ] as const)('refuses a header announcing %s payload bytes with MUXVISOR_FRAME_TOO_LARGE without waiting for the payload, %s', async (_, phase, length) => {
    const raw = await open(phase);
    // Only the 16 header bytes: the supervisor must answer from the length field alone.
    raw.send(rawFrame({ kind: Kind.Publish, length, channel: 1 }));
    const error = await expectFatal(raw, ErrorCode.FrameTooLarge, 2_000);
    expect(error.error.data).toMatchObject({ length, limit: DEFAULT_MAX_PAYLOAD_BYTES });
    await expectGoodClientUnaffected();
  });

  it('accepts a header announcing exactly the payload limit and waits for the payload', async () => {
    const raw = await raws.welcomed();
    raw.send(rawFrame({ kind: Kind.Publish, length: DEFAULT_MAX_PAYLOAD_BYTES, channel: 1 }));
    await new Promise((r) => setTimeout(r, 300));
    expect(raw.messages.filter((m) => m.kind !== Kind.Welcome)).toEqual([]);
    expect(raw.socket.destroyed).toBe(false);
    await expectGoodClientUnaffected();
  });

  it.each(['before HELLO', 'after the handshake'] as const)('survives a stream that ends in the middle of a frame, %s', async (phase) => {
    const raw = await open(phase);
    const ping = valueFrame(Kind.Ping, { half: true }, { id: 7 });
    raw.send(ping.subarray(0, 10));
    raw.socket.end();
    await within(raw.closed, 3_000, 'the supervisor to close a connection that ended inside a frame');
    // Nothing may be answered for the half frame: at most a fatal MUXVISOR_TRUNCATED.
    const answers = raw.messages.filter((m) => m.kind !== Kind.Welcome);
    for (const m of answers) expect(m).toMatchObject({ kind: Kind.Error, id: 0, fatal: true, error: { code: ErrorCode.Truncated } });
    expect(answers.length).toBeLessThanOrEqual(1);
    await expectGoodClientUnaffected();
  });

  it('answers a client that half-closes inside a frame with a fatal MUXVISOR_TRUNCATED', async () => {
    // PROTOCOL.md sections 2 and 10: the receiver reports MUXVISOR_TRUNCATED, and for the codes of
    // that group the supervisor sends an ERROR (id 0, fatal) before closing. A half-closed client
    // can still read it.
    const raw = await raws.welcomed();
    raw.send(valueFrame(Kind.Ping, { half: true }, { id: 8 }).subarray(0, 10));
    raw.socket.end();
    const error = await expectFatal(raw, ErrorCode.Truncated);
    expect(error.error.data).toMatchObject({ received: 10, expected: 16 });
    await expectGoodClientUnaffected();
  });
});

describe('payloads that are not one valid msgpack value close the connection', () => {
  const request = encodeValue({ op: 'status' });
  const badPayloads = [
    ['a lone 0xc1 byte', Buffer.from([0xc1])],
    ['trailing bytes after the value', Buffer.concat([request, Buffer.from([0x00, 0x01])])],
    ['a truncated value', request.subarray(0, request.length - 2)],
  ] as const;

  it.each(badPayloads)('refuses %s in a REQUEST with MUXVISOR_BAD_PAYLOAD', async (_, payload) => {
    const raw = await raws.welcomed();
    raw.send(payloadFrame(Kind.Request, payload, { id: 1 }));
    await expectFatal(raw, ErrorCode.BadPayload);
    await expectGoodClientUnaffected();
  });

  it.each(badPayloads.map(([what, payload], i) => [what, payload, `bad-publish-${i}`] as const))(
    'refuses %s in a PUBLISH on an open run with MUXVISOR_BAD_PAYLOAD, keeping the records before it',
    async (_, payload, run) => {
      const raw = await raws.welcomed();
      raw.send(encodeMessage({ kind: Kind.Open, id: 1, run }));
      const opened = await raw.next((m) => m.kind === Kind.Response && m.id === 1, 3_000);
      const channel = (opened as Extract<Message, { kind: typeof Kind.Response }>).result as { channel: number };
      // Three good records and the bad one in one write: the good ones were accepted and stay.
      raw.send(Buffer.concat([
        ...[0, 1, 2].map((step) => encodeMessage({ kind: Kind.Publish, channel: channel.channel, record: { step } })),
        payloadFrame(Kind.Publish, payload, { channel: channel.channel }),
      ]));
      await expectFatal(raw, ErrorCode.BadPayload);
      // Its owner is gone, so the run is finished as crashed, with the three good records.
      expect(await finishedMeta(home.home, run, 5_000)).toMatchObject({ status: 'crashed', records: 3 });
      expect(records(home.home, run)).toEqual([{ step: 0 }, { step: 1 }, { step: 2 }]);
      await expectGoodClientUnaffected();
    },
  );
});

describe('messages that break the protocol close the connection', () => {
  it('refuses an unknown kind (0x7f) with MUXVISOR_UNKNOWN_KIND', async () => {
    const raw = await raws.welcomed();
    raw.send(rawFrame({ kind: 0x7f, id: 1 }));
    const error = await expectFatal(raw, ErrorCode.UnknownKind);
    expect(error.error.data).toMatchObject({ kind: 0x7f });
    await expectGoodClientUnaffected();
  });

  it.each([
    ['WELCOME', encodeMessage({
      kind: Kind.Welcome, version: 1, connection: 1, server: { name: 'muxvisor', version: '0.1.0', pid: 1 }, caps: [],
      limits: { maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES, maxInFlight: 4096 },
    })],
    ['RESPONSE', encodeMessage({ kind: Kind.Response, id: 1, result: { ok: true } })],
    ['EVENT', encodeMessage({ kind: Kind.Event, id: 1, topic: 'service', seq: 1, time: Date.now() })],
  ] as const)('refuses a frame of kind %s, which only the supervisor sends, with MUXVISOR_BAD_MESSAGE', async (_, frame) => {
    const raw = await raws.welcomed();
    raw.send(frame);
    await expectFatal(raw, ErrorCode.BadMessage);
    await expectGoodClientUnaffected();
  });

  it.each([
    ['REQUEST', encodeMessage({ kind: Kind.Request, id: 1, channel: 0, op: 'status' })],
    ['PING', encodeMessage({ kind: Kind.Ping, id: 1 })],
    ['OPEN', encodeMessage({ kind: Kind.Open, id: 1, run: 'before-hello' })],
  ] as const)('refuses a frame of kind %s before HELLO with MUXVISOR_HANDSHAKE_REQUIRED', async (_, frame) => {
    const raw = await raws.connect();
    raw.send(frame);
    await expectFatal(raw, ErrorCode.HandshakeRequired);
    expect(runDirExists('before-hello')).toBe(false);
    await expectGoodClientUnaffected();
  });

  it('refuses a second HELLO after the handshake with MUXVISOR_BAD_MESSAGE', async () => {
    const raw = await raws.welcomed();
    raw.send(encodeMessage({ kind: Kind.Hello, versions: PROTOCOL_VERSIONS, token, pid: process.pid, name: 'again', caps: [] }));
    await expectFatal(raw, ErrorCode.BadMessage);
    await expectGoodClientUnaffected();
  });

  it('refuses a request id reused while the first request is in flight with MUXVISOR_BAD_MESSAGE', async () => {
    const raw = await raws.welcomed();
    // One write: the second OPEN arrives before the first can be answered.
    raw.send(Buffer.concat([
      encodeMessage({ kind: Kind.Open, id: 5, run: 'reused-id-a' }),
      encodeMessage({ kind: Kind.Open, id: 5, run: 'reused-id-b' }),
    ]));
    await expectFatal(raw, ErrorCode.BadMessage);
    expect(raw.messages.filter((m) => m.kind === Kind.Response)).toEqual([]);
    // The first OPEN had been accepted; with its owner gone, the run is finished as crashed.
    expect(await finishedMeta(home.home, 'reused-id-a', 5_000)).toMatchObject({ status: 'crashed', records: 0 });
    expect(runDirExists('reused-id-b')).toBe(false);
    await expectGoodClientUnaffected();
  });
});

describe('a bad HELLO closes the connection', () => {
  const hello = (body: Record<string, unknown> | undefined) => valueFrame(Kind.Hello, body);
  const validHello = () => ({ versions: [1, 1], token, pid: process.pid, name: 'raw-test', caps: [] });

  it.each([
    ['a wrong token', () => 'f'.repeat(64)],
    ['the right token in upper case', () => token.toUpperCase()],
    ['an empty token', () => ''],
  ])('refuses %s with MUXVISOR_BAD_TOKEN, and answers nothing after it', async (_, wrong) => {
    const raw = await raws.connect();
    // The bad HELLO, then a PING, a good HELLO and a request, all in one write: none may be answered.
    raw.send(Buffer.concat([
      hello({ ...validHello(), token: wrong() }),
      encodeMessage({ kind: Kind.Ping, id: 1 }),
      hello(validHello()),
      encodeMessage({ kind: Kind.Request, id: 2, channel: 0, op: 'status' }),
    ]));
    const error = await expectFatal(raw, ErrorCode.BadToken);
    expect(JSON.stringify(error), 'the refusal must not leak the token').not.toContain(token);
    expect(raw.messages).toEqual([error]);
    await expectGoodClientUnaffected();
  });

  it('answers nothing else on a connection whose token was refused, even to frames sent after the refusal', async () => {
    const raw = await raws.connect();
    const answer = await raw.hello('0'.repeat(64));
    expect(answer).toMatchObject({ kind: Kind.Error, id: 0, fatal: true, error: { code: ErrorCode.BadToken } });
    raw.send(Buffer.concat([hello(validHello()), encodeMessage({ kind: Kind.Ping, id: 3 })]));
    await within(raw.closed, 3_000, 'the supervisor to close the connection');
    expect(raw.messages).toEqual([answer]);
    await expectGoodClientUnaffected();
  });

  it('refuses HELLO offering versions [5, 9] with MUXVISOR_VERSION_MISMATCH naming both ranges', async () => {
    const raw = await raws.connect();
    raw.send(hello({ ...validHello(), versions: [5, 9] }));
    const error = await expectFatal(raw, ErrorCode.VersionMismatch);
    expect(error.error.data).toEqual({ client: [5, 9], supervisor: [...PROTOCOL_VERSIONS] });
    expect(error.error.message).toMatch(/5\D+9/);
    expect(error.error.message).toContain(String(PROTOCOL_VERSIONS[1]));
    await expectGoodClientUnaffected();
  });

  it.each([
    ['`pid` missing', 'pid', { pid: undefined }],
    ['`pid` as a string', 'pid', { pid: '4242' }],
    ['`name` missing', 'name', { name: undefined }],
    ['`versions` missing', 'versions', { versions: undefined }],
    ['`versions` as a number', 'versions', { versions: 1 }],
    ['`token` missing', 'token', { token: undefined }],
    ['`caps` as a string', 'caps', { caps: 'all' }],
  ] as const)('refuses HELLO with %s with MUXVISOR_BAD_MESSAGE naming the field', async (_, field, change) => {
    const raw = await raws.connect();
    const body: Record<string, unknown> = { ...validHello(), ...change };
    for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
    raw.send(hello(body));
    const error = await expectFatal(raw, ErrorCode.BadMessage);
    expect(error.error.message).toContain(`\`${field}\``);
    expect(error.error.data).toMatchObject({ field });
    await expectGoodClientUnaffected();
  });

  it('refuses a HELLO without a payload with MUXVISOR_BAD_MESSAGE', async () => {
    const raw = await raws.connect();
    raw.send(hello(undefined));
    await expectFatal(raw, ErrorCode.BadMessage);
    await expectGoodClientUnaffected();
  });

  it('sends a fatal MUXVISOR_TIMEOUT and closes when no HELLO comes within 5 s', async () => {
    const start = Date.now();
    const raw = await raws.connect();
    await expectFatal(raw, ErrorCode.Timeout, 8_000);
    const elapsed = Date.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(4_500);
    expect(elapsed).toBeLessThan(7_500);
    await expectGoodClientUnaffected();
  }, 15_000);
});

describe('a problem with one request is answered and the connection stays open', () => {
  it('answers a REQUEST for an unknown op on channel 0 with MUXVISOR_UNKNOWN_OP listing the known ops', async () => {
    const raw = await raws.welcomed();
    raw.send(encodeMessage({ kind: Kind.Request, id: 11, channel: 0, op: 'no.such.op' }));
    const error = await expectAnswerError(raw, 11, ErrorCode.UnknownOp);
    const data = error.error.data as { known: unknown };
    expect(data.known).toEqual(expect.arrayContaining(['status', 'runs.list', 'connections.list']));
    await expectPong(raw, 12);
    await expectGoodClientUnaffected();
  });

  it.each([
    ['SYNC', (id: number) => encodeMessage({ kind: Kind.Sync, id, channel: 9 })],
    ['FINISH', (id: number) => encodeMessage({ kind: Kind.Finish, id, channel: 9 })],
    ['DETACH', (id: number) => encodeMessage({ kind: Kind.Detach, id, channel: 9 })],
    ['REQUEST', (id: number) => encodeMessage({ kind: Kind.Request, id, channel: 9, op: 'summary' })],
  ] as const)('answers a %s on a channel with no run with MUXVISOR_UNKNOWN_RUN', async (_, frame) => {
    const raw = await raws.welcomed();
    raw.send(frame(21));
    const error = await expectAnswerError(raw, 21, ErrorCode.UnknownRun);
    expect(error.error.data).toMatchObject({ channel: 9 });
    await expectPong(raw, 22);
    await expectGoodClientUnaffected();
  });

  it('answers the first PUBLISH to a channel with no run with one MUXVISOR_UNKNOWN_RUN, and drops the records', async () => {
    const raw = await raws.welcomed();
    raw.send(Buffer.concat([1, 2, 3].map((step) => encodeMessage({ kind: Kind.Publish, channel: 9, record: { step } }))));
    const error = await expectAnswerError(raw, 0, ErrorCode.UnknownRun);
    expect(error.error.data).toMatchObject({ channel: 9 });
    // The PONG comes after everything the three PUBLISHes caused: one error in all.
    await expectPong(raw, 31);
    expect(raw.messages.filter(isError)).toEqual([error]);
    await expectGoodClientUnaffected();
  });

  it.each([
    ['a path (`../etc`)', '../etc'],
    ['an empty string', ''],
    ['200 characters', 'r'.repeat(200)],
  ])('answers an OPEN with a run id that is %s with MUXVISOR_INVALID_ARGUMENT', async (_, run) => {
    const raw = await raws.welcomed();
    raw.send(encodeMessage({ kind: Kind.Open, id: 41, run }));
    await expectAnswerError(raw, 41, ErrorCode.InvalidArgument);
    await expectPong(raw, 42);
    expect(statSync(join(home.layout.home, 'etc'), { throwIfNoEntry: false })).toBeUndefined();
    await expectGoodClientUnaffected();
  });

  it('answers an ATTACH with a run id that is a path (`../etc`) with MUXVISOR_INVALID_ARGUMENT', async () => {
    const raw = await raws.welcomed();
    raw.send(encodeMessage({ kind: Kind.Attach, id: 43, run: '../etc' }));
    await expectAnswerError(raw, 43, ErrorCode.InvalidArgument);
    await expectPong(raw, 44);
    await expectGoodClientUnaffected();
  });

  it('answers an OPEN of a run that another connection has open with MUXVISOR_RUN_EXISTS', async () => {
    const raw = await raws.welcomed();
    raw.send(encodeMessage({ kind: Kind.Open, id: 51, run: GOOD_RUN }));
    const error = await expectAnswerError(raw, 51, ErrorCode.RunExists);
    expect(error.error.data).toMatchObject({ run: GOOD_RUN, open: true });
    await expectPong(raw, 52);
    await expectGoodClientUnaffected();
  });

  it('answers an OPEN of a run that this connection has open with MUXVISOR_RUN_EXISTS', async () => {
    const raw = await raws.welcomed();
    raw.send(encodeMessage({ kind: Kind.Open, id: 53, run: 'opened-twice' }));
    await raw.next((m) => m.kind === Kind.Response && m.id === 53, 3_000);
    raw.send(encodeMessage({ kind: Kind.Open, id: 54, run: 'opened-twice' }));
    await expectAnswerError(raw, 54, ErrorCode.RunExists);
    await expectPong(raw, 55);
    await expectGoodClientUnaffected();
  });
});

describe('the well-behaved client', () => {
  it('finishes its run with exactly the records it published, in order, after all the bad input', async () => {
    publishBatch();
    const steps: unknown[] = [];
    for (let from: number | null = 0; from !== null;) {
      const page: Awaited<ReturnType<Run['history']>> = await good.history({ from, limit: 500, timeoutMs: 5_000 });
      for (const { record } of page.records) steps.push((record as { step: unknown }).step);
      from = page.next;
    }
    const expected = Array.from({ length: published }, (_, i) => i);
    expect(steps).toEqual(expected);
    const result = await good.finish({ timeoutMs: 5_000 });
    expect(result).toMatchObject({ run: GOOD_RUN, status: 'ok', records: published });
    expect(meta(home.home, GOOD_RUN)).toMatchObject({ state: 'finished', status: 'ok', records: published });
    expect(records(home.home, GOOD_RUN).map((r) => (r as { step: unknown }).step)).toEqual(expected);
    expect(await client.ping({ timeoutMs: 2_000 })).toBeGreaterThanOrEqual(0);
    expect(home.supervisorPid()).toBe(supervisorPid);
  });
});
