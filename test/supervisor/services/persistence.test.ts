/**
 * Services across the lifetimes around them: a run that finishes, a supervisor killed -9 and
 * started again, a supervisor that drains, the desired state on disk (and what must never reach
 * it), captured logs across restarts and rotation, resource sampling of a whole tree, and Redis
 * through its template. Real supervisors, real child processes, temporary homes.
 */
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, ErrorCode, type ServiceDefinition, type ServiceEvent, templates } from '../../../lib/index.js';
import { PACKAGE_ROOT } from '../../../protocol/version.js';
import { findInPath } from '../../../lib/templates.js';
import { homeMarkerId } from '../../../supervisor/services/manager.js';
import { processTable, signalGroup } from '../../../supervisor/services/proc.js';
import { rejection } from '../../helpers/errors.js';
import { alive, eventually, type TempHome, tempHome, waitForExit } from '../../helpers/home.js';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'services');
const SERVER = join(fixtures, 'persist-server.mjs');
const CHATTY = join(fixtures, 'persist-chatty.mjs');
const HOG = join(fixtures, 'persist-hog.mjs');
const MB = 1024 * 1024;

/** A node service listening on an allocated port (ready when it accepts a TCP connection). */
function server(name: string, extra: Partial<ServiceDefinition> = {}): ServiceDefinition {
  return {
    name, command: process.execPath, args: [SERVER, '{port}'], ports: { tcp: 0 }, stopTimeoutMs: 500,
    restart: { policy: 'on-failure', initialDelayMs: 50, maxDelayMs: 200 }, ...extra,
  };
}

/** Pids of live processes of service `name` of this home (by the marker they carry). */
function processesOf(home: TempHome, name: string): number[] {
  const prefix = `${homeMarkerId(home.home)}/${name}/`;
  return [...home.serviceProcesses()].filter(([, marker]) => marker.startsWith(prefix)).map(([pid]) => pid);
}

interface SavedState {
  schema: number;
  services: Array<{ definition: { name: string; inheritEnv: string[] } & Record<string, unknown>; desired: string; ports: Record<string, number> }>;
}

function stateFile(home: TempHome, suffix = ''): SavedState {
  return JSON.parse(readFileSync(join(home.home, 'services', `_state.json${suffix}`), 'utf8')) as SavedState;
}

/** Every regular file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Sends `PING` over a raw TCP connection and resolves with the first line of the answer. */
function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let got = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer to PING within 5 s')));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) {
        socket.end();
        resolve(got.slice(0, got.indexOf('\r\n')));
      }
    });
    socket.on('error', reject);
  });
}

/** Reads the first line a TCP server sends. */
function firstLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let got = '';
    socket.on('data', (d) => (got += d.toString()));
    socket.on('end', () => resolve(got.trim()));
    socket.on('error', reject);
  });
}

/** Starts a supervisor for `home` with extra daemon flags (connect() has no option for them). */
async function startSupervisor(home: TempHome, flags: string[]): Promise<void> {
  const env = { ...process.env };
  delete env.MUXVISOR_SERVICE;
  delete env.MUXVISOR_SUPERVISED;
  const daemon = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist', 'supervisor', 'main.js'), '--home', home.home, ...flags], {
    detached: true, stdio: 'ignore', env,
  });
  daemon.unref();
  await eventually(() => home.supervisorPid() !== null && existsSync(home.layout.socketPath), 'the supervisor to listen');
}

async function killSupervisor(home: TempHome): Promise<number> {
  const pid = home.supervisorPid();
  expect(pid).not.toBeNull();
  process.kill(pid as number, 'SIGKILL');
  expect(await waitForExit(pid as number, 5_000)).toBe(true);
  return pid as number;
}

