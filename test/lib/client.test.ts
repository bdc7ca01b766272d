/** The library's own contracts: close and destroy, await using, backpressure, options, signals. */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, ErrorCode, MuxvisorError } from '../../lib/index.js';
import { tempHome } from '../helpers/home.js';
import { finishedMeta, records } from '../helpers/logs.js';
import { rejection } from '../helpers/errors.js';

const handler = join(import.meta.dirname, '..', 'fixtures', 'handlers', 'misbehaving.mjs');
const home = tempHome();
let keeper: Client;
beforeAll(async () => {
  keeper = await connect({ home: home.home, name: 'client-test', supervisor: { idleTimeoutMs: 0 } });
});
afterAll(async () => {
  await keeper?.close();
  await home.cleanup();
});


describe('Client', () => {
  it('close() waits for the requests in flight, then refuses new ones with MUXVISOR_CONNECTION_CLOSED', async () => {
    const client = await connect({ home: home.home });
    const run = await client.openRun('close-drains', { handler });
    const answered = run.request('echo', 'late');
    await client.close();
    expect(await answered).toBe('late');
    expect(client.connected).toBe(false);
    expect((await rejection(client.status())).code).toBe(ErrorCode.ConnectionClosed);
    await client.close(); // idempotent
  });

  it('destroy() rejects every request in flight at once with MUXVISOR_CONNECTION_CLOSED', async () => {
    const client = await connect({ home: home.home });
    const run = await client.openRun('destroyed', { handler });
    const hanging = rejection(run.request('hang', undefined, { timeoutMs: 60_000 }));
    client.destroy();
    expect((await hanging).code).toBe(ErrorCode.ConnectionClosed);
    client.destroy(); // idempotent
    expect((await finishedMeta(home.home, 'destroyed')).status).toBe('crashed');
  });

  it('supports await using: the run finishes and the client closes at the end of the scope', async () => {
    {
      await using client = await connect({ home: home.home });
      await using run = await client.openRun('scoped');
      run.publish({ inside: true });
    }
    expect(await finishedMeta(home.home, 'scoped')).toMatchObject({ status: 'ok', records: 1 });
  });

  it('publish returns false above the high-water mark and drain() waits; nothing is dropped', async () => {
    const client = await connect({ home: home.home, highWaterBytes: 4096 });
    const run = await client.openRun('backpressure');
    let refusedOnce = false;
    for (let i = 0; i < 2000; i++) {
      if (!run.publish({ i, pad: 'z'.repeat(200) })) {
        refusedOnce = true;
        await run.drain();
      }
    }
    expect(refusedOnce).toBe(true);
    expect((await run.finish()).records).toBe(2000);
    expect((records(home.home, 'backpressure') as Array<{ i: number }>).map((r) => r.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    await client.close();
  });

  it('throws MUXVISOR_OVERLOADED instead of holding more than maxBufferedBytes', async () => {
    const client = await connect({ home: home.home, highWaterBytes: 1024, maxBufferedBytes: 64 * 1024 });
    const run = await client.openRun('overload');
    let error: unknown = null;
    try {
      for (let i = 0; i < 100; i++) run.publish({ i, pad: 'o'.repeat(4096) });
    } catch (e) {
      error = e;
    }
    expect((error as MuxvisorError).code).toBe(ErrorCode.Overloaded);
    const accepted = run.published;
    expect((await run.finish()).records).toBe(accepted);
    await client.close();
  });

  it('refuses invalid options with MUXVISOR_INVALID_ARGUMENT naming the option', async () => {
    const error = await rejection(connect({ home: home.home, timeoutMs: -5 }));
    expect(error.code).toBe(ErrorCode.InvalidArgument);
    expect(error.message).toBe('Expected `timeoutMs` to be a positive integer, got `-5` (number)');
  });

  it('honours an AbortSignal while connecting', async () => {
    const error = await rejection(connect({ home: home.home, signal: AbortSignal.abort() }));
    expect(error.code).toBe(ErrorCode.Cancelled);
  });

  it('answers many requests in flight at once, each with its own answer', async () => {
    const run = await keeper.openRun('many', { handler });
    const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => run.request('echo', i)));
    expect(answers).toEqual(Array.from({ length: 500 }, (_, i) => i));
    await run.finish();
  });

  it('measures a round trip with ping', async () => {
    const ms = await keeper.ping();
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(5_000);
  });
});
