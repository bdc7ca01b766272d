/**
 * `muxvisor doctor`, run as users run it (the built CLI, in a child process) against real homes
 * broken one way at a time: modes, a corrupt token, a killed, stopped or older supervisor, a
 * reused pid, a long home path, a full disk, a huge log, a stray environment variable. Where the
 * fix is a command, some tests paste it into a shell and check that the doctor is then happy.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Check } from '../../lib/cli/doctor/check.js';
import type { DoctorReport } from '../../lib/cli/commands/doctor.js';
import { connect } from '../../lib/index.js';
import { MAX_SOCKET_PATH_BYTES } from '../../protocol/index.js';
import { PACKAGE_ROOT, VERSION } from '../../protocol/version.js';
import { alive, type TempHome, tempHome, waitForExit } from '../helpers/home.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'lib', 'cli', 'main.js');

/** A directory for this file: a `muxvisor` on PATH (to paste fixes), an older muxvisor's copy. */
let scratch: string;
let bin: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'muxvisor-doctor-'));
  bin = join(scratch, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'muxvisor'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`, { mode: 0o755 });
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A temporary home, removed (its supervisor stopped) when the test that asked for it ends. */
function fresh(onTestFinished: (fn: () => Promise<void>) => void): TempHome {
  const h = tempHome('muxvisor-doctor-test-');
  onTestFinished(() => h.cleanup());
  return h;
}

/** The environment of a user's shell with no muxvisor variables set, and `muxvisor` on PATH. */
function shellEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', PATH: `${bin}:${process.env.PATH}` };
  delete env.MUXVISOR_SERVICE;
  delete env.MUXVISOR_HOME;
  delete env.FORCE_COLOR;
  return { ...env, ...extra };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Diagnosis {
  /** Exit code (the same for the text and the JSON run). */
  code: number | null;
  text: string;
  report: DoctorReport;
  check(id: string): Check;
  /** The text line of the check titled `title`, and its `fix:` line ('' when none). */
  line(title: string): { line: string; fix: string };
}

/**
 * Runs `muxvisor --home <home> doctor` twice, as text and as JSON. `--min-free 1` unless the test
 * gives its own: the machine's free space must not decide a test about something else.
 */
async function doctor(home: string, args: string[] = [], env: Record<string, string> = {}): Promise<Diagnosis> {
  const extra = args.includes('--min-free') ? args : [...args, '--min-free', '1'];
  const [text, json] = await Promise.all([
    run(process.execPath, [CLI, '--home', home, 'doctor', ...extra], shellEnv(env)),
    run(process.execPath, [CLI, '--home', home, 'doctor', '--json', ...extra], shellEnv(env)),
  ]);
  if (text.code !== json.code) throw new Error(`exit code ${text.code} as text, ${json.code} as JSON; stderr: ${text.stderr}${json.stderr}`);
  const report = JSON.parse(json.stdout) as DoctorReport;
  const lines = text.stdout.trimEnd().split('\n');
  return {
    code: json.code,
    text: text.stdout,
    report,
    check(id) {
      const found = report.checks.find((k) => k.id === id);
      if (found === undefined) throw new Error(`no check \`${id}\` in ${json.stdout}`);
      return found;
    },
    line(title) {
      const at = lines.findIndex((l) => new RegExp(`^. ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} {2,}`).test(l));
      if (at < 0) throw new Error(`no line for \`${title}\` in:\n${text.stdout}`);
      const next = lines[at + 1] ?? '';
      return { line: lines[at] as string, fix: /^\s+fix: /.test(next) ? next.trim() : '' };
    },
  };
}

/** Only `--json`: for a second look whose text adds nothing (after a fix, a variant). */
async function doctorJson(home: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number | null; report: DoctorReport; status(id: string): string | undefined }> {
  const extra = args.includes('--min-free') ? args : [...args, '--min-free', '1'];
  const json = await run(process.execPath, [CLI, '--home', home, 'doctor', '--json', ...extra], shellEnv(env));
  const report = JSON.parse(json.stdout) as DoctorReport;
  return { code: json.code, report, status: (id) => report.checks.find((k) => k.id === id)?.status };
}