describe('a service tied to a run', () => {
  const home = tempHome('muxvisor-persist-run-');
  let client: Client;
  beforeAll(async () => {
    client = await connect({ home: home.home, name: 'persist-run', supervisor: { idleTimeoutMs: 0 } });
  });
  afterAll(async () => {
    await client?.close();
    await home.cleanup();
  });

  it('is stopped and removed when its run finishes, with nothing of it left', async () => {
    const events: ServiceEvent[] = [];
    const sub = await client.services.subscribe((e) => events.push(e));
    const run = await client.openRun('persist-tied');
    const status = await client.services.add(server('tied', { run: run.id }));
    expect(status).toMatchObject({ state: 'running', desired: 'running' });
    expect(status.definition.run).toBe(run.id);
    const pid = status.pid as number;
    expect(alive(pid)).toBe(true);
    expect(processesOf(home, 'tied')).toEqual([pid]);
    expect(await firstLine(status.ports.tcp as number)).toBe(`pid ${pid}`);
    // The service knows its run.
    expect((await client.services.logs('tied')).lines.map((l) => l.line)).toContainEqual(expect.stringContaining(`run=${run.id}`));

    const before = events.length;
    await run.finish();
    await eventually(() => events.some((e) => e.service === 'tied' && e.state === 'removed'), 'the service to be removed');
    const after = events.slice(before).filter((e) => e.service === 'tied');
    expect(after.map((e) => e.state)).toEqual(['stopping', 'stopped', 'removed']);
    expect(after[0]?.reason).toContain(`its run ${run.id} finished`);
    expect(after[2]?.reason).toContain(`its run ${run.id} finished`);
    sub.close();

    expect(alive(pid)).toBe(false);
    expect(processesOf(home, 'tied')).toEqual([]);
    expect((await rejection(client.services.get('tied'))).code).toBe(ErrorCode.UnknownService);
    expect((await client.services.list()).map((s) => s.name)).not.toContain('tied');
    expect(stateFile(home).services.map((s) => s.definition.name)).not.toContain('tied');
    expect(existsSync(join(home.home, 'services', 'tied'))).toBe(false);
  });

  it('cannot be added for a run that is not open (never opened, or finished)', async () => {
    const never = await rejection(client.services.add(server('orphan', { run: 'persist-never-opened' })));
    expect(never.code).toBe(ErrorCode.UnknownRun);
    expect(never.message).toContain('persist-never-opened');
    const run = await client.openRun('persist-short');
    await run.finish();
    expect((await rejection(client.services.add(server('orphan', { run: 'persist-short' })))).code).toBe(ErrorCode.UnknownRun);
    expect((await rejection(client.services.get('orphan'))).code).toBe(ErrorCode.UnknownService);
    expect(processesOf(home, 'orphan')).toEqual([]);
  });
});

