/**
 * One client's requests never cost another client anything, and every request gets its answer,
 * in the corners a code review found: a value a Date cannot hold, DETACH beside pending requests,
 * owners finishing at once, a handler that fails to load with FINISH queued, answers larger than
 * a frame, long summaries, hangs blamed on the right run, too many dedicated workers.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, ErrorCode } from '../../lib/index.js';
import { encodeFrame, Kind } from '../../protocol/index.js';
import { rejection } from '../helpers/errors.js';
import { eventually, tempHome } from '../helpers/home.js';
import { finishedMeta, records } from '../helpers/logs.js';
import { rawClient } from '../helpers/raw.js';
import { existsSync, readFileSync } from 'node:fs';

const handler = join(import.meta.dirname, '..', 'fixtures', 'handlers', 'misbehaving.mjs');
const failing = join(import.meta.dirname, '..', 'fixtures', 'handlers', 'fails-to-load.mjs');
const home = tempHome();
let client: Client;
let other: Client;

beforeAll(async () => {
  client = await connect({ home: home.home, name: 'isolation', supervisor: { idleTimeoutMs: 0, workers: 1, watchdogMs: 500 } });
  other = await connect({ home: home.home, name: 'isolation-other' });
});
afterAll(async () => {
  await other?.close();
  await client?.close();
  await home.cleanup();
});

describe('isolation between clients', () => {
  it('refuses at the door a timestamp no date can hold, and the worker and other runs never see it', async () => {
    const bystander = await other.openRun('iso-bystander');
    bystander.publish({ before: true });
    const raw = await rawClient(home.layout.socketPath);
    await raw.hello(readFileSync(home.layout.tokenPath, 'utf8').trim());
    // OPEN {run: "p", config: <12-byte timestamp of 0x7f0000000000 seconds>}
    const payload = Buffer.from('82a3' + Buffer.from('run').toString('hex') + 'a170a6' + Buffer.from('config').toString('hex') + 'c70cff000000000000007f0000000000', 'hex');
    raw.send(encodeFrame({ kind: Kind.Open, flags: 0, id: 1, channel: 0 }, payload));
    const error = await raw.next((m) => m.kind === Kind.Error);
    expect(error).toMatchObject({ fatal: true, error: { code: ErrorCode.BadPayload } });
    bystander.publish({ after: true });
    expect(await bystander.sync()).toMatchObject({ records: 2 });
    expect((await client.status()).problems).toEqual([]);
    await bystander.finish();
  });

  it('keeps requests pending on one run when the same connection detaches from another', async () => {
    const slow = await client.openRun('iso-slow', { handler });
    const other2 = await client.openRun('iso-detached');
    const controller = new AbortController();
    const pending = rejection(slow.request('hang', undefined, { signal: controller.signal }));
    await other2.detach();
    await slow.request('echo', 'after the detach'); // the worker has seen the DETACH by now
    const marker = join(home.home, 'runs', 'iso-slow', 'aborted');
    // A request forgotten at DETACH would have had its work aborted at once, as if its client had gone.
    expect(existsSync(marker)).toBe(false);
    controller.abort();
    expect((await pending).code).toBe(ErrorCode.Cancelled);
    await eventually(() => existsSync(marker), 'the cancel to reach the pending request');
    expect(readFileSync(marker, 'utf8')).toBe(ErrorCode.Cancelled);
    await slow.finish();
  });

  it('answers every owner that finishes a run, however close together', async () => {
    for (let i = 0; i < 20; i++) {
      const run = await client.openRun(`iso-race-${i}`);
      const attached = await other.attachRun(`iso-race-${i}`);
      run.publish({ i });
      await run.sync();
      const [a, b] = await Promise.all([run.finish({ timeoutMs: 5_000 }), attached.finish({ timeoutMs: 5_000 })]);
      expect(a.records).toBe(1);
      expect(b).toEqual(a);
    }
  });

  it('finishes as failed a run whose handler fails to load while its FINISH waits, and answers that FINISH', async () => {
    const raw = await rawClient(home.layout.socketPath);
    await raw.hello(readFileSync(home.layout.tokenPath, 'utf8').trim());
    raw.send(Buffer.concat([
      encodeFrame({ kind: Kind.Open, flags: 0, id: 1, channel: 0 }, Buffer.from(`82a3${Buffer.from('run').toString('hex')}a6${Buffer.from('iso-ff').toString('hex')}a7${Buffer.from('handler').toString('hex')}da${failing.length.toString(16).padStart(4, '0')}${Buffer.from(failing).toString('hex')}`, 'hex')),
      encodeFrame({ kind: Kind.Finish, flags: 0, id: 2, channel: 1 }, Buffer.alloc(0)),
    ]));
    expect(await raw.next((m) => 'id' in m && m.id === 1)).toMatchObject({ kind: Kind.Error, error: { code: ErrorCode.HandlerError } });
    expect(await raw.next((m) => 'id' in m && m.id === 2)).toMatchObject({ kind: Kind.Response, result: { status: 'failed' } });
    expect((await finishedMeta(home.home, 'iso-ff')).status).toBe('failed');
    raw.close();
  });

  it('refuses to send a frame over the limit, and answers an answer that would not fit with a typed error', async () => {
    const big = 'x'.repeat(1024 * 1024);
    const run = await client.openRun('iso-big');
    const local = await rejection(run.request('echo', Array.from({ length: 17 }, () => big)));
    expect(local.code).toBe(ErrorCode.FrameTooLarge);
    expect(local.message).toContain('nothing was sent');
    expect(() => run.publish(Array.from({ length: 17 }, () => big))).toThrowError(expect.objectContaining({ code: ErrorCode.FrameTooLarge }));
    for (let k = 0; k < 17; k++) run.publish({ [`k${k}`]: big });
    const tooBig = await rejection(run.summary());
    expect(tooBig.code).toBe(ErrorCode.InvalidArgument);
    expect(tooBig.message).toContain('limit of a frame');
    expect(client.connected).toBe(true);
    await run.finish();
  });

  it('pages history by size, so a page always fits in a frame', async () => {
    const big = 'x'.repeat(1024 * 1024);
    const rec = await client.openRun('iso-history');
    for (let i = 0; i < 12; i++) rec.publish({ i, big });
    const page = await rec.history({ limit: 100 });
    expect(page.records.length).toBeLessThan(12);
    expect(page.next).toBe(page.records.length);
    expect(client.connected).toBe(true);
    await rec.finish();
  });

  it('answers a summary over a log too long to read within the watchdog, without the worker being called hung', async () => {
    const run = await client.openRun('iso-long');
    for (let i = 0; i < 400_000; i++) {
      if (!run.publish({ i, loss: 1 / (i + 1) })) await run.drain();
    }
    await run.sync();
    expect(await run.summary()).toEqual({ i: 399_999, loss: 1 / 400_000 });
    expect((await client.status()).problems).toEqual([]);
    await run.finish();
  });

  it('blames a hang on the run whose handler hung: its neighbour on the same worker lives on', async () => {
    const hanger = await client.openRun('iso-hanger', { handler });
    const neighbour = await other.openRun('iso-neighbour');
    for (let round = 0; round < 4; round++) {
      neighbour.publish({ round });
      const error = await rejection(hanger.request('block', undefined, { timeoutMs: 10_000 }));
      expect([ErrorCode.WorkerFailed, ErrorCode.UnknownRun]).toContain(error.code);
      if (error.code === ErrorCode.UnknownRun) break;
    }
    expect((await finishedMeta(home.home, 'iso-hanger')).status).toBe('failed');
    neighbour.publish({ round: 'last' });
    expect(await neighbour.sync()).toMatchObject({ records: 5 });
    await neighbour.finish();
    expect(records(home.home, 'iso-neighbour')).toHaveLength(5);
  });

  it('gives the same channel to an owner that attaches to its own run again', async () => {
    const run = await client.openRun('iso-self');
    const again = await client.attachRun('iso-self');
    expect(again.channel).toBe(run.channel);
    await run.finish();
  });

  it('refuses more dedicated workers than the limit with MUXVISOR_OVERLOADED', async () => {
    const opened = [];
    let refused = null;
    for (let i = 0; i < 20 && refused === null; i++) {
      try {
        opened.push(await client.openRun(`iso-ded-${i}`, { dedicated: true }));
      } catch (error) {
        refused = error;
      }
    }
    expect(opened).toHaveLength(16);
    expect((refused as { code: string }).code).toBe(ErrorCode.Overloaded);
    await Promise.all(opened.map((r) => r.finish()));
  });
});
