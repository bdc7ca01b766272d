/**
 * What a client sends just before it dies is taken, even when the supervisor's next write to it
 * fails first. Node destroys a socket whose write failed (EPIPE) with its unread input in it: a
 * process killed by SIGTERM writes FINISH (interrupted) and dies, and when the supervisor wrote to
 * it before reading that FINISH, the run ended `crashed` (seen once in the chaos suite). Here the
 * order is forced: the supervisor has stopped reading the client (push-back: its answers pile up
 * unread), so the FINISH waits in the kernel while the supervisor's write fails.
 */
import { describe, expect, it } from 'vitest';
import { encodeFrame, Kind, type Message } from '../../protocol/index.js';
import { rawFrame, rawSupervisor, valueFrame, within } from '../helpers/bad-input.js';
import { eventually } from '../helpers/home.js';

const MiB = 1024 * 1024;

const t = rawSupervisor('muxvisor-dying-');

/** Bytes the supervisor has read from connection `conn` (connections.list). */
async function bytesIn(conn: number): Promise<number> {
  const list = (await t.client.request('connections.list', undefined, { timeoutMs: 5_000 })) as Array<{ conn: number; bytesIn: number }>;
  const found = list.find((c) => c.conn === conn);
  if (found === undefined) throw new Error(`connection ${conn} is not listed`);
  return found.bytesIn;
}

/** Waits until the supervisor has read nothing more from `conn` over three looks 100 ms apart. */
async function untilItStopsReading(conn: number): Promise<number> {
  let last = -1;
  let still = 0;
  return within((async () => {
    while (still < 3) {
      await new Promise((r) => setTimeout(r, 100));
      const now = await bytesIn(conn);
      still = now === last ? still + 1 : 0;
      last = now;
    }
    return last;
  })(), 10_000, `the supervisor to stop reading connection ${conn}`);
}

describe('a client that dies as it writes', () => {
  it('has its last records and FINISH (interrupted) taken although the write to it failed first', async () => {
    const raw = await t.raws.welcomed();
    const conn = (raw.messages[0] as Message & { connection: number }).connection;
    raw.send(valueFrame(Kind.Open, { run: 'dies-writing' }, { id: 1 }));
    const opened = await raw.next((m) => 'id' in m && m.id === 1);
    const channel = (opened as Message & { result: { channel: number } }).result.channel;

    // The client stops reading and asks for answers until the supervisor, with more than
    // outputHighWaterBytes (4 MiB) of them queued, stops reading it: 3 MiB at once, then 64 KiB at
    // a time (each fits in the kernel's buffer, so that what follows is not stuck behind it).
    raw.socket.pause();
    let sent = (await bytesIn(conn));
    let id = 10;
    const ping = (bytes: number) => {
      const payload = Buffer.alloc(bytes, 0x5a);
      payload[0] = 0xc6; // msgpack bin 32 of the rest
      payload.writeUInt32BE(bytes - 5, 1);
      const frame = rawFrame({ kind: Kind.Ping, id: id++ }, payload);
      raw.send(frame);
      sent += frame.length;
    };
    const allRead = async (ms: number) => {
      for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (await bytesIn(conn) === sent) return true;
      return false;
    };
    for (let i = 0; i < 3; i++) ping(MiB);
    expect(await allRead(5_000), 'the first 3 MiB are read').toBe(true);
    do ping(64 * 1024); while (await allRead(500));
    expect(sent, 'pushed back within the 4 MiB high-water mark and a little').toBeLessThan(6 * MiB);
    const before = await untilItStopsReading(conn);

    // Now its last words: three records and a FINISH, in the kernel, unread by the supervisor.
    const record = (i: number) => encodeFrame({ kind: Kind.Publish, flags: 0, id: 0, channel }, Buffer.from([0x81, 0xa1, 0x69, i]));
    const last = Buffer.concat([record(1), record(2), record(3), valueFrame(Kind.Finish, { status: 'interrupted', reason: 'SIGTERM' }, { id: 2, channel })]);
    await new Promise<void>((resolve, reject) => raw.socket.write(last, (error) => (error ? reject(error) : resolve())));
    await new Promise((r) => setTimeout(r, 300));
    expect(await bytesIn(conn), 'the FINISH is still unread when the client dies').toBe(before);

    // It dies: the supervisor's pending write to it fails before anything more is read.
    raw.socket.destroy();
    const info = await eventually(async () => {
      const got = await t.client.runs.get('dies-writing', { summary: false });
      if (got.state !== 'finished') throw new Error(`run is ${got.state}`);
      return got;
    }, 'the run to finish', 10_000);
    expect(info.meta).toMatchObject({ status: 'interrupted', reason: 'SIGTERM', records: 3 });
    // Other clients were never disturbed.
    await t.client.ping({ timeoutMs: 2_000 });
  });
});