describe('a supervisor killed with SIGKILL, then started again', () => {
  const home = tempHome('muxvisor-persist-kill-');
  const clients: Client[] = [];
  afterAll(async () => {
    for (const c of clients) await c.close();
    await home.cleanup();
  });

  it('restarts what should run (killing what the dead one left), keeps stopped what was stopped, and forgets run-scoped services', async () => {
    const first = await connect({ home: home.home, name: 'persist-kill', supervisor: { idleTimeoutMs: 0 } });
    clients.push(first);
    const keeper = await svc(first).add(server('keeper'));
    await svc(first).add(server('halted'));
    expect((await svc(first).stop('halted')).state).toBe('stopped');
    const run = await first.openRun('persist-doomed');
    const scoped = await svc(first).add(server('scoped', { run: run.id }));
    const saved = stateFile(home);
    expect(Object.fromEntries(saved.services.map((s) => [s.definition.name, s.desired]))).toMatchObject({ keeper: 'running', halted: 'stopped' });

    const deadPid = await killSupervisor(home);
    // Detached in their own sessions, the services outlive the supervisor.
    expect(alive(keeper.pid as number)).toBe(true);
    expect(alive(scoped.pid as number)).toBe(true);

    const second = await connect({ home: home.home, name: 'persist-kill-2', supervisor: { idleTimeoutMs: 0 } });
    clients.push(second);
    expect(second.started).toBe(true);
    expect(second.server.pid).not.toBe(deadPid);
    const restored = await eventually(async () => {
      const s = await svc(second).get('keeper');
      return s.state === 'running' && s.pid !== keeper.pid ? s : null;
    }, 'keeper to run again');
    expect(restored.desired).toBe('running');
    expect(restored.reason).toContain('ready');
    // The leftovers were killed before anything started.
    expect(alive(keeper.pid as number)).toBe(false);
    expect(alive(scoped.pid as number)).toBe(false);
    // The port it was given is kept (it was free again once the leftover was gone).
    expect(restored.ports).toEqual(keeper.ports);
    expect(await firstLine(restored.ports.tcp as number)).toBe(`pid ${restored.pid}`);
    expect((await svc(second).logs('keeper')).lines.map((l) => l.line).join('\n')).toContain(`pid=${restored.pid}`);

    const halted = await svc(second).get('halted');
    expect(halted).toMatchObject({ state: 'stopped', desired: 'stopped', pid: null });
    expect((await rejection(svc(second).get('scoped'))).code).toBe(ErrorCode.UnknownService);
    expect((await svc(second).list()).map((s) => s.name)).toEqual(['halted', 'keeper']);
    expect(stateFile(home).services.map((s) => s.definition.name).sort()).toEqual(['halted', 'keeper']);

    // Only keeper's new process carries the home's marker now.
    expect([...home.serviceProcesses().keys()]).toEqual([restored.pid]);
    expect(processesOf(home, 'keeper')).toEqual([restored.pid]);
  });

  // Regression: add() once saved the new service as desired `stopped` (saved before the start).
  it('saves a service added and started as one that should run, so a killed supervisor brings it back', async () => {
    const c = await connect({ home: home.home, name: 'persist-kill-3', supervisor: { idleTimeoutMs: 0 } });
    clients.push(c);
    const solo = await svc(c).add(server('solo'));
    expect(solo.desired).toBe('running');
    expect(stateFile(home).services.find((s) => s.definition.name === 'solo')?.desired).toBe('running');
  });

  // Regression: a waiter on a restored service once got `stopped` while leftovers were killed.
  it('waitReady right after a restart waits for a restored service while its leftovers are being killed', async () => {
    const c = await connect({ home: home.home, name: 'persist-kill-4', supervisor: { idleTimeoutMs: 0 } });
    clients.push(c);
    const stubborn = await svc(c).add(server('slow-leftover', { env: { PERSIST_IGNORE_TERM: '1' }, stopTimeoutMs: 1_500 }));
    await svc(c).start('slow-leftover'); // saves desired: running whatever add() saved
    await killSupervisor(home);
    const again = await connect({ home: home.home, name: 'persist-kill-5', supervisor: { idleTimeoutMs: 0 } });
    clients.push(again);
    const ready = await svc(again).waitReady('slow-leftover', { timeoutMs: 10_000 }).catch((e: Error) => e);
    expect(ready).not.toBeInstanceOf(Error);
    expect(alive(stubborn.pid as number)).toBe(false);
  });
});

