import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, ErrorCode, MuxvisorError } from '../../lib/index.js';
import { tempHome } from '../helpers/home.js';
import { finishedMeta, meta, records, scan } from '../helpers/logs.js';
import { rejection } from '../helpers/errors.js';

const home = tempHome();
let client: Client;
let other: Client;

beforeAll(async () => {
  client = await connect({ home: home.home, name: 'runs-test', supervisor: { idleTimeoutMs: 0 } });
  other = await connect({ home: home.home, name: 'runs-test-other' });
});
afterAll(async () => {
  await other?.close();
  await client?.close();
  await home.cleanup();
});


describe('runs', () => {
  it('records every published record, in order, and finishes with what it recorded', async () => {
    const run = await client.openRun('ordered');
    for (let i = 0; i < 5000; i++) run.publish({ i, loss: 1 / (i + 1) });
    const result = await run.finish();
    expect(result).toMatchObject({ run: 'ordered', status: 'ok', records: 5000 });
    expect(records(home.home, 'ordered')).toEqual(Array.from({ length: 5000 }, (_, i) => ({ i, loss: 1 / (i + 1) })));
    const s = scan(home.home, 'ordered');
    expect(s).toMatchObject({ records: 5000, torn: null, finished: true });
    expect(result.bytes).toBe(s.fileBytes);
    expect(meta(home.home, 'ordered')).toMatchObject({ state: 'finished', status: 'ok', records: 5000 });
  });

  it('answers summary and history from the log', async () => {
    const run = await client.openRun('summarized');
    run.publish({ step: 1, loss: 0.9, lr: 0.1 });
    run.publish({ step: 2, loss: 0.5 });
    run.publish('not a map: ignored by the summary');
    run.publish({ step: 3, acc: 0.75 });
    expect(await run.summary()).toEqual({ step: 3, loss: 0.5, lr: 0.1, acc: 0.75 });
    expect(await run.summary(['loss'])).toEqual({ loss: 0.5 });
    const page = await run.history({ from: 1, limit: 2, keys: ['step'] });
    expect(page).toEqual({ from: 1, records: [{ index: 1, record: { step: 2 } }, { index: 2, record: 'not a map: ignored by the summary' }], next: 3 });
    run.publish({ step: 4 });
    expect(await run.summary(['step', 'acc'])).toEqual({ step: 4, acc: 0.75 });
    await run.finish();
  });

  it('sync resolves once everything published before it is durable', async () => {
    const run = await client.openRun('synced');
    for (let i = 0; i < 100; i++) run.publish({ i });
    const synced = await run.sync();
    expect(synced.records).toBe(100);
    expect(scan(home.home, 'synced').records).toBe(100);
    const info = (await run.request('info')) as { syncedBytes: number; bytes: number };
    expect(info.syncedBytes).toBe(info.bytes);
    await run.finish();
  });

  it('refuses to open a run id that is open, or that was recorded before', async () => {
    const run = await client.openRun('taken');
    const open = await rejection(other.openRun('taken'));
    expect(open.code).toBe(ErrorCode.RunExists);
    expect(open.message).toContain('already open');
    await run.finish();
    const recorded = await rejection(client.openRun('taken'));
    expect(recorded.code).toBe(ErrorCode.RunExists);
    expect(recorded.message).toContain('recorded before');
  });

  it('answers OPEN once the run exists on disk: its log holds the OPEN entry, and meta.json says open', async () => {
    const run = await client.openRun('exists-when-answered');
    expect(scan(home.home, 'exists-when-answered')).toMatchObject({ records: 0, torn: null, finished: false });
    expect(meta(home.home, 'exists-when-answered')).toMatchObject({ state: 'open', run: 'exists-when-answered' });
    await run.finish();
  });

  it('refuses a run whose log appeared behind its back, leaves that log as it was, and goes on', async () => {
    // The supervisor never saw this id: the worker finds the log when it makes the run's file.
    const dir = join(home.home, 'runs', 'planted');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'run.mvlog'), 'not ours');
    const error = await rejection(client.openRun('planted'));
    expect(error.code).toBe(ErrorCode.RunExists);
    expect(error.message).toContain('recorded before');
    expect(readFileSync(join(dir, 'run.mvlog'), 'utf8')).toBe('not ours');
    expect(existsSync(join(dir, 'meta.json'))).toBe(false);
    const next = await client.openRun('after-planted');
    next.publish({ ok: true });
    expect(await next.finish()).toMatchObject({ status: 'ok', records: 1 });
  });

  it('opens again an id whose recorded run was removed since', async () => {
    await (await client.openRun('removed-since')).finish();
    rmSync(join(home.home, 'runs', 'removed-since'), { recursive: true });
    const again = await client.openRun('removed-since');
    again.publish({ second: true });
    expect(await again.finish()).toMatchObject({ status: 'ok', records: 1 });
    expect(records(home.home, 'removed-since')).toEqual([{ second: true }]);
  });

  it('refuses run ids that are not safe file names, and keeps the connection', async () => {
    for (const bad of ['../escape', '', '.hidden', 'x'.repeat(129), 'a b']) {
      expect((await rejection(client.openRun(bad))).code, bad).toBe(ErrorCode.InvalidArgument);
    }
    expect(await client.ping()).toBeGreaterThan(0);
  });

  it('lets another process attach as co-owner; either owner may finish it for both', async () => {
    const run = await client.openRun('shared');
    const attached = await other.attachRun('shared');
    run.publish({ from: 'opener' });
    attached.publish({ from: 'attached' });
    await run.sync();
    await attached.sync();
    const result = await attached.finish({ status: 'failed', reason: 'diverged', exitCode: 3 });
    expect(result).toMatchObject({ status: 'failed', records: 2 });
    expect(await finishedMeta(home.home, 'shared')).toMatchObject({ status: 'failed', reason: 'diverged', exitCode: 3 });
    const late = await rejection(run.sync());
    expect(late.code).toBe(ErrorCode.UnknownRun);
  });

  it('answers attach to a run that is not open with MUXVISOR_UNKNOWN_RUN', async () => {
    expect((await rejection(client.attachRun('nobody'))).code).toBe(ErrorCode.UnknownRun);
  });

  it('finishes a run as crashed when its last owner detaches without finishing', async () => {
    const run = await client.openRun('abandoned');
    const attached = await other.attachRun('abandoned');
    run.publish({ a: 1 });
    await run.detach();
    expect((await client.request('runs.list') as { open: Array<{ run: string }> }).open.map((r) => r.run)).toContain('abandoned');
    await attached.detach();
    const m = await finishedMeta(home.home, 'abandoned');
    expect(m.status).toBe('crashed');
    expect(String(m.reason)).toContain('detached without finishing');
    expect(records(home.home, 'abandoned')).toEqual([{ a: 1 }]);
  });

  it('answers an unknown handler op with MUXVISOR_UNKNOWN_OP naming the known ones', async () => {
    const run = await client.openRun('ops');
    const error = await rejection(run.request('nope'));
    expect(error.code).toBe(ErrorCode.UnknownOp);
    expect((error.data as { known: string[] }).known).toContain('summary');
    const sup = await rejection(client.request('nope'));
    expect(sup.code).toBe(ErrorCode.UnknownOp);
    expect((sup.data as { known: string[] }).known).toEqual(expect.arrayContaining(['status', 'runs.list', 'shutdown']));
    await run.finish();
  });

  it('refuses publish on a finished run in the caller, and warns once when records reach a finished run', async () => {
    const run = await client.openRun('closed-door');
    const attached = await other.attachRun('closed-door');
    await run.finish();
    expect(() => run.publish({ late: true })).toThrowError(expect.objectContaining({ code: ErrorCode.UnknownRun }));
    const warnings: MuxvisorError[] = [];
    other.on('warning', (e: MuxvisorError) => warnings.push(e));
    attached.publish({ late: 1 });
    attached.publish({ late: 2 });
    await other.ping();
    await other.ping();
    expect(warnings.map((w) => w.code)).toEqual([ErrorCode.UnknownRun]);
    expect(records(home.home, 'closed-door')).toEqual([]);
  });

  it('reports open and recorded runs, connections and traffic in status and lists', async () => {
    const run = await client.openRun('listed');
    run.publish({ x: 1 });
    await run.sync();
    const status = await client.status();
    expect(status).toMatchObject({ state: 'running', home: home.home, server: { name: 'muxvisor' } });
    expect((status.runs as { open: number }).open).toBeGreaterThanOrEqual(1);
    expect((status.traffic as { recordsIn: number }).recordsIn).toBeGreaterThan(0);
    const list = (await client.request('runs.list')) as { open: Array<Record<string, unknown>>; recorded: Array<Record<string, unknown>> };
    expect(list.open.find((r) => r.run === 'listed')).toMatchObject({ records: 1, handler: 'default' });
    expect(list.recorded.find((r) => r.run === 'ordered')).toMatchObject({ status: 'ok', records: 5000 });
    const conns = (await client.request('connections.list')) as Array<Record<string, unknown>>;
    expect(conns.map((c) => c.name)).toEqual(expect.arrayContaining(['runs-test', 'runs-test-other']));
    await run.finish();
  });

  it('makes up a run id when none is given, and tells children which run to attach to', async () => {
    const run = await client.openRun();
    expect(run.id).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]+-\d{8}-\d{6}-[0-9a-f]{6}$/);
    expect(process.env.MUXVISOR_RUN).toBe(run.id);
    const again = await other.attachRun();
    expect(again.id).toBe(run.id);
    await run.finish();
    expect(existsSync(join(home.home, 'runs', run.id, 'run.mvlog'))).toBe(true);
  });
});
