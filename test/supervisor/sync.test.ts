/**
 * A SYNC's result is a promise that everything the connection published before it is durable.
 * Records dropped because the run stopped taking them (it was finishing) break that promise, so
 * the SYNC must fail instead. Found by the chaos suite: a drain finished a run while its client
 * still published, and the client's next SYNC was answered with a result.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect } from '../../lib/index.js';
import { encodeFrame, ErrorCode, Kind, type Message } from '../../protocol/index.js';
import { valueFrame } from '../helpers/bad-input.js';
import { type TempHome, tempHome } from '../helpers/home.js';
import { rawClient } from '../helpers/raw.js';

let home: TempHome;
let keeper: Client;
beforeAll(async () => {
  home = tempHome();
  keeper = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
});
afterAll(async () => {
  await keeper?.close();
  await home?.cleanup();
});

describe('SYNC and dropped records', () => {
  it('answers MUXVISOR_UNKNOWN_RUN, counting them, when records published after a FINISH were dropped while the run was finishing', async () => {
    const raw = await rawClient(home.layout.socketPath);
    expect((await raw.hello(readFileSync(home.layout.tokenPath, 'utf8').trim())).kind).toBe(Kind.Welcome);
    raw.send(valueFrame(Kind.Open, { run: 'dropped-then-synced' }, { id: 1 }));
    const opened = await raw.next((m) => 'id' in m && m.id === 1);
    expect(opened.kind).toBe(Kind.Response);
    const record = (i: number) => encodeFrame({ kind: Kind.Publish, flags: 0, id: 0, channel: 1 }, Buffer.from([0x81, 0xa1, 0x69, i]));
    // One write, read in one turn: FINISH puts the run in `finishing`, the three records after it
    // are dropped, and the SYNC arrives while the finish is still under way.
    raw.send(Buffer.concat([record(0), valueFrame(Kind.Finish, {}, { id: 2, channel: 1 }), record(1), record(2), record(3), encodeFrame({ kind: Kind.Sync, flags: 0, id: 3, channel: 1 })]));
    const synced = (await raw.next((m) => 'id' in m && m.id === 3)) as Message & { error?: { code: string; message: string; data: { dropped: number } } };
    expect(synced.kind).toBe(Kind.Error);
    expect(synced.error?.code).toBe(ErrorCode.UnknownRun);
    expect(synced.error?.data.dropped).toBe(3);
    expect(synced.error?.message).toContain('3 records published to it on channel 1');
    const finished = await raw.next((m) => 'id' in m && m.id === 2);
    expect(finished).toMatchObject({ kind: Kind.Response, result: { records: 1 } });
    raw.close();
  });

  it('answers a FINISH the same way when records it would vouch for were dropped', async () => {
    const raw = await rawClient(home.layout.socketPath);
    expect((await raw.hello(readFileSync(home.layout.tokenPath, 'utf8').trim())).kind).toBe(Kind.Welcome);
    raw.send(valueFrame(Kind.Open, { run: 'dropped-then-finished' }, { id: 1 }));
    expect((await raw.next((m) => 'id' in m && m.id === 1)).kind).toBe(Kind.Response);
    const record = encodeFrame({ kind: Kind.Publish, flags: 0, id: 0, channel: 1 }, Buffer.from([0x81, 0xa1, 0x69, 1]));
    raw.send(Buffer.concat([valueFrame(Kind.Finish, { status: 'interrupted', reason: 'test' }, { id: 2, channel: 1 }), record, record, valueFrame(Kind.Finish, {}, { id: 3, channel: 1 })]));
    const second = (await raw.next((m) => 'id' in m && m.id === 3)) as Message & { error?: { code: string; data: { dropped: number } } };
    expect(second.kind).toBe(Kind.Error);
    expect(second.error).toMatchObject({ code: ErrorCode.UnknownRun, data: { dropped: 2 } });
    expect(await raw.next((m) => 'id' in m && m.id === 2)).toMatchObject({ kind: Kind.Response, result: { records: 0, status: 'interrupted' } });
    raw.close();
  });
});
