/**
 * The daemon's life through the CLI: `start` (background and --foreground), `stop` (drained and
 * forced), what every reporting command says when no supervisor runs (exit 3, and none is
 * started), usage errors, and `demo`. Each describe has its own home and cleans it up.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../lib/client.js';
import { ANSI, type CliErrorJson, followCli, runCli } from '../helpers/cli.js';
import { alive, eventually, type TempHome, tempHome } from '../helpers/home.js';

const NODE = process.execPath;

describe('with no supervisor running', () => {
  const home = tempHome('muxvisor-cli-none-');
  afterAll(() => home.cleanup());

  const reporting: Array<[string, string[]]> = [
    ['status', ['status']],
    ['connections', ['connections']],
    ['runs', ['runs']],
    ['runs show', ['runs', 'show', 'r1']],
    ['runs tail', ['runs', 'tail', 'r1']],
    ['runs export', ['runs', 'export', 'r1']],
    ['runs verify', ['runs', 'verify', 'r1']],
    ['services', ['services']],
    ['service describe', ['service', 'describe', 'web']],
    ['service logs', ['service', 'logs', 'web']],
    ['service stop', ['service', 'stop', 'web']],
    ['service remove', ['service', 'remove', 'web']],
    ['events', ['events']],
    ['ping', ['ping', '-n', '1']],
  ];

  it.each(reporting)('`%s` exits 3 naming the home and `muxvisor start`, and starts no supervisor', async (_name, args) => {
    const [text, json] = await Promise.all([runCli(home.home, args), runCli(home.home, [...args, '--json'])]);
    expect(text.code, text.stderr).toBe(3);
    expect(text.stdout).toBe('');
    expect(text.stderr).toMatch(/^muxvisor: no supervisor is running for home /);
    expect(text.stderr).toContain(home.home);
    expect(text.stderr).toContain(`\`muxvisor start --home ${home.home}\``);
    expect(json.code).toBe(3);
    const { error } = json.json<CliErrorJson>();
    expect(error).toMatchObject({ code: 'MUXVISOR_NOT_RUNNING', exitCode: 3 });
    expect(error.message).toContain(home.home);
    expect(error.message).toContain('muxvisor start');
    expect(json.stderr).toBe('');
    expect(home.supervisorPid()).toBeNull();
  });

  it('`stop` exits 0 saying there is nothing to stop', async () => {
    const [text, json, forced] = await Promise.all([
      runCli(home.home, ['stop']), runCli(home.home, ['stop', '--json']), runCli(home.home, ['stop', '--force', '--json']),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`no supervisor is running for home ${home.home}: nothing to stop`);
    expect(json.code).toBe(0);
    expect(json.json()).toEqual({ stopped: false, running: false, home: home.home });
    expect(forced.code).toBe(0);
    expect(forced.json()).toMatchObject({ stopped: false, running: false });
    expect(home.supervisorPid()).toBeNull();
  });

  it('rejects bad flags and unknown commands with exit 2, before looking for a supervisor', async () => {
    const cases: string[][] = [
      ['frobnicate'],
      ['status', '--no-such-flag'],
      ['--timeout', '0', 'status'],
      ['--timeout', 'soon', 'status'],
      ['stop', '--wait', 'forever'],
      ['start', '--workers', 'many'],
      ['start', '--idle-timeout-ms', '-1'],
      ['start', '--log-level', 'loud'],
      ['start', '--foreground', '--log-level', 'loud'],
      ['runs', 'show'],
    ];
    const results = await Promise.all(cases.map((args) => runCli(home.home, args)));
    results.forEach((r, i) => expect(r.code, `muxvisor ${cases[i]!.join(' ')}: ${r.stderr}`).toBe(2));
    expect(results[2]!.stderr).toContain('--timeout must be a positive number of milliseconds, got `0`');
    // A usage error of the CLI's own is JSON too with --json.
    const json = await runCli(home.home, ['stop', '--wait', 'x', '--json']);
    expect(json.code).toBe(2);
    expect(json.json<CliErrorJson>().error).toMatchObject({ code: 'MUXVISOR_CLI_USAGE', exitCode: 2 });
    expect(home.supervisorPid()).toBeNull();
  });

  it('with --json, prints an unknown command or option and a missing argument as one JSON error on stdout', async () => {
    const cases: string[][] = [['--json', 'frobnicate'], ['status', '--json', '--no-such-flag'], ['runs', 'show', '--json']];
    const results = await Promise.all(cases.map((args) => runCli(home.home, args)));
    results.forEach((r, i) => {
      expect(r.code, `muxvisor ${cases[i]!.join(' ')}: ${r.stderr}`).toBe(2);
      const { error } = r.json<CliErrorJson>();
      expect(error).toMatchObject({ code: 'MUXVISOR_CLI_USAGE', exitCode: 2 });
      expect(error.message).toMatch(/frobnicate|--no-such-flag|id/);
    });
    expect(home.supervisorPid()).toBeNull();
  });

  it('`--help` and `--version` exit 0', async () => {
    const [help, version] = await Promise.all([runCli(home.home, ['--help']), runCli(null, ['--version'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes: 0 ok');
    expect(version.code).toBe(0);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(version.stdout.trim()).toBe(pkg.version);
  });
});

describe('start and stop', () => {
  let home: TempHome;
  beforeAll(() => {
    home = tempHome('muxvisor-cli-daemon-');
  });
  afterAll(() => home.cleanup());

  it('`start` starts one supervisor; a second `start` says it already runs (same pid)', async () => {
    const first = await runCli(home.home, ['start', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const started = first.json();
    expect(started).toMatchObject({ started: true, home: home.home, socket: home.layout.socketPath });
    expect(started.pid).toBe(home.supervisorPid());
    expect(alive(started.pid)).toBe(true);

    const [again, text] = await Promise.all([runCli(home.home, ['start', '--json']), runCli(home.home, ['start'])]);
    expect(again.json()).toMatchObject({ started: false, pid: started.pid });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`already running: supervisor pid ${started.pid}`);
    expect(home.supervisorPid()).toBe(started.pid);
  });

  it('finds the home in MUXVISOR_HOME when --home is not given', async () => {
    const r = await runCli(null, ['start', '--json'], { env: { MUXVISOR_HOME: home.home } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ started: false, home: home.home, pid: home.supervisorPid() });
  });

  it('`stop` drains: an open run of a client still connected ends `interrupted`, and no supervisor is left', async () => {
    const pid = home.supervisorPid();
    expect(pid).not.toBeNull();
    const client = await connect({ home: home.home, name: 'holder', start: false, handleExit: false, exportEnv: false });
    try {
      const run = await client.openRun('left-open');
      for (let i = 0; i < 3; i++) run.publish({ step: i });
      await run.sync();

      const stopped = await runCli(home.home, ['stop', '--json']);
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(stopped.json()).toMatchObject({ stopped: true, pid, how: 'drained', home: home.home });
      expect(home.supervisorPid()).toBeNull();
      expect(alive(pid!)).toBe(false);
    } finally {
      client.destroy();
    }
    const meta = JSON.parse(readFileSync(join(home.layout.runsDir, 'left-open', 'meta.json'), 'utf8')) as Record<string, unknown>;
    expect(meta).toMatchObject({ state: 'finished', status: 'interrupted', records: 3 });

    // A new supervisor reports the same.
    const restarted = await runCli(home.home, ['start', '--json']);
    expect(restarted.json()).toMatchObject({ started: true });
    const [show, text] = await Promise.all([runCli(home.home, ['runs', 'show', 'left-open', '--json']), runCli(home.home, ['runs', 'show', 'left-open'])]);
    expect(show.code, show.stderr).toBe(0);
    const info = show.json();
    expect(info.meta.status).toBe('interrupted');
    expect(info.end.status).toBe('interrupted');
    expect(info.summary).toEqual({ step: 2 });
    expect(text.stdout).toMatch(/status\s+interrupted/);
  });

  it('`stop` says what it stopped in text', async () => {
    const pid = home.supervisorPid() ?? (await runCli(home.home, ['start', '--json'])).json().pid;
    const r = await runCli(home.home, ['stop']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`stopped supervisor pid ${pid} (drained`);
    expect(r.stderr).toContain(`draining supervisor pid ${pid}`);
    expect(home.supervisorPid()).toBeNull();
  });

  it('`start --foreground` runs in this terminal, prints the log, and drains on SIGINT (exit 0)', async () => {
    expect(home.supervisorPid()).toBeNull();
    const fg = followCli(home.home, ['start', '--foreground']);
    try {
      const said = await fg.waitForErr((l) => l.includes('supervisor running in the foreground'));
      const pid = Number(/pid (\d+)/.exec(said)?.[1]);
      expect(pid).toBe(home.supervisorPid());
      expect(said).toContain(home.home);
      const status = await runCli(home.home, ['status', '--json']);
      expect(status.json().server.pid).toBe(pid);
      await fg.waitFor((l) => l.includes('supervisor listening'));

      // A second foreground supervisor for the same home is refused.
      const second = await runCli(home.home, ['start', '--foreground']);
      expect(second.code).toBe(5);
      expect(second.stderr).toContain(`pid ${pid}`);

      const ended = await fg.stop('SIGINT');
      expect(ended).toEqual({ code: 0, signal: null });
      expect(alive(pid)).toBe(false);
      expect(home.supervisorPid()).toBeNull();
      expect(fg.errLines.some((l) => l.includes('supervisor stopped'))).toBe(true);
    } finally {
      await fg.stop('SIGKILL');
    }
  });

  it('`start --foreground` says so (exit 1) when the supervisor fails at once, even while its log printer still loads', async () => {
    const broken = tempHome('muxvisor-cli-broken-');
    try {
      // A file where its runtime directory goes: the supervisor fails and exits within the 2 s
      // that pino-pretty takes to load here.
      writeFileSync(broken.layout.runtimeDir, 'not a directory');
      const preload = join(import.meta.dirname, '..', 'fixtures', 'cli', 'slow-pretty.mjs');
      const r = await runCli(broken.home, ['start', '--foreground'], {
        env: { NODE_OPTIONS: `--import=${preload}`, MUXVISOR_TEST_SLOW_PRETTY_MS: '2000' }, timeoutMs: 10_000,
      });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain('the supervisor exited during start-up (code 1)');
    } finally {
      await broken.cleanup();
    }
  });

  it('a second `stop` while the first one drains waits for the same end (exit 0), instead of calling the supervisor unresponsive', async () => {
    const slow = tempHome('muxvisor-cli-slow-stop-');
    try {
      // A service that ignores SIGTERM keeps the drain going for its stop timeout (2 s).
      const add = await runCli(slow.home, ['service', 'add', 'stubborn', '--stop-timeout', '2000', '--ready', 'none', '--', NODE, '-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)'], { cwd: slow.home });
      expect(add.code, add.stderr).toBe(0);
      const pid = slow.supervisorPid()!;
      const first = followCli(slow.home, ['stop']);
      await first.waitForErr((l) => l.includes('draining supervisor pid'));
      const second = await runCli(slow.home, ['stop', '--json']);
      expect(second.code, second.stdout).toBe(0);
      expect(second.json()).toMatchObject({ stopped: true, pid, how: 'drained' });
      expect(await first.exited).toEqual({ code: 0, signal: null });
      expect(alive(pid)).toBe(false);
    } finally {
      await slow.cleanup();
    }
  });

  it('`stop --force` kills the supervisor and every process of its services, even one that ignores SIGTERM', async () => {
    expect(home.supervisorPid()).toBeNull();
    // Acting commands start a supervisor when none runs.
    const add = (name: string, code: string) => runCli(home.home, ['service', 'add', name, '--json', '--', NODE, '-e', code], { cwd: home.home });
    const [calm, stubborn] = await Promise.all([
      add('calm', 'setInterval(() => {}, 1000)'),
      add('stubborn', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)'),
    ]);
    expect(calm.code, calm.stdout + calm.stderr).toBe(0);
    expect(stubborn.code, stubborn.stdout + stubborn.stderr).toBe(0);
    const pids = [calm.json().pid as number, stubborn.json().pid as number];
    await eventually(() => pids.every((p) => home.serviceProcesses().has(p)), 'both services to carry the home marker');
    const pid = home.supervisorPid();

    const r = await runCli(home.home, ['stop', '--force', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const answer = r.json();
    expect(answer).toMatchObject({ stopped: true, pid });
    expect(['destroyed', 'killed']).toContain(answer.how);
    expect(home.supervisorPid()).toBeNull();
    expect(alive(pid!)).toBe(false);
    // The supervisor SIGKILLs every service's tree before it exits: nothing is left when stop returns.
    expect([...home.serviceProcesses().keys()]).toEqual([]);
    for (const p of pids) expect(alive(p)).toBe(false);
  });
});

describe('demo', () => {
  const home = tempHome('muxvisor-cli-demo-');
  afterAll(() => home.cleanup());

  it('runs three processes and leaves demo-web up, with the status, services and what to try next', async () => {
    const r = await runCli(home.home, ['demo', '--steps', '20'], { timeoutMs: 60_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(ANSI);
    expect(r.stdout).toContain(`$ muxvisor status --home ${home.home}`);
    expect(r.stdout).toContain(`$ muxvisor services --home ${home.home}`);
    expect(r.stdout).toContain('Try next');
    expect(r.stdout).toContain(`pid ${home.supervisorPid()}`);
    expect(r.stdout).toContain('no problems');

    const services = (await runCli(home.home, ['services', '--json'])).json() as Array<Record<string, any>>;
    const web = services.find((s) => s.name === 'demo-web');
    expect(web).toMatchObject({ state: 'running' });
    expect(r.stdout).toContain(web!.url);
    const page = await fetch(web!.url as string);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Runs in');

    const runs = (await runCli(home.home, ['runs', '--json'])).json();
    expect(runs.open).toEqual([]);
    const demoRuns = (runs.recorded as Array<Record<string, any>>).filter((x) => String(x.run).startsWith('demo-trainer-'));
    expect(demoRuns.map((x) => x.status)).toEqual(['ok', 'ok', 'ok']);
    expect(demoRuns.map((x) => x.records).sort((a, b) => a - b)).toEqual([20, 40, 60]);
  });
});