describe('the supervisor drains', () => {
  const home = tempHome('muxvisor-persist-drain-');
  const clients: Client[] = [];
  afterAll(async () => {
    for (const c of clients) await c.close();
    await home.cleanup();
  });

  const definitions = [
    server('plain'),
    server('stubborn', { env: { PERSIST_IGNORE_TERM: '1' }, stopTimeoutMs: 500 }),
    { name: 'family', command: process.execPath, args: [HOG], env: { MB: '1' }, readiness: { type: 'log', pattern: '^children ready$' }, stopTimeoutMs: 500 },
  ] satisfies ServiceDefinition[];

  it('on SIGTERM: stops every service, SIGKILLs one that ignores SIGTERM, and leaves no marked process', async () => {
    const c = await connect({ home: home.home, name: 'persist-drain', supervisor: { idleTimeoutMs: 0 } });
    clients.push(c);
    for (const d of definitions) await svc(c).add(d);
    // add() saves before the service's desired state becomes 'running' (a bug, tested above):
    // one more save records all three as they are.
    await svc(c).start('family');
    expect(stateFile(home).services.map((s) => s.desired)).toEqual(['running', 'running', 'running']);
    const events: ServiceEvent[] = [];
    await svc(c).subscribe((e) => events.push(e));
    const pids = [...home.serviceProcesses().keys()];
    expect(pids.length).toBe(5); // plain, stubborn, family and its 2 children
    const pid = c.server.pid;
    const began = Date.now();
    process.kill(pid, 'SIGTERM');
    expect(await waitForExit(pid, 8_000)).toBe(true);
    const took = Date.now() - began;
    expect(took).toBeGreaterThanOrEqual(450); // stubborn had its 500 ms
    expect(took).toBeLessThan(5_000);
    expect(home.serviceProcesses().size).toBe(0);
    for (const p of pids) expect(alive(p)).toBe(false);
    const stopped = events.filter((e) => e.state === 'stopped');
    expect(stopped.map((e) => e.service).sort()).toEqual(['family', 'plain', 'stubborn']);
    expect(stopped.find((e) => e.service === 'stubborn')?.reason).toMatch(/the supervisor is stopping; 1 process\(es\) ignored SIGTERM for 500 ms and were killed/);
    // The drain leaves the saved desired state as it was.
    expect(stateFile(home).services.map((s) => s.desired)).toEqual(['running', 'running', 'running']);
  });

  it('the next supervisor brings them back; a shutdown request drains them again with nothing left', async () => {
    const c = await connect({ home: home.home, name: 'persist-drain-2', supervisor: { idleTimeoutMs: 0 } });
    clients.push(c);
    expect(c.started).toBe(true);
    const all = await eventually(async () => {
      const list = await svc(c).list();
      return list.every((s) => s.state === 'running') ? list : null;
    }, 'every service to run again');
    expect(all.map((s) => s.name)).toEqual(['family', 'plain', 'stubborn']);
    await eventually(() => home.serviceProcesses().size === 5, 'the family to have its children');
    const pids = [...home.serviceProcesses().keys()];
    const pid = c.server.pid;
    await c.request('shutdown');
    expect(await waitForExit(pid, 8_000)).toBe(true);
    expect(home.serviceProcesses().size).toBe(0);
    for (const p of pids) expect(alive(p)).toBe(false);
  });

  // A run finished by the drain removes its service and saves state.json while the others are
  // being stopped: what is saved must still be what the user asked for (fixed in b0c4309, where
  // stopAll() stopped services with stop(), which set their `desired` to 'stopped').
  it('keeps the saved desired state when a run with a service of its own is open during the drain', async () => {
    const c = await connect({ home: home.home, name: 'persist-drain-3', supervisor: { idleTimeoutMs: 0 } });
    clients.push(c);
    await eventually(async () => (await svc(c).list()).every((s) => s.state === 'running'), 'every service to run again');
    const run = await c.openRun('persist-drain-run');
    await svc(c).add(server('run-bound', { run: run.id }));
    await svc(c).start('plain'); // a save with every desired state as it should be
    const pid = c.server.pid;
    await c.request('shutdown');
    expect(await waitForExit(pid, 8_000)).toBe(true);
    expect(home.serviceProcesses().size).toBe(0);
    const saved = Object.fromEntries(stateFile(home).services.map((s) => [s.definition.name, s.desired]));
    expect(saved).toEqual({ family: 'running', plain: 'running', stubborn: 'running' });
  });
});

