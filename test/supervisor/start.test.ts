/**
 * Finding and starting the supervisor: cold and warm, racing starters, stale sockets, start-up
 * failures, long home paths, children inheriting the connection, idle and parent-watch exits.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DAEMON_MMAP_THRESHOLD_BYTES } from '../../lib/daemon.js';
import { connect, ErrorCode, MuxvisorError } from '../../lib/index.js';
import { PACKAGE_ROOT } from '../../protocol/version.js';
import { runFixture } from '../helpers/children.js';
import { eventually, type TempHome, tempHome, waitForExit } from '../helpers/home.js';
import { rejection } from '../helpers/errors.js';
import { finishedMeta, records } from '../helpers/logs.js';

let home: TempHome;
afterEach(async () => home?.cleanup());

const mode = (path: string) => statSync(path).mode & 0o777;

/** Pids of supervisor daemons serving `dir`, from /proc. */
function daemonsFor(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue;
      if (argv.some((a) => a.endsWith(join('supervisor', 'main.js'))) && argv[argv.indexOf('--home') + 1] === dir) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

describe('starting and finding the supervisor', () => {
  it('starts one on first connect, with a private home, socket and token, and reuses it after', async () => {
    home = tempHome();
    const first = await connect({ home: home.home });
    expect(first.started).toBe(true);
    expect(mode(home.home)).toBe(0o700);
    expect(mode(home.layout.runtimeDir)).toBe(0o700);
    expect(mode(home.layout.socketPath) & 0o077).toBe(0);
    expect(mode(home.layout.tokenPath)).toBe(0o600);
    expect(readFileSync(home.layout.tokenPath, 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(Number(readFileSync(home.layout.pidPath, 'utf8'))).toBe(first.server.pid);
    const second = await connect({ home: home.home });
    expect(second.started).toBe(false);
    expect(second.server.pid).toBe(first.server.pid);
    await second.close();
    await first.close();
  });

  it("starts the supervisor with glibc's mmap threshold fixed, unless the user set one", async () => {
    const environ = (pid: number) => new Map(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const saved = process.env.MALLOC_MMAP_THRESHOLD_;
    try {
      delete process.env.MALLOC_MMAP_THRESHOLD_;
      home = tempHome();
      const ours = await connect({ home: home.home });
      expect(environ(ours.server.pid).get('MALLOC_MMAP_THRESHOLD_')).toBe(String(DAEMON_MMAP_THRESHOLD_BYTES));
      await ours.close();
      await home.cleanup();
      process.env.MALLOC_MMAP_THRESHOLD_ = '65536';
      home = tempHome();
      const theirs = await connect({ home: home.home });
      expect(environ(theirs.server.pid).get('MALLOC_MMAP_THRESHOLD_')).toBe('65536');
      await theirs.close();
    } finally {
      if (saved === undefined) delete process.env.MALLOC_MMAP_THRESHOLD_;
      else process.env.MALLOC_MMAP_THRESHOLD_ = saved;
    }
  });

  it('passes MUXVISOR_DAEMON_NODE_ARGS to node when it starts the supervisor, and refuses what is not a flag', async () => {
    const saved = process.env.MUXVISOR_DAEMON_NODE_ARGS;
    try {
      process.env.MUXVISOR_DAEMON_NODE_ARGS = ' --max-old-space-size=300   --stack-size=900 ';
      home = tempHome();
      const client = await connect({ home: home.home });
      const argv = readFileSync(`/proc/${client.server.pid}/cmdline`, 'utf8').split('\0');
      expect(argv.slice(1, 3)).toEqual(['--max-old-space-size=300', '--stack-size=900']);
      await client.close();
      await home.cleanup();
      process.env.MUXVISOR_DAEMON_NODE_ARGS = '--cpu-prof oops';
      home = tempHome();
      const error = await rejection(connect({ home: home.home }));
      expect(error.code).toBe(ErrorCode.InvalidArgument);
      expect(error.message).toContain('`oops`');
      expect(daemonsFor(home.home)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.MUXVISOR_DAEMON_NODE_ARGS;
      else process.env.MUXVISOR_DAEMON_NODE_ARGS = saved;
    }
  });

  it('starts exactly one supervisor when several processes race to start it', async () => {
    home = tempHome();
    const children = Array.from({ length: 5 }, (_, i) => runFixture('publish.mjs', [], { MUXVISOR_HOME: home.home, RUNS: `race-${i}`, RECORDS: '10' }));
    const connected = await Promise.all(children.map((c) => c.line((l) => l.event === 'connected')));
    const pids = new Set(connected.map((l) => l.supervisorPid));
    expect(pids.size).toBe(1);
    // A daemon that lost the race exits at once; only the winner stays.
    await eventually(() => daemonsFor(home.home).length === 1, 'the losing daemons to exit', 5_000);
    expect(daemonsFor(home.home)).toEqual([...pids]);
    const exits = await Promise.all(children.map((c) => c.exited));
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0, 0, 0]);
    for (let i = 0; i < 5; i++) expect(records(home.home, `race-${i}`)).toHaveLength(10);
  });

  it('replaces the stale socket of a supervisor that was killed', async () => {
    home = tempHome();
    const first = await connect({ home: home.home });
    const pid = first.server.pid;
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid, 5_000);
    expect(existsSync(home.layout.socketPath)).toBe(true); // left behind: nobody removed it
    const second = await connect({ home: home.home });
    expect(second.started).toBe(true);
    expect(second.server.pid).not.toBe(pid);
    expect(await second.ping()).toBeGreaterThan(0);
    await second.close();
  });

  it('reports a supervisor that fails to start with a typed error that includes its own output', async () => {
    home = tempHome();
    const error = await connect({ home: home.home, supervisor: { logLevel: 'loudest' } }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(MuxvisorError);
    expect((error as MuxvisorError).code).toBe(ErrorCode.Unavailable);
    expect((error as MuxvisorError).message).toContain('exited during start-up (code 1)');
    expect((error as MuxvisorError).message).toContain('loudest');
    expect((error as MuxvisorError).message).toContain(home.layout.daemonOut);
  });

  it('does not start a supervisor when asked not to, and says so', async () => {
    home = tempHome();
    const error = await connect({ home: home.home, start: false }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(MuxvisorError);
    expect((error as MuxvisorError).code).toBe(ErrorCode.Unavailable);
    expect(daemonsFor(home.home)).toEqual([]);
  });

  it('puts the socket in a private /tmp directory when the home path is too long for a socket', async () => {
    home = tempHome();
    const deep = join(home.home, 'a-directory-name-that-is-rather-long'.repeat(3), 'home');
    mkdirSync(deep, { recursive: true });
    const client = await connect({ home: deep });
    const socket = (await client.status()).socket as string;
    expect(socket.startsWith('/tmp/muxvisor-')).toBe(true);
    expect(Buffer.byteLength(socket)).toBeLessThanOrEqual(107);
    expect(mode(dirname(socket))).toBe(0o700);
    // A directory anyone can write into is refused before the token is sent.
    chmodSync(dirname(socket), 0o777);
    try {
      const refused = await connect({ home: deep }).then(() => null, (e: unknown) => e);
      expect((refused as MuxvisorError).code).toBe(ErrorCode.InvalidArgument);
      expect((refused as MuxvisorError).message).toContain('has mode 777');
    } finally {
      chmodSync(dirname(socket), 0o700);
    }
    await client.request('shutdown');
    await client.close();
  });

  it('lets a child process reach the same supervisor through MUXVISOR_SERVICE and attach to its parent run', async () => {
    home = tempHome();
    const parent = await connect({ home: home.home, exportEnv: false });
    const run = await parent.openRun('family');
    run.publish({ from: 'parent' });
    const child = runFixture('publish.mjs', [], { MUXVISOR_HOME: undefined, MUXVISOR_SERVICE: parent.serviceEnv, RUNS: 'family', ATTACH: '1', RECORDS: '3', FINISH: '0', TAG: 'child' });
    const connected = await child.line((l) => l.event === 'connected');
    expect(connected.supervisorPid).toBe(parent.server.pid);
    expect((await child.exited).code).toBe(0);
    await run.sync();
    expect((await run.finish()).records).toBe(4);
    expect((records(home.home, 'family') as Array<{ pub?: string }>).filter((r) => r.pub === 'child')).toHaveLength(3);
    await parent.close();
  });

  it('exits on its own after the idle time with no clients and no runs, removing its socket', async () => {
    home = tempHome();
    const client = await connect({ home: home.home, supervisor: { idleTimeoutMs: 300 } });
    const pid = client.server.pid;
    await client.close();
    expect(await waitForExit(pid, 5_000)).toBe(true);
    expect(existsSync(home.layout.socketPath)).toBe(false);
  });

  it('finishes a run whose only owner closed without finishing, then exits when idle', async () => {
    home = tempHome();
    const client = await connect({ home: home.home, supervisor: { idleTimeoutMs: 300 } });
    const pid = client.server.pid;
    const run = await client.openRun('last');
    run.publish({ x: 1 });
    await client.close();
    expect((await finishedMeta(home.home, 'last')).status).toBe('crashed');
    expect(await waitForExit(pid, 5_000)).toBe(true);
  });

  it('drains and exits when the parent it watches exits', async () => {
    home = tempHome();
    const parent = spawn('sleep', ['0.5']);
    const daemon = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/supervisor/main.js'), '--home', home.home, '--parent-pid', String(parent.pid)], { stdio: 'ignore' });
    await eventually(() => existsSync(home.layout.socketPath), 'the daemon to listen');
    const exited = new Promise<number | null>((resolve) => daemon.once('exit', resolve));
    expect(await exited).toBe(0);
    expect(existsSync(home.layout.socketPath)).toBe(false);
  });
});
