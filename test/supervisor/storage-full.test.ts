/**
 * A disk that fills up under a run: a tmpfs of 8 MiB over the home's runs directory (or over the
 * whole home), filled on purpose with a file that is removed again to free space. Root only:
 * skipped with the reason elsewhere. Real daemons, real clients.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, ErrorCode, type MuxvisorError } from '../../lib/index.js';
import { rejection } from '../helpers/errors.js';
import { eventually, type TempHome, tempHome } from '../helpers/home.js';
import { finishedMeta, meta, records, scan } from '../helpers/logs.js';
import { fill, mountTmpfs, tmpfsUnavailable, unmount } from '../helpers/tmpfs.js';

const DISK = 8 * 1024 * 1024;
const unavailable = tmpfsUnavailable();

describe.skipIf(unavailable !== null)(`a full disk under the runs directory (tmpfs${unavailable ? `: ${unavailable}` : ''})`, () => {
  // Made in beforeAll: the body of a skipped describe still runs, its hooks do not.
  let home: TempHome;
  let runs: string;
  let filler: string;
  let client: Client;
  beforeAll(async () => {
    home = tempHome();
    runs = join(home.home, 'runs');
    filler = join(runs, 'filler');
    const refused = mountTmpfs(runs, DISK);
    if (refused !== null) throw new Error(refused);
    client = await connect({ home: home.home, name: 'storage-full', supervisor: { idleTimeoutMs: 0 } });
  });
  afterAll(async () => {
    await client?.close().catch(() => undefined);
    try {
      await home.stopSupervisor();
    } finally {
      unmount(runs);
      await home.cleanup();
    }
  });

  it('keeps what it could not write and writes it once space is freed; sync meanwhile answers MUXVISOR_STORAGE naming the run and ENOSPC', async () => {
    const run = await client.openRun('keeps');
    for (let i = 0; i < 100; i++) run.publish({ i });
    await run.sync();
    fill(filler, 0);
    for (let i = 100; i < 300; i++) run.publish({ i, pad: 'x'.repeat(100) });
    const error = await rejection(run.sync());
    expect(error.code).toBe(ErrorCode.Storage);
    expect(error.message).toMatch(/^run keeps: cannot write \d+ bytes to run log .*: ENOSPC/);
    expect(error.message).toContain('written once space is freed');
    expect(await client.ping()).toBeGreaterThan(0);
    expect(await run.request('echo', 'still here')).toBe('still here');
    rmSync(filler);
    expect((await run.sync()).records).toBe(300);
    expect((await run.finish()).status).toBe('ok');
    expect(records(home.home, 'keeps').map((r) => (r as { i: number }).i)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(meta(home.home, 'keeps')).toMatchObject({ state: 'finished', status: 'ok', records: 300 });
  });

  it('answers a finish it cannot write at once, keeps it, and writes it (and meta.json) once there is room', async () => {
    const run = await client.openRun('late');
    for (let i = 0; i < 50; i++) run.publish({ i });
    await run.sync();
    fill(filler, 0);
    for (let i = 50; i < 100; i++) run.publish({ i, pad: 'x'.repeat(100) });
    const error = await rejection(run.finish());
    expect(error.code).toBe(ErrorCode.Storage);
    expect(error.message).toMatch(/^run late: .*ENOSPC.*the run's end \(ok\) is not written yet .*tries again every 250 ms/);
    const live = (await client.request('runs.get', { run: 'late', summary: false })) as { state: string };
    expect(live.state).toBe('finishing');
    rmSync(filler);
    const m = await finishedMeta(home.home, 'late');
    expect(m).toMatchObject({ status: 'ok', records: 100 });
    expect(m.finishRetries).toBeGreaterThan(0);
    expect(scan(home.home, 'late')).toMatchObject({ finished: true, torn: null, records: 100 });
  });

  it('fails a run with more than 32 MiB unwritten: drops it, warns its publisher, and records the run as failed once there is room', async () => {
    const run = await client.openRun('overflow');
    for (let i = 0; i < 10; i++) run.publish({ i });
    await run.sync();
    fill(filler, 0);
    const warnings: MuxvisorError[] = [];
    client.on('warning', (w: MuxvisorError) => warnings.push(w));
    const pad = 'x'.repeat(64 * 1024);
    for (let i = 10; i < 10 + 700 && warnings.length === 0; i++) {
      if (!run.publish({ i, pad })) await run.drain();
    }
    const warning = await eventually(() => warnings[0], 'the warning that the run failed');
    expect(warning.code).toBe(ErrorCode.UnknownRun);
    expect(warning.message).toMatch(/^run overflow is finishing \(failed: its log .* could not be written \(ENOSPC\) and \d+ bytes waited, more than the 33554432 a run keeps in memory; they were dropped\)/);
    rmSync(filler);
    const m = await finishedMeta(home.home, 'overflow');
    expect(m).toMatchObject({ status: 'failed' });
    expect(String(m.reason)).toContain('more than the 33554432');
    const s = scan(home.home, 'overflow');
    expect(s).toMatchObject({ finished: true, torn: null });
    expect(s.records).toBeGreaterThanOrEqual(10); // every acknowledged record, and whatever fitted after
    expect(records(home.home, 'overflow').slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => ({ i })));
  });
});

describe.skipIf(unavailable !== null)(`a full disk under the whole home, the supervisor's own log included (tmpfs${unavailable ? `: ${unavailable}` : ''})`, () => {
  let home: TempHome;
  beforeAll(() => {
    home = tempHome();
  });
  afterAll(async () => {
    try {
      await home.stopSupervisor();
    } finally {
      unmount(home.home);
      await home.cleanup();
    }
  });

  it('stays up and answers every client while nothing can be written, and the run continues once space is freed', async () => {
    const refused = mountTmpfs(home.home, DISK);
    if (refused !== null) throw new Error(refused);
    const client = await connect({ home: home.home, name: 'home-full', supervisor: { idleTimeoutMs: 0 } });
    const pid = client.server.pid;
    const run = await client.openRun('on-full-home');
    run.publish({ i: 0 });
    await run.sync();
    fill(join(home.home, 'filler'), 0);
    for (let i = 1; i < 400; i++) run.publish({ i, pad: 'x'.repeat(200) });
    expect((await rejection(run.sync())).code).toBe(ErrorCode.Storage);
    // Every line the supervisor logs now fails to be written; it used to die of the first one.
    const other = await connect({ home: home.home, name: 'home-full-2', start: false });
    expect(await other.ping()).toBeGreaterThan(0);
    // Each refused run logs a few lines: more than the last page of the log file has room for.
    for (let k = 0; k < 20; k++) expect((await rejection(other.openRun(`cannot-create-${k}`))).code).toBe(ErrorCode.Storage);
    expect((await client.status()).server).toMatchObject({ pid });
    rmSync(join(home.home, 'filler'));
    expect((await run.sync()).records).toBe(400);
    expect((await run.finish()).records).toBe(400);
    await other.close();
    await client.close();
  });
});