/** Pastes a fix into a shell, with `muxvisor` on PATH. */
async function paste(fix: string | null): Promise<void> {
  if (fix === null) throw new Error('no fix to paste');
  const done = await run('sh', ['-c', fix], shellEnv());
  if (done.code !== 0) throw new Error(`\`${fix}\` exited with ${done.code}: ${done.stdout}${done.stderr}`);
}

/** Starts the home's supervisor as any client would; it stays up after the client closes. */
async function startSupervisor(home: TempHome): Promise<number> {
  const client = await connect({ home: home.home, name: 'doctor-test', handleExit: false, exportEnv: false });
  const pid = client.server.pid;
  await client.close();
  return pid;
}

const ALL_CHECKS = ['home', 'runtime-dir', 'data-dirs', 'token', 'socket', 'pid-file', 'supervisor', 'version', 'socket-path', 'disk', 'logs', 'home-env', 'service-env', 'daemon-entry'];

// Each test has its own home and processes, so they run side by side.
describe.concurrent('muxvisor doctor', () => {
  it('finds nothing wrong with a healthy home and its running supervisor, and exits 0', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const pid = await startSupervisor(home);
    const d = await doctor(home.home);
    expect(d.code).toBe(0);
    expect(d.report).toMatchObject({ home: home.home, cliVersion: VERSION, ok: true, supervisor: { running: true, pid, version: VERSION } });
    expect(d.report.checks.map((k) => k.id)).toEqual(ALL_CHECKS);
    // Every check that a later test breaks is ok here: each can tell right from wrong.
    for (const k of d.report.checks) expect([k.id, k.status, k.fix]).toEqual([k.id, 'ok', null]);
    expect(d.check('version').detail).toContain(`pid ${pid}`);
    expect(d.line('supervisor').line).toMatch(new RegExp(`^✓ supervisor +pid ${pid} answers`));
    expect(d.text).not.toContain('fix:');
    expect(d.text.trimEnd().split('\n').at(-1)).toBe('everything looks right');
  });

  it('neither starts a supervisor nor creates the home when none exists', async ({ expect, onTestFinished }) => {
    const home = join(fresh(onTestFinished).home, 'not-yet');
    const d = await doctor(home);
    expect(d.code).toBe(0);
    expect(d.report.supervisor).toEqual({ running: false, pid: null, version: null });
    expect(d.check('home')).toMatchObject({ status: 'ok', detail: expect.stringContaining('created (mode 700) on first use') });
    expect(d.check('supervisor').status).toBe('ok');
    expect(d.check('version').status).toBe('skip');
    expect(d.text).toContain('no supervisor running');
    expect(existsSync(home)).toBe(false);
  });

  it('warns about a home others can read, fails one others can write in, and says to chmod it 700', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    chmodSync(home.home, 0o755);
    const readable = await doctor(home.home);
    expect(readable.code).toBe(0);
    expect(readable.check('home')).toMatchObject({ status: 'warn', fix: `chmod 700 ${home.home}` });
    expect(readable.line('home directory').line).toMatch(/^! home directory +.* has mode 755/);
    expect(readable.line('home directory').fix).toBe(`fix: chmod 700 ${home.home}`);
    expect(readable.text.trimEnd().split('\n').at(-1)).toBe('1 warning');

    chmodSync(home.home, 0o757);
    const writable = await doctorJson(home.home);
    expect(writable.code).toBe(7);
    expect(writable.report.checks.find((k) => k.id === 'home')).toMatchObject({ status: 'fail', fix: `chmod 700 ${home.home}`, detail: expect.stringContaining('has mode 757: others can write in it') });
  });

  it('fails a runtime directory others can enter and says to chmod it 700', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    mkdirSync(home.layout.runtimeDir, { mode: 0o700 });
    chmodSync(home.layout.runtimeDir, 0o755);
    const d = await doctor(home.home);
    expect(d.code).toBe(7);
    expect(d.check('runtime-dir')).toMatchObject({ status: 'fail', fix: `chmod 700 ${home.layout.runtimeDir}` });
    expect(d.line('runtime directory').line).toMatch(/^✗ runtime directory +.*\/run has mode 755, not 700/);
    expect(d.text.trimEnd().split('\n').at(-1)).toBe('1 problem');
  });

  it('fails a token others can read and says to chmod it 600', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    await startSupervisor(home);
    chmodSync(home.layout.tokenPath, 0o644);
    const d = await doctor(home.home);
    expect(d.code).toBe(7);
    expect(d.check('token')).toMatchObject({ status: 'fail', fix: `chmod 600 ${home.layout.tokenPath}` });
    expect(d.line('token').line).toMatch(/^✗ token +.* has mode 644, not 600/);
    expect(d.line('token').fix).toBe(`fix: chmod 600 ${home.layout.tokenPath}`);
  });

  it('fails a corrupt token the running supervisor refuses, and its fix (a forced restart with a new token) works', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const pid = await startSupervisor(home);
    writeFileSync(home.layout.tokenPath, 'not a token\n');
    const d = await doctor(home.home);
    expect(d.code).toBe(7);
    const token = d.check('token');
    expect(token.status).toBe('fail');
    expect(token.fix).toBe(`muxvisor stop --force --home ${home.home} && rm -f ${home.layout.tokenPath} && muxvisor start --home ${home.home}`);
    expect(d.line('token').line).toMatch(new RegExp(`^✗ token +.* not 64 lowercase hex characters: supervisor pid ${pid} refuses every client \\(MUXVISOR_BAD_TOKEN\\)`));
    expect(d.check('supervisor').status).toBe('skip'); // one cause, reported once
    expect(d.report.supervisor).toMatchObject({ running: true, pid, version: null });

    await paste(token.fix);
    const after = await doctorJson(home.home);
    expect(after.status('token')).toBe('ok');
    expect(after.report.supervisor.pid).not.toBe(pid);
    expect(after.code).toBe(0);
  });

  it('warns about a socket others may connect to and says to chmod it 600', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    await startSupervisor(home);
    chmodSync(home.layout.socketPath, 0o666);
    const d = await doctor(home.home);
    expect(d.code).toBe(0);
    expect(d.check('socket')).toMatchObject({ status: 'warn', fix: `chmod 600 ${home.layout.socketPath}` });
    expect(d.line('socket').line).toMatch(/^! socket +.* has mode 666, not 600/);
  });

  it('reports a stale socket and a stale pid file left by a killed supervisor and says to remove them', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const pid = await startSupervisor(home);
    process.kill(pid, 'SIGKILL');
    expect(await waitForExit(pid, 5_000)).toBe(true);
    const d = await doctor(home.home);
    expect(d.code).toBe(7);
    expect(d.report.supervisor).toEqual({ running: false, pid: null, version: null });
    const socket = d.check('socket');
    expect(socket).toMatchObject({ status: 'fail', fix: `rm ${home.layout.socketPath}` });
    expect(socket.detail).toContain('ECONNREFUSED');
    expect(d.line('socket').line).toMatch(/^✗ socket +.* is stale: .*\(the next supervisor also removes it when it starts\)/);
    const pidFile = d.check('pid-file');
    expect(pidFile).toMatchObject({ status: 'warn', fix: `rm ${home.layout.pidPath}` });
    expect(d.line('pid file').line).toMatch(new RegExp(`^! pid file +.* is stale: it names pid ${pid}, which is not running`));
    expect(d.text.trimEnd().split('\n').at(-1)).toBe('1 problem, 1 warning');

    await paste(socket.fix);
    await paste(pidFile.fix);
    const after = await doctorJson(home.home);
    expect([after.code, after.status('socket'), after.status('pid-file')]).toEqual([0, 'ok', 'ok']);
  });

  it('fails a token deleted under a running supervisor, which no client can then connect to', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const pid = await startSupervisor(home);
    rmSync(home.layout.tokenPath);
    const d = await doctor(home.home);
    expect(d.code).toBe(7);
    expect(d.check('token')).toMatchObject({
      status: 'fail', fix: `muxvisor stop --force --home ${home.home} && rm -f ${home.layout.tokenPath} && muxvisor start --home ${home.home}`,
    });
    expect(d.line('token').line).toMatch(new RegExp(`^✗ token +.* is missing while supervisor pid ${pid} runs`));
    expect(d.check('supervisor').status).toBe('skip'); // one cause, reported once
  });

  it('fails a supervisor whose socket was deleted, and its fix (a forced restart) works', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const pid = await startSupervisor(home);
    rmSync(home.layout.socketPath);
    const d = await doctor(home.home);
    expect(d.code).toBe(7);
    const supervisor = d.check('supervisor');
    expect(supervisor).toMatchObject({ status: 'fail', fix: `muxvisor stop --force --home ${home.home} && muxvisor start --home ${home.home}` });
    expect(d.line('supervisor').line).toMatch(new RegExp(`^✗ supervisor +pid ${pid} runs, but its socket .* is gone`));
    expect(d.check('socket').status).toBe('skip');
    expect(d.report.supervisor).toEqual({ running: true, pid, version: null });

    await paste(supervisor.fix);
    const after = await doctorJson(home.home);
    expect([after.code, after.status('supervisor'), after.status('socket')]).toEqual([0, 'ok', 'ok']);
  });

  it('warns about a pid file missing while the supervisor answers, since `muxvisor stop` then cannot find it', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const pid = await startSupervisor(home);
    rmSync(home.layout.pidPath);
    try {
      const d = await doctor(home.home);
      expect(d.code).toBe(0);
      expect(d.check('pid-file')).toMatchObject({ status: 'warn', fix: `echo ${pid} > ${home.layout.pidPath}` });
      expect(d.line('pid file').line).toMatch(new RegExp(`^! pid file +.* is missing, but supervisor pid ${pid} answers`));
      await paste(d.check('pid-file').fix); // the home's cleanup finds the supervisor by it, too
      expect((await doctorJson(home.home)).status('pid-file')).toBe('ok');
    } finally {
      if (!existsSync(home.layout.pidPath)) process.kill(pid, 'SIGTERM');
    }
  });

  it('fails a file at the socket path that is not a socket and says to remove it', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    mkdirSync(home.layout.runtimeDir, { mode: 0o700 });
    writeFileSync(home.layout.socketPath, 'not a socket');
    const d = await doctor(home.home);
    expect(d.code).toBe(7);
    expect(d.check('socket')).toMatchObject({ status: 'fail', fix: `rm ${home.layout.socketPath}` });
    expect(d.line('socket').line).toMatch(/^✗ socket +.* is not a socket/);
  });

  it('warns about runs and logs directories others can read and says to chmod them 700', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    mkdirSync(home.layout.runsDir, { mode: 0o755 });
    mkdirSync(home.layout.logsDir, { mode: 0o700 });
    chmodSync(home.layout.runsDir, 0o755);
    const d = await doctor(home.home);
    expect(d.code).toBe(0);
    expect(d.check('data-dirs')).toMatchObject({ status: 'warn', fix: `chmod 700 ${home.layout.runsDir}` });
    expect(d.line('runs and logs directories').line).toMatch(/^! runs and logs directories +others can read .*\/runs \(mode 755\)/);
  });

  it('fails a pid file naming a live process that is not a supervisor, since stop --force would signal it', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      mkdirSync(home.layout.runtimeDir, { mode: 0o700 });
      writeFileSync(home.layout.pidPath, `${other.pid}\n`);
      const d = await doctor(home.home);
      expect(d.code).toBe(7);
      expect(d.check('pid-file')).toMatchObject({ status: 'fail', fix: `rm ${home.layout.pidPath}` });
      expect(d.line('pid file').line).toMatch(new RegExp(`^✗ pid file +.* names pid ${other.pid}, which is \`sleep 30\`, not a muxvisor supervisor: the pid was reused`));
      expect(d.report.supervisor.running).toBe(false);
      expect(alive(other.pid as number)).toBe(true); // looked at, never signalled
    } finally {
      rmSync(home.layout.pidPath, { force: true }); // or the home's cleanup would signal it
      other.kill('SIGKILL');
    }
  });

  it('fails a supervisor of another muxvisor version, and its fix (stop, then start) brings this version', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const older = olderMuxvisor('0.0.9-doctor-test');
    const daemon = spawn(process.execPath, [join(older, 'dist', 'supervisor', 'main.js'), '--home', home.home, '--ready-fd', '3'], {
      detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe'], env: shellEnv(),
    });
    const said = await new Promise<string>((resolve, reject) => {
      let text = '';
      daemon.stdio[3]?.on('data', (c: Buffer) => (text += c.toString()).includes('\n') && resolve(text));
      daemon.once('exit', (code) => reject(new Error(`the older supervisor exited with ${code}`)));
    });
    daemon.unref();
    (daemon.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy();
    expect(said).toBe(`ready ${daemon.pid}\n`);

    const d = await doctor(home.home);
    expect(d.code).toBe(7);
    expect(d.report.supervisor).toEqual({ running: true, pid: daemon.pid, version: '0.0.9-doctor-test' });
    const version = d.check('version');
    expect(version).toMatchObject({ status: 'fail', fix: `muxvisor stop --home ${home.home} && muxvisor start --home ${home.home}` });
    expect(d.line('version').line).toMatch(new RegExp(`^✗ version +supervisor pid ${daemon.pid} runs muxvisor 0\\.0\\.9-doctor-test, this CLI is ${VERSION.replace(/\./g, '\\.')}`));
    expect(d.check('pid-file').status).toBe('ok'); // an older supervisor is still a supervisor

    await paste(version.fix);
    const after = await doctorJson(home.home);
    expect(after.status('version')).toBe('ok');
    expect(after.report.supervisor.version).toBe(VERSION);
    expect(after.code).toBe(0);
  });

  it('fails a supervisor that is stopped and does not answer, and says how to resume it', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const pid = await startSupervisor(home);
    process.kill(pid, 'SIGSTOP');
    try {
      const d = await doctor(home.home, ['--timeout', '300']);
      expect(d.code).toBe(7);
      expect(d.report.supervisor).toEqual({ running: true, pid, version: null });
      expect(d.check('supervisor')).toMatchObject({ status: 'fail', fix: `kill -CONT ${pid}` });
      expect(d.check('supervisor').detail).toContain(`muxvisor stop --force --home ${home.home}`);
      expect(d.line('supervisor').line).toMatch(new RegExp(`^✗ supervisor +pid ${pid} is stopped .*\\(none within 300 ms\\)`));
      expect(d.check('pid-file').status).toBe('ok');
      expect(d.check('socket').status).toBe('ok'); // it listens: not stale
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });

  it('warns that a home with a long path uses a socket in /tmp and suggests a shorter home', async ({ expect, onTestFinished }) => {
    const base = fresh(onTestFinished).home;
    const home = join(base, 'x'.repeat(Math.max(1, MAX_SOCKET_PATH_BYTES - base.length - 10)));
    mkdirSync(home, { mode: 0o700 });
    const d = await doctor(home);
    expect(d.code).toBe(0);
    const path = d.check('socket-path');
    expect(path.status).toBe('warn');
    expect(path.fix).toMatch(/^export MUXVISOR_HOME=\/\S+$/);
    expect(path.detail).toMatch(new RegExp(`would be \\d+ bytes, over the limit of ${MAX_SOCKET_PATH_BYTES}: the socket is /tmp/muxvisor-\\d+/[0-9a-f]{16}\\.sock instead`));
    expect(d.line('socket path length').line).toMatch(/^! socket path length +.*over the limit/);
    expect(d.line('socket path length').fix).toMatch(/^fix: export MUXVISOR_HOME=/);
  });

  it('fails when free disk space is under --min-free, reporting the free bytes and percentage', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const d = await doctor(home.home, ['--min-free', '1000000T']);
    expect(d.code).toBe(7);
    const disk = d.check('disk');
    expect(disk.status).toBe('fail');
    expect(disk.detail).toMatch(/^[\d.]+ [KMGT]?i?B free of [\d.]+ [KMGT]?i?B \(\d+(\.\d)?%\) at .*: under the minimum of /);
    expect(disk.fix).toBe(`du -sh ${home.layout.runsDir}/* | sort -h | tail -20`);
    expect(d.line('disk space').line).toMatch(/^✗ disk space +.* free of .*under the minimum/);

    const bad = await run(process.execPath, [CLI, '--home', home.home, 'doctor', '--min-free', 'lots'], shellEnv());
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--min-free must be a number of bytes');
  });

  it('warns about a supervisor log over 1 GiB (never rotated) and says to truncate it', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    mkdirSync(home.layout.logsDir, { mode: 0o700 });
    writeFileSync(home.layout.supervisorLog, '');
    truncateSync(home.layout.supervisorLog, 1024 ** 3 + 1); // sparse: no disk used
    const d = await doctor(home.home);
    expect(d.code).toBe(0);
    expect(d.check('logs')).toMatchObject({ status: 'warn', fix: `truncate -s 0 ${home.layout.supervisorLog}` });
    expect(d.line('logs').line).toMatch(/^! logs +supervisor\.log 1\.0 GiB: over 1\.0 GiB, and never rotated/);
  });

  it('warns about a MUXVISOR_SERVICE that points at another supervisor, and fails a malformed one', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const elsewhere = `1:${'ab'.repeat(32)}:/tmp/elsewhere/muxvisor.sock`;
    const d = await doctor(home.home, [], { MUXVISOR_SERVICE: elsewhere });
    expect(d.code).toBe(0);
    expect(d.check('service-env')).toMatchObject({ status: 'warn', fix: 'unset MUXVISOR_SERVICE' });
    expect(d.line('MUXVISOR_SERVICE').line).toMatch(/^! MUXVISOR_SERVICE +points at \/tmp\/elsewhere\/muxvisor\.sock \(gone\), not at this home's/);

    const malformed = await doctorJson(home.home, [], { MUXVISOR_SERVICE: 'garbage' });
    expect(malformed.code).toBe(7);
    expect(malformed.report.checks.find((k) => k.id === 'service-env')).toMatchObject({ status: 'fail', fix: 'unset MUXVISOR_SERVICE' });
  });

  it('warns about a relative MUXVISOR_HOME, which each program resolves against its own directory', async ({ expect, onTestFinished }) => {
    const home = fresh(onTestFinished);
    const d = await doctor(home.home, [], { MUXVISOR_HOME: 'relative/home' });
    expect(d.code).toBe(0);
    expect(d.check('home-env')).toMatchObject({ status: 'warn', fix: `export MUXVISOR_HOME=${join(process.cwd(), 'relative/home')}` });
    expect(d.line('MUXVISOR_HOME').line).toMatch(/^! MUXVISOR_HOME +`relative\/home` is relative/);
  });
});

/**
 * A real muxvisor of another version: this package's supervisor and protocol, under a
 * package.json that says `version`, with this package's node_modules. It reports that version in
 * its WELCOME, like an older install would.
 */
function olderMuxvisor(version: string): string {
  const root = join(scratch, `muxvisor-${version}`);
  if (existsSync(root)) return root;
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  mkdirSync(join(root, 'dist'), { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ ...pkg, version }));
  for (const dir of ['protocol', 'supervisor']) cpSync(join(PACKAGE_ROOT, 'dist', dir), join(root, 'dist', dir), { recursive: true });
  symlinkSync(join(PACKAGE_ROOT, 'node_modules'), join(root, 'node_modules'));
  return root;
}