describe('the persisted state', () => {
  const home = tempHome('muxvisor-persist-state-');
  const secretName = `PERSIST_SECRET_${randomBytes(4).toString('hex').toUpperCase()}`;
  const secret = `s3cr3t-${randomBytes(16).toString('hex')}`;
  const outside = join(tmpdir(), `muxvisor-persist-secret-${process.pid}-${randomBytes(4).toString('hex')}.txt`);
  const clients: Client[] = [];
  afterAll(async () => {
    delete process.env[secretName];
    for (const c of clients) await c.close();
    await home.cleanup();
    rmSync(outside, { force: true });
  });

  /** Files under the home holding the secret's value. */
  const leaks = () => filesUnder(home.home).filter((f) => readFileSync(f).includes(secret));

  it('holds schema 1, the definitions and desired states, and inherited variable names but never their values', async () => {
    // The supervisor starts without the secret in its environment: only `inheritEnv` can carry it.
    const c = await connect({ home: home.home, name: 'persist-state', supervisor: { idleTimeoutMs: 0 } });
    clients.push(c);
    process.env[secretName] = secret;
    const secretive = await svc(c).add(server('secretive', {
      inheritEnv: [secretName], env: { PERSIST_SECRET_NAME: secretName, PERSIST_SECRET_OUT: outside },
    }));
    expect(secretive.missingEnv).toEqual([]);
    const dormant = await svc(c).add(server('dormant'), { start: false });
    expect(dormant).toMatchObject({ state: 'stopped', desired: 'stopped' });
    // A restart keeps the value (memory only). (Not `wait`: restart() with wait can reject while the
    // old process is stopping, a bug tested under captured logs.)
    await svc(c).restart('secretive', { wait: false });
    await eventually(async () => {
      const s = await svc(c).get('secretive');
      return s.state === 'running' && s.pid !== secretive.pid;
    }, 'secretive to run again');

    // The service saw the value: exactly (in a file outside the home), and by its hash in its logs.
    expect(readFileSync(outside, 'utf8')).toBe(`${secret}\n${secret}\n`);
    const hash = createHash('sha256').update(secret).digest('hex');
    const lines = (await svc(c).logs('secretive')).lines.map((l) => l.line);
    expect(lines.filter((l) => l === `secret sha256=${hash} length=${secret.length}`)).toHaveLength(2);

    const state = stateFile(home);
    expect(state.schema).toBe(1);
    expect(state.services.map((s) => [s.definition.name, s.desired])).toEqual([['secretive', 'running'], ['dormant', 'stopped']]);
    const [saved] = state.services;
    expect(saved?.definition).toEqual((await svc(c).get('secretive')).definition);
    expect(saved?.definition.inheritEnv).toEqual([secretName]);
    expect(saved?.ports).toEqual((await svc(c).get('secretive')).ports);
    expect(JSON.stringify(state)).not.toContain(secret);

    await eventually(() => readFileSync(join(home.home, 'services', 'secretive', 'stdout.log'), 'utf8').split(hash).length === 3, 'the log file to hold both lines');
    expect(leaks()).toEqual([]);
  });

  it('sets a corrupt state.json aside and restores from the .bak copy (inherited values are not restored)', async () => {
    await home.stopSupervisor();
    const backup = stateFile(home, '.bak');
    expect(backup.services.map((s) => s.definition.name).sort()).toEqual(['dormant', 'secretive']);
    const garbage = '{"schema": 1, "services": [ torn';
    writeFileSync(join(home.home, 'services', '_state.json'), garbage);
    delete process.env[secretName];

    const c = await connect({ home: home.home, name: 'persist-state-2', supervisor: { idleTimeoutMs: 0 } });
    clients.push(c);
    const list = await svc(c).list();
    expect(Object.fromEntries(list.map((s) => [s.name, s.desired]))).toEqual(Object.fromEntries(backup.services.map((s) => [s.definition.name, s.desired])));
    const aside = readdirSync(join(home.home, 'services')).filter((f) => f.startsWith('_state.json.unreadable-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(home.home, 'services', aside[0] as string), 'utf8')).toBe(garbage);

    const restored = await svc(c).waitReady('secretive', { timeoutMs: 10_000 });
    expect(restored.state).toBe('running');
    expect(restored.missingEnv).toEqual([secretName]);
    expect((await svc(c).get('dormant')).state).toBe('stopped');
    expect(readFileSync(outside, 'utf8')).toBe(`${secret}\n${secret}\n<missing>\n`);
    expect(leaks()).toEqual([]);
  });
});

describe('captured logs', () => {
  const home = tempHome('muxvisor-persist-logs-');
  let c: Client;
  beforeAll(async () => {
    c = await connect({ home: home.home, name: 'persist-logs', supervisor: { idleTimeoutMs: 0 } });
  });
  afterAll(async () => {
    await c?.close();
    await home.cleanup();
  });

  const chatty = (name: string, env: Record<string, string>, extra: Partial<ServiceDefinition> = {}): ServiceDefinition => ({
    name, command: process.execPath, args: [CHATTY], env: { TAG: name, ...env },
    readiness: { type: 'log', pattern: `^${name} done$`, stream: 'stdout' }, stopTimeoutMs: 500, ...extra,
  });

  it('keeps every start in stdout.log, each after a separator line, never truncating', async () => {
    const first = await svc(c).add(chatty('talker', { COUNT: '3' }));
    await svc(c).restart('talker', { wait: false });
    const second = await eventually(async () => {
      const s = await svc(c).get('talker');
      return s.state === 'running' && s.pid !== first.pid ? s : null;
    }, 'talker to run again');
    const path = join(home.home, 'services', 'talker', 'stdout.log');
    expect((await svc(c).logs('talker')).files.stdout).toBe(path);
    const text = await eventually(() => {
      const t = readFileSync(path, 'utf8');
      return t.split('talker done').length === 3 ? t : null;
    }, 'both starts in stdout.log');
    const lines = text.trimEnd().split('\n');
    const sep = (n: number, pid: number | null) => new RegExp(`^==== muxvisor: start ${n} of \`talker\` at \\S+, pid ${pid}: .*persist-chatty\\.mjs ====$`);
    expect(lines).toHaveLength(10);
    expect(lines[0]).toMatch(sep(1, first.pid));
    expect(lines.slice(1, 5)).toEqual(['talker 1 line 0000 ', 'talker 1 line 0001 ', 'talker 1 line 0002 ', 'talker done']);
    expect(lines[5]).toMatch(sep(2, second.pid));
    expect(lines.slice(6)).toEqual(['talker 2 line 0000 ', 'talker 2 line 0001 ', 'talker 2 line 0002 ', 'talker done']);
    // stderr.log has the separators too.
    const err = readFileSync(join(home.home, 'services', 'talker', 'stderr.log'), 'utf8').trimEnd().split('\n');
    expect(err).toHaveLength(2);
    expect(err[0]).toMatch(sep(1, first.pid));
    expect(err[1]).toMatch(sep(2, second.pid));
    // In memory: the lines of both starts, in order (no separators).
    expect((await svc(c).logs('talker', { lines: 100 })).lines.map((l) => l.line)).toEqual([...lines.slice(1, 5), ...lines.slice(6)]);
  });

  it('rotates at maxBytes keeping `keep` files, each about maxBytes, with the newest lines in order', async () => {
    const maxBytes = 4096;
    const size = 600;
    const count = 40; // 24 000 bytes
    await svc(c).add(chatty('rotor', { COUNT: String(count), SIZE: String(size), DELAY: '3' }, { logs: { maxBytes, keep: 2 } }));
    const dir = join(home.home, 'services', 'rotor');
    const read = (f: string) => readFileSync(join(dir, f), 'utf8');
    await eventually(() => read('stdout.log').endsWith('rotor done\n'), 'the last line in stdout.log');
    const files = readdirSync(dir).filter((f) => f.startsWith('stdout.log')).sort();
    expect(files).toEqual(['stdout.log', 'stdout.log.1', 'stdout.log.2']);
    expect(existsSync(join(dir, 'stdout.log.3'))).toBe(false);
    for (const f of ['stdout.log.1', 'stdout.log.2']) {
      const bytes = statSync(join(dir, f)).size;
      expect(bytes, f).toBeGreaterThanOrEqual(maxBytes); // rotated only once full
      expect(bytes, f).toBeLessThanOrEqual(maxBytes + 4 * size); // plus the write that filled it
      expect(read(f).endsWith('\n'), `${f} ends with a whole line`).toBe(true);
    }
    expect(statSync(join(dir, 'stdout.log')).size).toBeLessThanOrEqual(maxBytes + 4 * size);
    // Oldest to newest, the kept lines are whole, consecutive and end with the last one.
    const kept = ['stdout.log.2', 'stdout.log.1', 'stdout.log'].flatMap((f) => read(f).trimEnd().split('\n')).filter((l) => l.startsWith('rotor'));
    expect(kept.at(-1)).toBe('rotor done');
    const numbered = kept.slice(0, -1);
    expect(numbered.length).toBeGreaterThanOrEqual(Math.floor((2 * maxBytes) / size));
    numbered.forEach((line, i) => {
      expect(line).toHaveLength(size - 1);
      expect(line.startsWith(`rotor 1 line ${String(count - numbered.length + i).padStart(4, '0')} `)).toBe(true);
    });
    const last = (await svc(c).logs('rotor', { lines: 3 })).lines;
    expect(last.map((l) => l.stream)).toEqual(['stdout', 'stdout', 'stdout']);
    expect(last.map((l) => l.line.slice(0, 18))).toEqual(['rotor 1 line 0038 ', 'rotor 1 line 0039 ', 'rotor done']);
    expect(last[0]?.time).toBeLessThanOrEqual(last[2]?.time as number);
  });
});

describe('restart() through the library', () => {
  const home = tempHome('muxvisor-persist-restart-');
  let c: Client;
  beforeAll(async () => {
    c = await connect({ home: home.home, name: 'persist-restart', supervisor: { idleTimeoutMs: 0 } });
  });
  afterAll(async () => {
    await c?.close();
    await home.cleanup();
  });

  // Regression (see the report): in b0c4309, Service.restart() ran #halt(), which ended by
  // rejecting every waiter; the services.restart answer comes while the old process is
  // `stopping`, so the library's waitReady that followed was rejected "service is stopped:
  // restarting: ..." whenever it arrived before the old process was gone: always for a service
  // that takes 300 ms to stop, about 1 restart in 4 for one that stops at once.
  it('resolves with the new process, ready, also when the old one takes a while to stop', async () => {
    const old = await svc(c).add(server('slow-stop', { env: { PERSIST_IGNORE_TERM: '1' }, stopTimeoutMs: 300 }));
    const status = await svc(c).restart('slow-stop');
    expect(status.state).toBe('running');
    expect(status.pid).not.toBe(old.pid);
    expect(alive(old.pid as number)).toBe(false);
  });
});

describe('resource usage', () => {
  const home = tempHome('muxvisor-persist-usage-');
  let c: Client;
  beforeAll(async () => {
    await startSupervisor(home, ['--sample-ms', '200', '--idle-timeout-ms', '0']);
    c = await connect({ home: home.home, name: 'persist-usage' });
  });
  afterAll(async () => {
    await c?.close();
    await home.cleanup();
  });

  it('sums memory, CPU and processes over the whole tree of a service', async () => {
    expect(c.started).toBe(false);
    const added = Date.now();
    const hog = await svc(c).add({
      name: 'hog', command: process.execPath, args: [HOG], env: { MB: '50' },
      readiness: { type: 'log', pattern: '^children ready$', timeoutMs: 15_000 }, stopTimeoutMs: 500,
    });
    expect(processesOf(home, 'hog')).toHaveLength(3);
    const usage = await eventually(async () => {
      const u = (await svc(c).get('hog')).usage;
      return u !== null && u.processes >= 3 && u.memoryBytes > 100 * MB && u.cpuPercent > 0 ? u : null;
    }, 'the usage of the tree', 5_000);
    expect(Date.now() - added).toBeLessThan(8_000);
    expect(usage.processes).toBe(3);
    expect(usage.memoryBytes).toBeLessThan(1024 * MB);
    expect(usage.at).toBeGreaterThan(added);
    const stopped = await svc(c).stop('hog');
    expect(stopped).toMatchObject({ state: 'stopped', usage: null, pid: null });
    expect(alive(hog.pid as number)).toBe(false);
    expect(processesOf(home, 'hog')).toEqual([]);
  });
});

const redisServer = findInPath('redis-server');
const noRedis = 'skipped: redis-server is not on PATH';

/** Live processes in process group `pgid`. */
function groupMembers(pgid: number): number[] {
  return [...processTable().values()].filter((e) => e.pgid === pgid && e.state !== 'Z' && e.state !== 'X').map((e) => e.pid);
}

describe('Redis through its template', () => {
  const home = tempHome('muxvisor-persist-redis-');
  const clients: Client[] = [];
  /** Process groups of redis servers this test started, killed at the end whatever happened. */
  const groups: number[] = [];
  afterAll(async () => {
    for (const c of clients) await c.close();
    await home.cleanup();
    for (const g of groups) signalGroup(g, 'SIGKILL');
  });

  it.skipIf(redisServer === null)(`becomes ready, answers PING with +PONG, and leaves no process once stopped${redisServer === null ? ` (${noRedis})` : ''}`, async () => {
    const c = await connect({ home: home.home, name: 'persist-redis', supervisor: { idleTimeoutMs: 0 } });
    clients.push(c);
    const redis = await svc(c).add({ ...templates.redis({ dir: home.home }), stopTimeoutMs: 2_000 });
    groups.push(redis.pid as number);
    expect(redis).toMatchObject({ name: 'redis', state: 'running' });
    expect(redis.health.ready).toBe(true);
    const port = redis.ports.redis as number;
    expect(redis.url).toBe(`redis://127.0.0.1:${port}`);
    expect(await ping(port)).toBe('+PONG');
    expect(groupMembers(redis.pid as number)).toEqual([redis.pid]);
    const stopped = await svc(c).stop('redis');
    expect(stopped).toMatchObject({ state: 'stopped', pid: null });
    expect(alive(redis.pid as number)).toBe(false);
    expect(groupMembers(redis.pid as number)).toEqual([]);
    const servers = [...processTable().keys()].filter((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return cmdline.includes('redis-server') && cmdline.includes(`:${port}`);
      } catch {
        return false;
      }
    });
    expect(servers).toEqual([]);
  });

  // Regression: redis-server rewrites its environment (process title), losing the marker; the
  // launch record (process group + leader start time) is what finds it after a SIGKILLed supervisor.
  it.skipIf(redisServer === null)(`a redis left by a supervisor killed with SIGKILL is killed by the next one${redisServer === null ? ` (${noRedis})` : ''}`, async () => {
    const c = await connect({ home: home.home, name: 'persist-redis-2', supervisor: { idleTimeoutMs: 0 } });
    clients.push(c);
    const old = await svc(c).add({ ...templates.redis({ name: 'redis-left', dir: home.home }), stopTimeoutMs: 2_000 });
    groups.push(old.pid as number);
    await svc(c).start('redis-left'); // saves desired: running whatever add() saved
    await killSupervisor(home);
    expect(alive(old.pid as number)).toBe(true);
    const again = await connect({ home: home.home, name: 'persist-redis-3', supervisor: { idleTimeoutMs: 0 } });
    clients.push(again);
    const restored = await eventually(async () => {
      const s = await svc(again).get('redis-left');
      return s.state === 'running' && s.pid !== old.pid ? s : null;
    }, 'redis-left to run again');
    groups.push(restored.pid as number);
    expect(alive(old.pid as number)).toBe(false);
    expect(restored.ports).toEqual(old.ports);
  });
});

function svc(c: Client) {
  return c.services;
}
