/**
 * `muxvisor runs`, `runs show|tail|export|verify` against one supervisor, with runs made by this
 * process's own client: finished ones, one held open, one followed while it is written, and one
 * whose log the test corrupts itself.
 */
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect } from '../../lib/client.js';
import { spawn } from 'node:child_process';
import { CLI_MAIN, type CliErrorJson, followCli, runCli } from '../helpers/cli.js';
import { tempHome } from '../helpers/home.js';

const home = tempHome('muxvisor-cli-runs-');
let client: Client;
const cli = (...args: string[]) => runCli(home.home, args);

/** Publishes `records` to a new run and finishes it (status ok). */
async function finishedRun(id: string, records: unknown[]): Promise<void> {
  const run = await client.openRun(id);
  for (const r of records) if (!run.publish(r)) await run.drain();
  await run.sync();
  const end = await run.finish();
  expect(end.status).toBe('ok');
}

beforeAll(async () => {
  client = await connect({ home: home.home, name: 'tester', handleExit: false, exportEnv: false, supervisor: { idleTimeoutMs: 0 } });
  await finishedRun('metrics', [
    { step: 0, loss: 1 },
    { step: 1, loss: 0.5, accuracy: 0.8 },
    'a note, not a map',
    { step: 2, loss: 0.25 },
  ]);
  await finishedRun('ten', Array.from({ length: 10 }, (_, i) => ({ i })));
});

afterAll(async () => {
  client?.destroy();
  await home.cleanup();
});

describe('runs', () => {
  it('lists open runs with their owners and finished runs with their status', async () => {
    const run = await client.openRun('held-open');
    try {
      for (let i = 0; i < 3; i++) run.publish({ i });
      await run.sync();
      const [json, text] = await Promise.all([cli('runs', '--json'), cli('runs')]);
      expect(json.code, json.stderr).toBe(0);
      const list = json.json();
      expect(list.open).toHaveLength(1);
      expect(list.open[0]).toMatchObject({ run: 'held-open', state: 'open', records: 3 });
      expect(list.open[0].owners).toEqual([expect.objectContaining({ pid: process.pid, name: 'tester' })]);
      const finished = (list.recorded as Array<Record<string, unknown>>).filter((r) => r.state === 'finished');
      expect(finished.map((r) => r.run).sort()).toEqual(['metrics', 'ten']);
      expect(finished.find((r) => r.run === 'ten')).toMatchObject({ status: 'ok', records: 10 });
      expect(list.recordedTotal).toBe(list.recorded.length);

      expect(text.code).toBe(0);
      expect(text.stdout).toContain('open (1)');
      expect(text.stdout).toMatch(new RegExp(`held-open\\s+open\\s+3\\b.*${process.pid} tester`));
      expect(text.stdout).toContain('recorded (2)');
      expect(text.stdout).toMatch(/ten\s+ok\s+10\b/);
      expect(text.stdout).toMatch(/metrics\s+ok\s+4\b/);
    } finally {
      await run.finish();
    }
  });

  it('--limit caps the recorded runs listed, not the total', async () => {
    const r = await cli('runs', '--limit', '1', '--json');
    const list = r.json();
    expect(list.recorded).toHaveLength(1);
    expect(list.recordedTotal).toBeGreaterThanOrEqual(3);
    const [zero, word] = await Promise.all([cli('runs', '--limit', '0'), cli('runs', '--limit', 'all')]);
    expect(zero.code).toBe(2);
    expect(word.code).toBe(2);
    expect(word.stderr).toContain('--limit must be a whole number');
  });
});

describe('runs show', () => {
  it('gives the summary (the latest value of each key) and status ok of a finished run', async () => {
    const [json, text] = await Promise.all([cli('runs', 'show', 'metrics', '--json'), cli('runs', 'show', 'metrics')]);
    expect(json.code, json.stderr).toBe(0);
    const info = json.json();
    expect(info).toMatchObject({ run: 'metrics', state: 'finished', live: null, summaryRecords: 4, tail: 'whole' });
    expect(info.summary).toEqual({ step: 2, loss: 0.25, accuracy: 0.8 });
    expect(info.meta).toMatchObject({ status: 'ok', records: 4 });
    expect(info.end.status).toBe('ok');
    expect(info.log.path).toBe(join(home.layout.runsDir, 'metrics', 'run.mvlog'));
    expect(info.log.bytes).toBe(statSync(info.log.path).size);

    expect(text.code).toBe(0);
    expect(text.stdout).toContain('run metrics');
    expect(text.stdout).toMatch(/status\s+ok/);
    expect(text.stdout).toMatch(/records\s+4/);
    expect(text.stdout).toContain(`opened by   pid ${process.pid} tester`);
    expect(text.stdout).toMatch(/accuracy\s+0\.8/);
    expect(text.stdout).toMatch(/loss\s+0\.25/);
    expect(text.stdout).toMatch(/step\s+2/);
  });

  it('shows an open run live: its state, counters and owners', async () => {
    const run = await client.openRun('show-open');
    try {
      run.publish({ x: 1 });
      run.publish({ x: 2 });
      await run.sync();
      const info = (await cli('runs', 'show', 'show-open', '--json')).json();
      expect(info.state).toBe('open');
      expect(info.live).toMatchObject({ records: 2, owners: [{ pid: process.pid, name: 'tester' }] });
      expect(info.summary).toEqual({ x: 2 });
    } finally {
      await run.finish();
    }
  });

  it('exits 4 for an unknown run and names the runs it knows', async () => {
    const [json, text] = await Promise.all([cli('runs', 'show', 'no-such-run', '--json'), cli('runs', 'show', 'no-such-run')]);
    expect(json.code, json.stdout).toBe(4);
    const { error } = json.json<CliErrorJson>();
    expect(error).toMatchObject({ code: 'MUXVISOR_UNKNOWN_RUN', exitCode: 4, data: { run: 'no-such-run' } });
    expect(error.data.known).toEqual(expect.arrayContaining(['metrics', 'ten']));
    expect(text.code, text.stderr).toBe(4);
    expect(text.stderr).toMatch(/^muxvisor: no run `no-such-run` in .*\(newest: .*\)/);
    expect(text.stderr).toContain('metrics');
    expect(text.stderr).toContain('ten');
    for (const sub of ['tail', 'export', 'verify']) {
      const r = await cli('runs', sub, 'no-such-run');
      expect(r.code, `runs ${sub}: ${r.stderr}`).toBe(4);
    }
  });
});

