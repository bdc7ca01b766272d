/**
 * Handlers that throw, hang, block or crash their thread; clients and supervisors killed -9; a
 * SIGTERM with runs open. Real daemons, real processes, temporary homes.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, ErrorCode, MuxvisorError } from '../../lib/index.js';
import { runFixture } from '../helpers/children.js';
import { alive, eventually, type TempHome, tempHome, waitForExit } from '../helpers/home.js';
import { finishedMeta, logPath, records, scan } from '../helpers/logs.js';
import { EntryType } from '../../supervisor/recorder/log-format.js';
import { readRunLog } from '../../supervisor/recorder/log-reader.js';
import { rejection } from '../helpers/errors.js';

const handler = join(import.meta.dirname, '..', 'fixtures', 'handlers', 'misbehaving.mjs');


describe('handlers that misbehave cost only their own requests, or their own worker', () => {
  const home = tempHome();
  let client: Client;
  beforeAll(async () => {
    client = await connect({ home: home.home, name: 'faults', supervisor: { idleTimeoutMs: 0, watchdogMs: 600, workers: 1 } });
  });
  afterAll(async () => {
    await client?.close();
    await home.cleanup();
  });

  it('answers a request whose handler throws with MUXVISOR_HANDLER_ERROR, and keeps the run working', async () => {
    const run = await client.openRun('throws', { handler });
    const error = await rejection(run.request('throw', { n: 1 }));
    expect(error.code).toBe(ErrorCode.HandlerError);
    expect(error.message).toContain('handler threw on purpose ({"n":1})');
    expect(await run.request('echo', { still: 'here' })).toEqual({ still: 'here' });
    await run.finish();
  });

  it('rejects a request that hangs when its deadline passes, and the deadline reaches the handler', async () => {
    const run = await client.openRun('hangs', { handler });
    const error = await rejection(run.request('hang', undefined, { timeoutMs: 200 }));
    expect(error.code).toBe(ErrorCode.Timeout);
    expect(error.message).toContain('timed out after 200 ms');
    await eventually(() => existsSync(join(home.home, 'runs', 'hangs', 'aborted')), 'the handler to see its signal abort');
    expect(await run.request('echo', 1)).toBe(1);
    await run.finish();
  });

  it('cancels a request at the supervisor when its AbortSignal aborts', async () => {
    const run = await client.openRun('cancels', { handler });
    const controller = new AbortController();
    const pending = rejection(run.request('hang', undefined, { signal: controller.signal }));
    setTimeout(() => controller.abort(new Error('user gave up')), 50);
    const error = await pending;
    expect(error.code).toBe(ErrorCode.Cancelled);
    const marker = join(home.home, 'runs', 'cancels', 'aborted');
    await eventually(() => existsSync(marker), 'the CANCEL to abort the handler');
    expect(readFileSync(marker, 'utf8')).toBe(ErrorCode.Cancelled);
    await run.finish();
  });

  it('replaces a worker whose handler blocks its thread; pending requests fail typed; runs restart from their logs with nothing lost', async () => {
    const blocking = await client.openRun('blocks', { handler });
    const neighbour = await client.openRun('neighbour'); // same worker (the pool has one)
    for (let i = 0; i < 500; i++) {
      blocking.publish({ i });
      neighbour.publish({ i });
    }
    await blocking.sync();
    const stuck = rejection(blocking.request('block'));
    for (let i = 500; i < 1000; i++) neighbour.publish({ i }); // arrives while the worker hangs
    // SYNCs waiting while it hangs are carried over, answered once the replayed records are durable.
    const neighbourSynced = neighbour.sync();
    const blockingSynced = blocking.sync();
    const error = await stuck;
    expect(error.code).toBe(ErrorCode.WorkerFailed);
    expect(error.message).toContain('hung');
    expect(await neighbourSynced).toMatchObject({ records: 1000 });
    expect(await blockingSynced).toMatchObject({ records: 500 });
    for (let i = 500; i < 1000; i++) blocking.publish({ i });
    expect(await blocking.request('count')).toEqual({ seen: 1000, resumed: true });
    expect((await neighbour.finish()).records).toBe(1000);
    expect((await blocking.finish()).records).toBe(1000);
    for (const run of ['blocks', 'neighbour']) {
      expect(records(home.home, run)).toEqual(Array.from({ length: 1000 }, (_, i) => ({ i })));
    }
    const status = await client.status();
    expect(status.problems).toEqual(expect.arrayContaining([expect.stringContaining('worker thread failure')]));
  });

  it('restarts the runs of a worker whose handler crashes its thread, with nothing lost', async () => {
    const run = await client.openRun('crashes', { handler });
    for (let i = 0; i < 300; i++) run.publish({ i });
    expect(await run.request('crash')).toBe('crashing');
    for (let i = 300; i < 600; i++) run.publish({ i });
    await eventually(async () => ((await run.request('count')) as { resumed: boolean }).resumed, 'the run to be resumed on a new worker');
    expect(await run.sync()).toMatchObject({ records: 600 });
    await run.finish();
    expect(records(home.home, 'crashes')).toEqual(Array.from({ length: 600 }, (_, i) => ({ i })));
  });

  it('ends a run whose worker died after writing its FINISH as that FINISH says, appending nothing after it', async () => {
    const failuresBefore = ((await client.request('status')) as { workerFailures?: number; problems: string[] }).problems.join(' ');
    const run = await client.openRun('dies-finishing', { handler, config: { crashOnFinish: true } });
    for (let i = 0; i < 100; i++) run.publish({ i });
    const result = await run.finish();
    expect(result).toMatchObject({ status: 'ok', records: 100 });
    // The worker did die, and the run was resumed on a new one.
    const problems = ((await client.request('status')) as { problems: string[] }).problems.join(' ');
    expect(problems).not.toBe(failuresBefore);
    expect(problems).toMatch(/worker thread failure/);
    const entries = [...readRunLog(logPath(home.home, 'dies-finishing'))].map((e) => e.type);
    expect(entries.filter((t) => t === EntryType.Finish)).toHaveLength(1);
    expect(entries.at(-1)).toBe(EntryType.Finish);
    expect(entries.filter((t) => t === EntryType.Recovered)).toHaveLength(0);
    expect(records(home.home, 'dies-finishing')).toEqual(Array.from({ length: 100 }, (_, i) => ({ i })));
    expect(await finishedMeta(home.home, 'dies-finishing')).toMatchObject({ state: 'finished', status: 'ok', records: 100 });
  });

  it('fails a run with a typed reason when its handler cannot be restarted, keeping its records', async () => {
    const run = await client.openRun('unrestartable', { handler, config: { crashOnReplay: true } });
    for (let i = 0; i < 50; i++) run.publish({ i });
    await run.sync();
    await run.request('crash');
    const m = await finishedMeta(home.home, 'unrestartable');
    expect(m.status).toBe('failed');
    expect(String(m.reason)).toContain('refusing to resume');
    expect(records(home.home, 'unrestartable')).toHaveLength(50);
  });

  it('answers an open with a handler that cannot load with a typed error, and records nothing half-done', async () => {
    const error = await rejection(client.openRun('no-handler', { handler: '/nonexistent/handler.mjs' }));
    expect(error.code).toBe(ErrorCode.HandlerError);
    expect(error.message).toContain('failed to start');
    const m = await finishedMeta(home.home, 'no-handler');
    expect(m.status).toBe('failed');
  });
});

describe('processes that die', () => {
  let home: TempHome;
  afterEach(async () => home?.cleanup());

  it('finishes the run of a client killed with SIGKILL as crashed, with every synced record in its log', async () => {
    home = tempHome();
    const keeper = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
    const child = runFixture('publish.mjs', [], { MUXVISOR_HOME: home.home, RUNS: 'victim', RECORDS: '2000', SYNC: '1', HOLD: '1' });
    await child.line((l) => l.event === 'published');
    child.process.kill('SIGKILL');
    const m = await finishedMeta(home.home, 'victim');
    expect(m.status).toBe('crashed');
    expect(String(m.reason)).toContain('went away without finishing');
    const s = scan(home.home, 'victim');
    expect(s).toMatchObject({ records: 2000, torn: null, finished: true });
    await keeper.close();
  });

  it('rejects pending requests within a second when the supervisor is killed, and a new connect starts a fresh one that recovers the runs', async () => {
    home = tempHome();
    const client = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
    const firstPid = client.server.pid;
    const run = await client.openRun('orphaned', { handler });
    for (let i = 0; i < 1000; i++) run.publish({ i });
    await run.sync();
    for (let i = 1000; i < 1100; i++) run.publish({ i }); // published, not synced: may or may not survive
    const disconnected = new Promise<unknown>((resolve) => client.once('disconnect', resolve));
    const pending = rejection(run.request('hang', undefined, { timeoutMs: 60_000 }));
    await new Promise((r) => setTimeout(r, 50));
    const killedAt = Date.now();
    process.kill(firstPid, 'SIGKILL');
    const error = await pending;
    expect(Date.now() - killedAt).toBeLessThan(1_000);
    expect(error.code).toBe(ErrorCode.ConnectionClosed);
    expect(await disconnected).toBeInstanceOf(MuxvisorError);
    expect(() => run.publish({ after: 'death' })).toThrowError(expect.objectContaining({ code: ErrorCode.ConnectionClosed }));
    await waitForExit(firstPid, 5_000);

    const again = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
    expect(again.started).toBe(true);
    expect(again.server.pid).not.toBe(firstPid);
    const m = await finishedMeta(home.home, 'orphaned');
    expect(m.status).toBe('crashed');
    expect(String(m.reason)).toContain('stopped while the run was open');
    const kept = records(home.home, 'orphaned') as Array<{ i: number }>;
    expect(kept.length).toBeGreaterThanOrEqual(1000);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => ({ i })));
    expect(scan(home.home, 'orphaned')).toMatchObject({ torn: null, finished: true });
    await again.close();
  });

  it('keeps the status of a run whose log was complete when the supervisor died before meta.json said so', async () => {
    home = tempHome();
    const client = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
    const run = await client.openRun('finished-unsaid');
    for (let i = 0; i < 10; i++) run.publish({ i });
    await run.finish();
    await client.close();
    await home.stopSupervisor('SIGKILL');
    // The moment between the FINISH entry's fsync and meta.json's rename: meta.json still says open.
    const metaPath = join(home.layout.runsDir, 'finished-unsaid', 'meta.json');
    writeFileSync(metaPath, JSON.stringify({ ...JSON.parse(readFileSync(metaPath, 'utf8')), state: 'open', status: null }));
    const again = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
    const m = await finishedMeta(home.home, 'finished-unsaid');
    expect(m).toMatchObject({ state: 'finished', status: 'ok', records: 10 });
    expect(scan(home.home, 'finished-unsaid')).toMatchObject({ records: 10, torn: null, finished: true });
    await again.close();
  });

  it('finishes as crashed a run the supervisor died opening (its log written, its meta.json not yet)', async () => {
    home = tempHome();
    const client = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
    const run = await client.openRun('died-opening');
    for (let i = 0; i < 10; i++) run.publish({ i });
    await run.sync();
    client.destroy();
    await home.stopSupervisor('SIGKILL');
    // The moment between the log's creation and meta.json's first write; and, for another run,
    // the moment between its directory's creation and its log's.
    rmSync(join(home.layout.runsDir, 'died-opening', 'meta.json'));
    mkdirSync(join(home.layout.runsDir, 'never-opened'));
    // And between a log's creation and its header's write, and within its OPEN entry's write.
    mkdirSync(join(home.layout.runsDir, 'log-empty'));
    writeFileSync(join(home.layout.runsDir, 'log-empty', 'run.mvlog'), '');
    mkdirSync(join(home.layout.runsDir, 'open-torn'));
    writeFileSync(join(home.layout.runsDir, 'open-torn', 'run.mvlog'), readFileSync(join(home.layout.runsDir, 'died-opening', 'run.mvlog')).subarray(0, 20));
    // And while a log was still under its own name (not yet linked in as run.mvlog), or a
    // meta.json under its temporary one.
    mkdirSync(join(home.layout.runsDir, 'log-unlinked'));
    writeFileSync(join(home.layout.runsDir, 'log-unlinked', 'run.mvlog.new-1-1-0'), readFileSync(join(home.layout.runsDir, 'died-opening', 'run.mvlog')));
    writeFileSync(join(home.layout.runsDir, 'died-opening', 'meta.json.tmp-1-1-1-0'), '{"half');
    const again = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
    const m = await finishedMeta(home.home, 'died-opening');
    expect(m).toMatchObject({ run: 'died-opening', state: 'finished', status: 'crashed', records: 10 });
    expect(String(m.reason)).toContain('while the run was being opened');
    expect(m.openedAt).toEqual(expect.any(Number));
    expect(scan(home.home, 'died-opening')).toMatchObject({ records: 10, torn: null, finished: true });
    await eventually(() => !existsSync(join(home.layout.runsDir, 'never-opened')), 'the empty run directory to be removed');
    await eventually(() => !existsSync(join(home.layout.runsDir, 'log-empty')), 'the run directory with an empty log to be removed');
    await eventually(() => !existsSync(join(home.layout.runsDir, 'open-torn')), 'the run directory whose OPEN entry is torn to be removed');
    await eventually(() => !existsSync(join(home.layout.runsDir, 'log-unlinked')), 'the run directory whose log was never linked in to be removed');
    expect(readdirSync(join(home.layout.runsDir, 'died-opening')).sort()).toEqual(['meta.json', 'run.mvlog']);
    await again.close();
  });

  it('drains on SIGTERM: every open run ends interrupted and fsynced, clients get a goodbye, the socket goes', async () => {
    home = tempHome();
    const client = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
    const pid = client.server.pid;
    const runs = await Promise.all(['t1', 't2', 't3'].map((id) => client.openRun(id)));
    for (const run of runs) for (let i = 0; i < 700; i++) run.publish({ i });
    await Promise.all(runs.map((r) => r.drain()));
    await client.ping();
    const disconnected = new Promise<MuxvisorError | null>((resolve) => client.once('disconnect', resolve));
    process.kill(pid, 'SIGTERM');
    await disconnected;
    expect(await waitForExit(pid, 10_000)).toBe(true);
    for (const id of ['t1', 't2', 't3']) {
      const m = await finishedMeta(home.home, id);
      expect(m).toMatchObject({ status: 'interrupted', records: 700 });
      expect(String(m.reason)).toContain('SIGTERM');
      expect(scan(home.home, id)).toMatchObject({ records: 700, torn: null, finished: true });
    }
    expect(existsSync(home.layout.socketPath)).toBe(false);
    expect(existsSync(home.layout.pidPath)).toBe(false);
    expect(alive(pid)).toBe(false);
  });
});
