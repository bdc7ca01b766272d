/**
 * The reporting commands against one supervisor this process set up with its own client (runs
 * open and finished, a running service): `status`, `connections`, `events [--follow]`, `logs
 * [--follow]`, `ping`, and when output is coloured. Then `logs` of a stopped supervisor and of a
 * home where none ever ran.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect } from '../../lib/client.js';
import type { Run } from '../../lib/run.js';
import { ANSI, type CliErrorJson, followCli, runCli } from '../helpers/cli.js';
import { eventually, tempHome } from '../helpers/home.js';

const NODE = process.execPath;
const home = tempHome('muxvisor-cli-diag-');
let client: Client;
const open: Run[] = [];
const cli = (...args: string[]) => runCli(home.home, args);

beforeAll(async () => {
  client = await connect({ home: home.home, name: 'tester', handleExit: false, exportEnv: false, supervisor: { idleTimeoutMs: 0 } });
  for (const id of ['open-a', 'open-b']) {
    const run = await client.openRun(id);
    run.publish({ id });
    await run.sync();
    open.push(run);
  }
  const done = await client.openRun('done');
  done.publish({ x: 1 });
  await done.finish();
  await client.services.add({ name: 'sleeper', command: NODE, args: ['-e', 'setInterval(() => {}, 1000)'], cwd: home.home });
});

afterAll(async () => {
  client?.destroy();
  await home.cleanup();
});

describe('status', () => {
  it('reports the supervisor pid, runs open, services and no problems', async () => {
    const [json, text] = await Promise.all([cli('status', '--json'), cli('status')]);
    expect(json.code, json.stderr).toBe(0);
    const s = json.json();
    const pid = home.supervisorPid();
    expect(s.server.pid).toBe(pid);
    expect(s).toMatchObject({ state: 'running', home: home.home, socket: home.layout.socketPath, problems: [] });
    expect(s.runs).toMatchObject({ open: 2, opened: 3, finished: 1, crashed: 0 });
    expect(s.services).toMatchObject({ count: 1, byState: { running: 1 } });
    expect(s.connections).toBeGreaterThanOrEqual(2); // this process and the CLI itself

    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^muxvisor \\S+ \\(protocol [\\d-]+\\)\\s+pid ${pid}\\s`));
    expect(text.stdout).toMatch(/runs\s+2 open\s+\(since start: 3 opened, 1 finished, 0 crashed\)/);
    expect(text.stdout).toMatch(/services\s+1\s+1 running/);
    expect(text.stdout).toContain(home.home);
    expect(text.stdout.trimEnd().endsWith('no problems')).toBe(true);
  });

  it('puts problems first when a service has failed, and names it', async () => {
    await client.services.add({ name: 'broken', command: '/nonexistent/muxvisor-broken', cwd: home.home }).catch(() => undefined);
    try {
      const [json, text] = await Promise.all([cli('status', '--json'), cli('status')]);
      expect(json.code).toBe(0);
      const problems = json.json().problems as string[];
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^service `broken` is failed: /);
      expect(text.code).toBe(0);
      const lines = text.stdout.split('\n');
      expect(lines[0]).toBe('1 problem:');
      expect(lines[1]).toMatch(/^ {2}! service `broken` is failed: /);
      expect(text.stdout).not.toContain('no problems');
    } finally {
      await client.services.remove('broken');
    }
  });
});

describe('connections', () => {
  it('lists this process as a client, with its name and runs, and the CLI itself', async () => {
    const [json, text] = await Promise.all([cli('connections', '--json'), cli('connections')]);
    expect(json.code, json.stderr).toBe(0);
    const list = json.json() as Array<Record<string, any>>;
    expect(list.find((c) => c.name === 'tester')).toMatchObject({ pid: process.pid, runs: 2 });
    expect(list.find((c) => c.pid === json.pid)).toMatchObject({ name: 'muxvisor-cli' });
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]!.split(/\s+/)).toEqual(['conn', 'pid', 'name', 'runs', 'pending', 'in', 'out', 'records', 'requests', 'age']);
    expect(text.stdout).toMatch(new RegExp(`^\\d+\\s+${process.pid}\\s+tester\\s+2\\s`, 'm'));
    expect(text.stdout).toMatch(new RegExp(`^\\d+\\s+${text.pid}\\s+muxvisor-cli\\s`, 'm'));
  });
});

describe('events', () => {
  it('lists the service and run events in order, seq counting up per topic', async () => {
    const [json, text] = await Promise.all([cli('events', '--json'), cli('events')]);
    expect(json.code, json.stderr).toBe(0);
    const events = json.jsonLines<{ topic: string; seq: number; time: number; data: Record<string, any> }>();
    for (const topic of ['service', 'run', 'supervisor']) {
      const seqs = events.filter((e) => e.topic === topic).map((e) => e.seq);
      expect(seqs.length, topic).toBeGreaterThan(0);
      expect(seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1), `${topic}: ${seqs.join(' ')}`).toBe(true);
    }
    expect(events.every((e, i) => i === 0 || e.time >= events[i - 1]!.time)).toBe(true);
    expect(events.filter((e) => e.topic === 'service' && e.data.service === 'sleeper').map((e) => e.data.state).slice(0, 3)).toEqual(['stopped', 'starting', 'running']);
    const runs = events.filter((e) => e.topic === 'run').map((e) => `${e.data.event} ${e.data.run}`);
    expect(runs.slice(0, 4)).toEqual(['opened open-a', 'opened open-b', 'opened done', 'finished done']);
    expect(events.find((e) => e.data.event === 'finished')!.data).toMatchObject({ status: 'ok', records: 1 });
    expect(events.find((e) => e.topic === 'run')!.data.by).toEqual({ pid: process.pid, name: 'tester' });

    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/service sleeper starting → running pid \d+/);
    expect(text.stdout).toContain(`run     open-a opened by pid ${process.pid} tester`);
    expect(text.stdout).toContain('run     done finished ok (1 records)');
  });

  it('--topic and -n choose which and how many', async () => {
    const [service, last2, bad] = await Promise.all([cli('events', '--topic', 'service', '--json'), cli('events', '-n', '2', '--json'), cli('events', '--topic', 'weather')]);
    const onlyService = service.jsonLines();
    expect(onlyService.length).toBeGreaterThan(0);
    expect(onlyService.every((e) => e.topic === 'service')).toBe(true);
    expect(last2.jsonLines()).toHaveLength(2);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--topic must be one of service, run, supervisor');
  });

  it('--follow --json prints a run opened after it began, and exits 0 on SIGINT', async () => {
    const f = followCli(home.home, ['events', '--follow', '--json', '-n', '1']);
    try {
      // The replay comes once the subscription is in place: from then on events are live.
      await f.waitFor(() => true);
      const run = await client.openRun('late');
      try {
        const line = JSON.parse(await f.waitFor((l) => l.includes('"late"'))) as { topic: string; data: Record<string, unknown> };
        expect(line).toMatchObject({ topic: 'run', data: { event: 'opened', run: 'late', by: { pid: process.pid, name: 'tester' } } });
      } finally {
        await run.finish();
      }
      await f.waitFor((l) => l.includes('"finished"') && l.includes('"late"'));
      expect(await f.stop('SIGINT')).toEqual({ code: 0, signal: null });
    } finally {
      await f.stop('SIGKILL');
    }
  });
});

describe('logs', () => {
  beforeAll(async () => {
    // A service that exits with a failure makes the supervisor log a warning.
    await client.services.add({ name: 'quitter', command: NODE, args: ['-e', 'process.exit(3)'], cwd: home.home, restart: { policy: 'never' } }, { wait: false });
    await eventually(async () => (await client.services.get('quitter')).state === 'failed', 'quitter to exit and fail');
  });
  afterAll(() => client.services.remove('quitter'));

  it('prints the supervisor log readably, and its JSON lines with --json', async () => {
    const [text, json, three] = await Promise.all([cli('logs', '-n', '1000'), cli('logs', '-n', '1000', '--json'), cli('logs', '-n', '3', '--json')]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/INFO.*supervisor listening/);
    expect(text.stdout).not.toContain('"level":30');
    const lines = json.jsonLines<{ level: number; msg: string; pid: number }>();
    expect(lines.every((l) => typeof l.msg === 'string' && typeof l.level === 'number')).toBe(true);
    expect(lines.find((l) => l.msg === 'supervisor listening')!.pid).toBe(home.supervisorPid());
    expect(lines.some((l) => l.msg === 'run opened')).toBe(true);
    expect(three.jsonLines()).toHaveLength(3);
  });

  it('--level warn leaves out info lines', async () => {
    const [json, text, bad] = await Promise.all([cli('logs', '--level', 'warn', '--json'), cli('logs', '--level', 'warn'), cli('logs', '--level', 'loud')]);
    expect(json.code, json.stderr).toBe(0);
    const lines = json.jsonLines<{ level: number; msg: string }>();
    expect(lines.some((l) => l.msg === 'service exited')).toBe(true);
    expect(lines.every((l) => l.level >= 40)).toBe(true);
    expect(text.stdout).toContain('service exited');
    expect(text.stdout).not.toContain('INFO');
    expect(bad.code).toBe(2);
  });

  it('--follow prints lines written after it began', async () => {
    const f = followCli(home.home, ['logs', '-n', '1', '--follow', '--json']);
    try {
      await f.waitFor(() => true);
      const run = await client.openRun('logged-late');
      await run.finish();
      const line = JSON.parse(await f.waitFor((l) => l.includes('"run opened"') && l.includes('logged-late'))) as Record<string, unknown>;
      expect(line).toMatchObject({ msg: 'run opened', run: 'logged-late' });
      expect(await f.stop('SIGINT')).toEqual({ code: 0, signal: null });
    } finally {
      await f.stop('SIGKILL');
    }
  });
});

describe('ping', () => {
  it('-n 20 makes 20 round trips to this supervisor; the percentiles are ordered', async () => {
    const [json, text, bad] = await Promise.all([cli('ping', '-n', '20', '--json'), cli('ping', '-n', '5'), cli('ping', '-n', '0')]);
    expect(json.code, json.stderr).toBe(0);
    const p = json.json();
    expect(p.count).toBe(20);
    expect(p.pid).toBe(home.supervisorPid());
    const m = p.microseconds;
    expect(m.min).toBeGreaterThan(0);
    expect(m.min).toBeLessThanOrEqual(m.p50);
    expect(m.p50).toBeLessThanOrEqual(m.p90);
    expect(m.p90).toBeLessThanOrEqual(m.p99);
    expect(m.p99).toBeLessThanOrEqual(m.max);
    expect(text.stdout).toMatch(new RegExp(`^5 round trips to supervisor pid ${home.supervisorPid()}: min .* p50 .* p99 .* max `));
    expect(bad.code).toBe(2);
  });

  it('ctrl+c during a long --interval ends it at once and prints what was measured', async () => {
    const f = followCli(home.home, ['ping', '-n', '5', '-i', '60000', '--json']);
    try {
      await eventually(async () => (await client.connections()).some((c) => c.pid === f.process.pid), 'the ping to connect');
      await new Promise((r) => setTimeout(r, 500)); // its first round trip, then the long pause
      const started = Date.now();
      expect(await f.stop('SIGINT', 8_000)).toEqual({ code: 0, signal: null });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(JSON.parse(f.lines.join('\n'))).toMatchObject({ count: 1 });
    } finally {
      await f.stop('SIGKILL');
    }
  });
});

describe('colour', () => {
  it('none with NO_COLOR=1, nor when stdout is not a terminal', async () => {
    const plain = { NO_COLOR: undefined, FORCE_COLOR: undefined };
    const results = await Promise.all([
      cli('status'), cli('services'), cli('events'), cli('logs'), cli('runs'),
      runCli(home.home, ['status'], { env: plain }), runCli(home.home, ['logs'], { env: plain }),
    ]);
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toMatch(ANSI);
      expect(r.stderr).not.toMatch(ANSI);
    }
  });

  it('FORCE_COLOR=1 colours text, unless NO_COLOR, --no-color or --json', async () => {
    const force = { NO_COLOR: undefined, FORCE_COLOR: '1' };
    const [status, logs, noColor, json, both] = await Promise.all([
      runCli(home.home, ['status'], { env: force }),
      runCli(home.home, ['logs'], { env: force }),
      runCli(home.home, ['status', '--no-color'], { env: force }),
      runCli(home.home, ['status', '--json'], { env: force }),
      runCli(home.home, ['status'], { env: { NO_COLOR: '1', FORCE_COLOR: '1' } }),
    ]);
    expect(status.stdout).toMatch(ANSI);
    expect(status.stdout).toContain('\x1b[32m  no problems'); // green
    expect(logs.stdout).toMatch(ANSI);
    expect(noColor.stdout).not.toMatch(ANSI);
    expect(json.stdout).not.toMatch(ANSI);
    expect(json.json().server.pid).toBe(home.supervisorPid());
    expect(both.stdout).not.toMatch(ANSI);
  });
});

describe('logs without a supervisor', () => {
  it('still prints the log of a supervisor that has stopped', async () => {
    const other = tempHome('muxvisor-cli-stopped-');
    try {
      const started = await runCli(other.home, ['start', '--json']);
      const pid = started.json().pid as number;
      expect((await runCli(other.home, ['stop'])).code).toBe(0);
      expect(other.supervisorPid()).toBeNull();
      const r = await runCli(other.home, ['logs', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const msgs = r.jsonLines<{ msg: string; pid: number }>().filter((l) => l.pid === pid).map((l) => l.msg);
      expect(msgs).toContain('supervisor listening');
      expect(msgs.at(-1)).toBe('stopped');
      expect(other.supervisorPid()).toBeNull();
    } finally {
      await other.cleanup();
    }
  });

  it('prints a line whole when a multi-byte character straddles the chunks it is read back in', async () => {
    const other = tempHome('muxvisor-cli-utf8-');
    try {
      const msg = 'é'.repeat(1000); // 2 bytes each
      const lines = Array.from({ length: 100 }, (_, i) => JSON.stringify({ level: 30, time: i, msg }));
      // Pad the last line until the byte 64 KiB from the end (where a backwards read of 64 KiB
      // chunks cuts) is the second byte of an `é`.
      let pad = '';
      let text = '';
      for (;;) {
        text = `${lines.slice(0, -1).join('\n')}\n${JSON.stringify({ level: 30, time: 99, msg, pad })}\n`;
        const bytes = Buffer.from(text);
        if ((bytes[bytes.length - 64 * 1024]! & 0xc0) === 0x80) break;
        pad += '.';
      }
      mkdirSync(other.layout.logsDir, { recursive: true });
      writeFileSync(other.layout.supervisorLog, text);
      const r = await runCli(other.home, ['logs', '-n', '1000', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const got = r.jsonLines<{ msg: string }>();
      expect(got).toHaveLength(100);
      expect(got.filter((l) => l.msg !== msg)).toEqual([]);
    } finally {
      await other.cleanup();
    }
  });

  it('--follow prints a last line still being written once, whole, even when a read cuts a character', async () => {
    const other = tempHome('muxvisor-cli-partial-');
    const f = () => followCli(other.home, ['logs', '-n', '5', '--follow', '--json']);
    let follower: ReturnType<typeof followCli> | null = null;
    try {
      mkdirSync(other.layout.logsDir, { recursive: true });
      const log = other.layout.supervisorLog;
      const cafe = Buffer.from('"café"}\n');
      const cut = cafe.indexOf(0xa9); // between the two bytes of `é`
      // The log ends in the middle of a line when the follower starts...
      writeFileSync(log, `${JSON.stringify({ level: 30, msg: 'whole' })}\n{"level":30,"msg":"half`);
      follower = f();
      await follower.waitFor((l) => l.includes('"whole"'));
      await new Promise((r) => setTimeout(r, 500)); // polls that see the unfinished line
      appendFileSync(log, '-way"}\n');
      await follower.waitFor((l) => l.includes('half-way'));
      // ...and a line is cut inside a character while it follows.
      appendFileSync(log, Buffer.concat([Buffer.from('{"level":30,"msg":'), cafe.subarray(0, cut)]));
      await new Promise((r) => setTimeout(r, 500));
      appendFileSync(log, cafe.subarray(cut));
      await follower.waitFor((l) => l.includes('caf'));
      expect(await follower.stop('SIGINT')).toEqual({ code: 0, signal: null });
      expect(follower.lines.map((l) => JSON.parse(l).msg)).toEqual(['whole', 'half-way', 'café']);
    } finally {
      await follower?.stop('SIGKILL');
      await other.cleanup();
    }
  });

  it('exits 4 in a home where no supervisor ever ran', async () => {
    const never = tempHome('muxvisor-cli-never-');
    try {
      const [text, json] = await Promise.all([runCli(never.home, ['logs']), runCli(never.home, ['logs', '--json'])]);
      expect(text.code).toBe(4);
      expect(text.stderr).toContain(`no supervisor log at ${never.layout.supervisorLog}`);
      expect(json.json<CliErrorJson>().error).toMatchObject({ code: 'MUXVISOR_NO_LOG', exitCode: 4 });
      expect(never.supervisorPid()).toBeNull();
    } finally {
      await never.cleanup();
    }
  });
});