describe('runs tail', () => {
  it('-n 3 shows the last three records with their indexes', async () => {
    const [json, text] = await Promise.all([cli('runs', 'tail', 'ten', '-n', '3', '--json'), cli('runs', 'tail', 'ten', '-n', '3')]);
    expect(json.code, json.stderr).toBe(0);
    expect(json.jsonLines()).toEqual([7, 8, 9].map((i) => ({ index: i, record: { i } })));
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    lines.forEach((l, k) => expect(l).toMatch(new RegExp(`^#${7 + k}\\s+\\{"i":${7 + k}\\}$`)));
  });

  it('--follow prints records published after it began and exits by itself when the run finishes', async () => {
    const run = await client.openRun('followed');
    const followers = [followCli(home.home, ['runs', 'tail', 'followed', '-n', '1', '--follow', '--json']), followCli(home.home, ['runs', 'tail', 'followed', '-n', '1', '--follow'])];
    try {
      run.publish({ n: 0 });
      await run.sync();
      // The first record shows once each follower reads; after that, everything comes live.
      const [json, text] = followers as [ReturnType<typeof followCli>, ReturnType<typeof followCli>];
      await json.waitFor((l) => l.includes('"n":0'));
      await text.waitFor((l) => l.includes('"n":0'));
      for (let n = 1; n <= 3; n++) run.publish({ n });
      await run.sync();
      await json.waitFor((l) => l.includes('"n":3'));
      await text.waitFor((l) => l.includes('"n":3'));
      await run.finish();
      expect(await json.exited).toEqual({ code: 0, signal: null });
      expect(await text.exited).toEqual({ code: 0, signal: null });
      expect(json.lines.map((l) => JSON.parse(l))).toEqual([0, 1, 2, 3].map((n) => ({ index: n, record: { n } })));
      expect(text.lines).toHaveLength(4);
      expect(text.lines[3]).toMatch(/^#3\s+\{"n":3\}$/);
      expect(text.errLines).toContain('run followed finished');
    } finally {
      for (const f of followers) await f.stop('SIGKILL');
    }
  });

  it('--follow ends with exit 0 on SIGINT while the run is still open', async () => {
    const run = await client.openRun('followed-forever');
    const follower = followCli(home.home, ['runs', 'tail', 'followed-forever', '--follow', '--json']);
    try {
      run.publish({ first: true });
      await run.sync();
      await follower.waitFor((l) => l.includes('"first":true'));
      expect(await follower.stop('SIGINT')).toEqual({ code: 0, signal: null });
    } finally {
      await follower.stop('SIGKILL');
      await run.finish();
    }
  });

  it('-n of more large records than one answer holds prints the newest that fit, instead of failing', async () => {
    // 300 records of 64 KiB: 19 MiB, more than a frame (16 MiB) holds.
    const pad = 'x'.repeat(64 * 1024);
    await finishedRun('large-records', Array.from({ length: 300 }, (_, i) => ({ i, pad })));
    const r = await cli('runs', 'tail', 'large-records', '-n', '300', '--json');
    expect(r.code, r.stdout.slice(0, 300)).toBe(0);
    const got = r.jsonLines<{ index: number; record: { i: number; pad: string } }>();
    expect(got.length).toBeGreaterThan(0);
    expect(got.length * pad.length).toBeLessThanOrEqual(4 * 1024 * 1024 + pad.length);
    expect(got.at(-1)!.index).toBe(299);
    expect(got.every((g, k) => g.index === 300 - got.length + k && g.record.i === g.index)).toBe(true);
  });

  it('rejects a negative -n with exit 2', async () => {
    const r = await cli('runs', 'tail', 'ten', '-n', '-1');
    expect(r.code).toBe(2);
  });
});

describe('runs export', () => {
  it('prints exactly the records published as JSON lines, bytes as {"$base64": ...}', async () => {
    const published = Array.from({ length: 25 }, (_, i) => ({ i, name: `r${i}`, blob: Buffer.from([i, 0, 255]), nested: { list: [i, null, true] } }));
    await finishedRun('with-bytes', published);
    const expected = published.map((p) => ({ ...p, blob: { $base64: Buffer.from([p.i, 0, 255]).toString('base64') } }));

    const [plain, indexed] = await Promise.all([cli('runs', 'export', 'with-bytes'), cli('runs', 'export', 'with-bytes', '--with-index')]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.endsWith('\n')).toBe(true);
    expect(plain.jsonLines()).toEqual(expected);
    expect(indexed.jsonLines()).toEqual(expected.map((record, index) => ({ index, record })));
  });

  it('reads a run of more records than one page holds, in order, none twice', async () => {
    const n = 10_005;
    await finishedRun('long', Array.from({ length: n }, (_, i) => i));
    const r = await cli('runs', 'export', 'long');
    expect(r.code, r.stderr).toBe(0);
    const got = r.jsonLines<number>();
    expect(got).toHaveLength(n);
    expect(got.every((v, i) => v === i)).toBe(true);
  });
});

describe('a reader that goes away (`| head`)', () => {
  /**
   * Runs `muxvisor ...args` with stdout to a pipe that this process closes once the first
   * output came; `then` runs after that. Resolves with how the command ended and its stderr.
   */
  function closedEarly(args: string[], then: () => Promise<void> = async () => undefined): Promise<{ code: number | null; signal: string | null; stderr: string }> {
    const child = spawn(process.execPath, [CLI_MAIN, '--home', home.home, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.once('data', () => {
      child.stdout.destroy();
      void then();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    return new Promise((resolve) => child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    }));
  }

  it('runs export stops quietly with exit 0', async () => {
    await finishedRun('piped', Array.from({ length: 20_000 }, (_, i) => ({ i })));
    const r = await closedEarly(['runs', 'export', 'piped', '--with-index']);
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, signal: null });
  });

  it('runs tail --follow stops quietly with exit 0 at its next line', async () => {
    const run = await client.openRun('piped-follow');
    try {
      run.publish({ first: true });
      await run.sync();
      const r = await closedEarly(['runs', 'tail', 'piped-follow', '--follow', '--json'], async () => {
        for (let i = 0; i < 3; i++) run.publish({ i });
        await run.sync();
      });
      expect(r.stderr).toBe('');
      expect(r).toMatchObject({ code: 0, signal: null });
    } finally {
      await run.finish();
    }
  });
});

describe('runs verify', () => {
  it('says ok (exit 0) for a whole run log', async () => {
    const [json, text] = await Promise.all([cli('runs', 'verify', 'ten', '--json'), cli('runs', 'verify', 'ten')]);
    expect(json.code, json.stderr).toBe(0);
    const v = json.json();
    expect(v).toMatchObject({ run: 'ten', ok: true, open: false, finished: true, records: 10, metaRecords: 10, torn: null, tail: 'whole', problems: [] });
    expect(v.validBytes).toBe(v.fileBytes);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('ok: every CRC is correct');
    expect(text.stdout).toContain('(10 records)');
  });

  it('exits 7 for a log corrupted in the middle and says at which byte it is torn', async () => {
    await finishedRun('corrupted', Array.from({ length: 20 }, (_, i) => ({ i, pad: 'x'.repeat(50) })));
    const path = join(home.layout.runsDir, 'corrupted', 'run.mvlog');
    const entries = entryOffsets(path);
    // A payload byte of the entry holding the file's middle byte.
    const middle = Math.floor(statSync(path).size / 2);
    const victim = entries.find((e) => e.start <= middle && middle < e.end)!;
    flipByte(path, victim.start + 9 + Math.floor((victim.end - victim.start - 9) / 2));

    const [json, text] = await Promise.all([cli('runs', 'verify', 'corrupted', '--json'), cli('runs', 'verify', 'corrupted')]);
    expect(json.code, json.stderr).toBe(7);
    const v = json.json();
    expect(v.ok).toBe(false);
    expect(v.torn.offset).toBe(victim.start);
    expect(v.validBytes).toBe(victim.start);
    expect(v.records).toBeLessThan(20);
    expect(v.problems.join('\n')).toContain(`torn at byte ${victim.start}`);
    expect(text.code).toBe(7);
    expect(text.stdout).toContain(`torn at byte ${victim.start}`);
    expect(text.stdout).not.toContain('ok: every CRC is correct');
  });
});

/** Where each entry of a run log starts and ends (the layout of supervisor/recorder/log-format.ts). */
function entryOffsets(path: string): Array<{ start: number; end: number }> {
  const size = statSync(path).size;
  const fd = openSync(path, 'r');
  try {
    const out: Array<{ start: number; end: number }> = [];
    const header = Buffer.alloc(9);
    for (let at = 16; at + 9 <= size;) {
      readSync(fd, header, 0, 9, at);
      const end = at + 9 + header.readUInt32LE(4);
      out.push({ start: at, end });
      at = end;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}
