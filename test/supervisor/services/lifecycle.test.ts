/**
 * Services end to end, with a real supervisor and real child processes: an HTTP server from a
 * template, crash loops with backoff, probes that never pass, services that ignore SIGTERM,
 * process trees with `setsid` escapees, the order of state events, refused definitions, and
 * log-line readiness.
 *
 * One supervisor serves the whole file; every test removes its services afterwards and checks
 * that no process of them is left.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Client, connect, ErrorCode, type ServiceDefinition, type ServiceEvent, type ServiceEvents, type ServiceState, templates,
} from '../../../lib/index.js';
import { readStat } from '../../../supervisor/services/proc.js';
import { rejection } from '../../helpers/errors.js';
import { alive, eventually, tempHome } from '../../helpers/home.js';

const fixtures = fileURLToPath(new URL('../../fixtures/services/', import.meta.url));
const fixture = (name: string) => join(fixtures, name);
const NODE = process.execPath;

const home = tempHome('muxvisor-services-');
/** Files the tests hand to their services (pid files, gates, a web root): outside the home. */
const scratch = mkdtempSync(join(tmpdir(), 'muxvisor-services-files-'));
let client: Client;
const subscriptions: ServiceEvents[] = [];

beforeAll(async () => {
  client = await connect({ home: home.home, name: 'services-lifecycle-test', supervisor: { idleTimeoutMs: 0 } });
});

afterEach(async () => {
  for (const s of subscriptions.splice(0)) s.close();
  // remove() stops the whole tree of each service first; nothing of them may be left after.
  for (const s of await client.services.list()) await client.services.remove(s.name, { timeoutMs: 20_000 });
  await eventually(() => home.serviceProcesses().size === 0, 'no service process left after removing every service');
});

afterAll(async () => {
  await client?.close();
  await home.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

interface Seen {
  seq: number;
  time: number;
  event: ServiceEvent;
}

/** Subscribes to service events; the returned list fills as they arrive. */
async function record(): Promise<{ seen: Seen[]; sub: ServiceEvents }> {
  const seen: Seen[] = [];
  const sub = await client.services.subscribe((event, meta) => seen.push({ ...meta, event }));
  subscriptions.push(sub);
  return { seen, sub };
}

const statesOf = (seen: Seen[], service: string) => seen.filter((s) => s.event.service === service).map((s) => s.event.state);

/** True when `port` can be bound on 127.0.0.1 now (the server is closed again at once). */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

interface TreePids {
  top: number;
  child: number;
  shell: number;
  grandchild: number;
  escapee: number;
}

/** A service running lifecycle-tree.mjs: a child, a grandchild and a setsid escapee that ignores SIGTERM. */
function treeService(name: string, pidFile: string, restart: ServiceDefinition['restart']): ServiceDefinition {
  return {
    name, command: NODE, args: [fixture('lifecycle-tree.mjs'), pidFile],
    readiness: { type: 'log', pattern: '^tree ready', timeoutMs: 15_000 }, stopTimeoutMs: 500, restart,
  };
}

function readPids(pidFile: string): TreePids {
  return JSON.parse(readFileSync(pidFile, 'utf8')) as TreePids;
}

describe('a supervised HTTP server', () => {
  it('is reachable at its URL once add() resolves, and stop() ends its process and frees its port', async () => {
    const root = join(scratch, 'www');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'hello.txt'), 'hello from a supervised server\n');

    const web = await client.services.add({ ...templates.httpServer({ dir: root }), name: 'web', stopTimeoutMs: 5_000 });
    expect(web).toMatchObject({ name: 'web', state: 'running', desired: 'running', restarts: 0 });
    const pid = web.pid as number;
    const port = web.ports.http as number;
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(true);
    expect(port).toBeGreaterThan(0);
    expect(web.url).toBe(`http://127.0.0.1:${port}/`);
    // The process carries the marker of this home, service and first start.
    expect(home.serviceProcesses().get(pid)).toMatch(/\/web\/1$/);

    const response = await fetch(`${web.url}hello.txt`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('hello from a supervised server\n');

    const status = await client.services.get('web');
    expect(status.state).toBe('running');
    expect(status.health.ready).toBe(true);
    expect(status.health.detail).toContain(`http GET http://127.0.0.1:${port}/ passed`);
    expect(status.readyAt).toBeGreaterThanOrEqual(status.startedAt as number);

    const stopped = await client.services.stop('web');
    expect(stopped).toMatchObject({ state: 'stopped', desired: 'stopped', pid: null, reason: 'stopped by request' });
    expect(alive(pid)).toBe(false);
    expect(home.serviceProcesses().size).toBe(0);
    expect(await canBind(port)).toBe(true);
    await expect(fetch(`${web.url}hello.txt`)).rejects.toThrow();
  });
});

describe('restarts', () => {
  it('backs off a crash loop with growing delays and gives up as failed, keeping the last exit', async () => {
    const { seen } = await record();
    const definition: ServiceDefinition = {
      name: 'crash', command: 'sh', args: ['-c', 'echo boom >&2; exit 3'],
      ports: { tcp: 0 }, readiness: { type: 'tcp', timeoutMs: 10_000 },
      restart: { policy: 'on-failure', initialDelayMs: 50, factor: 2, maxRestarts: 3, jitter: 0 },
    };
    const added = await rejection(client.services.add(definition));
    expect(added.code).toBe(ErrorCode.ServiceFailed);
    expect(added.message).toContain('gave up after 3 restart(s)');

    await eventually(() => seen.some((s) => s.event.service === 'crash' && s.event.state === 'failed'), 'the failed event');
    const mine = seen.filter((s) => s.event.service === 'crash');
    expect(mine.map((s) => s.event.state)).toEqual([
      'stopped', 'starting', 'backoff', 'starting', 'backoff', 'starting', 'backoff', 'starting', 'failed',
    ]);
    const backoffs = mine.filter((s) => s.event.state === 'backoff');
    const planned = backoffs.map((s) => {
      expect(s.event.reason).toContain('exited with code 3 before it was ready');
      expect(s.event.exit).toMatchObject({ code: 3, signal: null });
      expect(s.event.exit?.lastLines).toContain('boom');
      const m = /restart (\d+) in (\d+) ms/.exec(s.event.reason);
      expect(m, s.event.reason).not.toBeNull();
      return [Number(m?.[1]), Number(m?.[2])];
    });
    // initialDelayMs 50, factor 2, no jitter.
    expect(planned).toEqual([[1, 50], [2, 100], [3, 200]]);
    expect(backoffs.map((s) => s.event.restarts)).toEqual([1, 2, 3]);
    // Each restart waited (at least) its delay; 5 ms of slack for timer rounding.
    backoffs.forEach((b, i) => {
      const next = mine[mine.indexOf(b) + 1] as Seen;
      expect(next.event.state).toBe('starting');
      expect(next.time - b.time).toBeGreaterThanOrEqual((planned[i]?.[1] ?? 0) - 5);
    });

    const status = await client.services.get('crash');
    expect(status.state).toBe('failed');
    expect(status.desired).toBe('running');
    expect(status.pid).toBeNull();
    expect(status.restarts).toBe(3);
    expect(status.reason).toContain('gave up after 3 restart(s)');
    expect(status.lastExit).toMatchObject({ code: 3, signal: null });
    expect(status.lastExit?.lastLines).toContain('boom');

    const waited = await rejection(client.services.waitReady('crash', { timeoutMs: 5_000 }));
    expect(waited.code).toBe(ErrorCode.ServiceFailed);
    expect(waited.message).toContain('gave up');
    expect((waited.data as { lastExit: { code: number } }).lastExit.code).toBe(3);
  });

  it('fails a start whose probe never passes, and kills what it started', async () => {
    const { seen } = await record();
    const added = await rejection(client.services.add({
      name: 'deaf', command: 'sleep', args: ['60'], ports: { http: 0 },
      readiness: { type: 'tcp', timeoutMs: 500 }, restart: { policy: 'never' }, stopTimeoutMs: 1_000,
    }));
    expect(added.code).toBe(ErrorCode.ServiceFailed);
    expect(added.message).toContain('did not pass within 500 ms');

    const status = await client.services.get('deaf');
    const port = status.ports.http as number;
    expect(port).toBeGreaterThan(0);
    expect(status).toMatchObject({ state: 'failed', pid: null, restarts: 0 });
    expect(status.reason).toContain('start failed');
    expect(status.health.ready).toBe(false);
    expect(status.health.detail).toContain(`readiness probe tcp 127.0.0.1:${port} did not pass within 500 ms`);
    expect(statesOf(seen, 'deaf')).toEqual(['stopped', 'starting', 'stopping', 'failed']);
    const stopping = seen.find((s) => s.event.service === 'deaf' && s.event.state === 'stopping') as Seen;
    expect(stopping.event.probe).toContain('did not pass');
    const sleepPid = stopping.event.pid as number;
    expect(sleepPid).toBeGreaterThan(0);
    expect(alive(sleepPid)).toBe(false);
    expect(home.serviceProcesses().size).toBe(0);
  });

  // Regression: a waiter must keep waiting while a restart's stop runs (it once rejected with
  // the transient `stopped`).
  it('restart() resolves once the new process is ready, even when the old one takes time to stop', async () => {
    const before = await client.services.add({
      name: 'slow', command: NODE, args: [fixture('lifecycle-term.mjs'), '300'],
      readiness: { type: 'log', pattern: '^ready$' }, restart: { policy: 'never' }, stopTimeoutMs: 5_000,
    });
    const outcome = await client.services.restart('slow').then((s) => s.state, (e: Error) => e.message);
    // The restart itself goes through: a new process runs, the old one is gone...
    const later = await eventually(async () => {
      const s = await client.services.get('slow');
      return s.state === 'running' && s.pid !== null && s.pid !== before.pid ? s : null;
    }, 'the new process to be running');
    expect(later.restarts).toBe(0);
    expect(alive(before.pid as number)).toBe(false);
    // ...but the call that asked for it said it failed.
    expect(outcome).toBe('running');
  });
});

describe('stopping', () => {
  it('interrupts a start whose probe is still waiting, and tells whoever waits for it', async () => {
    const { seen } = await record();
    await client.services.add({
      name: 'pending', command: 'sleep', args: ['60'], ports: { p: 0 },
      readiness: { type: 'tcp', timeoutMs: 30_000 }, restart: { policy: 'never' }, stopTimeoutMs: 1_000,
    }, { wait: false });
    const waiting = rejection(client.services.waitReady('pending', { timeoutMs: 20_000 }));
    const starting = await eventually(async () => {
      const s = await client.services.get('pending');
      return s.state === 'starting' && s.pid !== null ? s : null;
    }, 'the service to be starting');
    const stopped = await client.services.stop('pending');
    expect(stopped).toMatchObject({ state: 'stopped', pid: null, reason: 'stopped by request' });
    expect(alive(starting.pid as number)).toBe(false);
    const error = await waiting;
    expect(error.code).toBe(ErrorCode.ServiceFailed);
    expect(error.message).toContain('stopped by request');
    expect(statesOf(seen, 'pending')).toEqual(['stopped', 'starting', 'stopping', 'stopped']);
  });

  it('cancels the pending restart of a service stopped during its backoff', async () => {
    const { seen } = await record();
    await client.services.add({
      name: 'flaky', command: 'sh', args: ['-c', 'echo ready; exit 1'], readiness: { type: 'log', pattern: '^ready$' },
      restart: { policy: 'on-failure', initialDelayMs: 600, jitter: 0 },
    }, { wait: false });
    await eventually(async () => (await client.services.get('flaky')).state === 'backoff', 'the service to back off');
    const stopped = await client.services.stop('flaky');
    expect(stopped).toMatchObject({ state: 'stopped', desired: 'stopped', pid: null });
    await new Promise((resolve) => setTimeout(resolve, 800)); // past the restart it had planned
    expect((await client.services.get('flaky')).state).toBe('stopped');
    expect(statesOf(seen, 'flaky').slice(-3)).toEqual(['backoff', 'stopping', 'stopped']);
    expect(statesOf(seen, 'flaky').filter((s) => s === 'starting')).toHaveLength(1);
  });

  it('kills a service that ignores SIGTERM once stopTimeoutMs has passed', async () => {
    const service = await client.services.add({
      name: 'stubborn', command: NODE, args: [fixture('lifecycle-term.mjs'), 'ignore'],
      readiness: { type: 'log', pattern: '^ready$' }, restart: { policy: 'never' }, stopTimeoutMs: 500,
    });
    const pid = service.pid as number;
    const stopped = await client.services.stop('stubborn');
    expect(stopped.state).toBe('stopped');
    expect(stopped.reason).toContain('1 process(es) ignored SIGTERM for 500 ms and were killed');
    expect(alive(pid)).toBe(false);
    // It was asked first: it saw the SIGTERM and said so.
    expect((await client.services.logs('stubborn')).lines.map((l) => l.line)).toContain('got SIGTERM, ignoring it');
    await eventually(async () => (await client.services.get('stubborn')).lastExit?.signal === 'SIGKILL', 'lastExit to say SIGKILL');

    // stop()'s own stopTimeoutMs overrides the definition's.
    const again = await client.services.start('stubborn');
    expect(again.pid).not.toBe(pid);
    const quick = await client.services.stop('stubborn', { stopTimeoutMs: 200 });
    expect(quick.state).toBe('stopped');
    expect(quick.reason).toContain('ignored SIGTERM for 200 ms and were killed');
    expect(alive(again.pid as number)).toBe(false);
  });

  it('stops the whole tree: children, grandchildren and a setsid escapee that ignores SIGTERM', async () => {
    const pidFile = join(scratch, 'tree-stop.json');
    const service = await client.services.add(treeService('tree', pidFile, { policy: 'never' }));
    const pids = readPids(pidFile);
    expect(pids.top).toBe(service.pid);
    for (const [what, pid] of Object.entries(pids)) expect(alive(pid), what).toBe(true);
    // The escapee really left: another session and group, adopted by someone outside the tree.
    const escapee = readStat(pids.escapee);
    expect(escapee?.pgid).not.toBe(pids.top);
    expect(Object.values(pids)).not.toContain(escapee?.ppid);
    // Every one carries the service's marker (that is how the escapee is found).
    const marked = home.serviceProcesses();
    for (const [what, pid] of Object.entries(pids)) expect(marked.get(pid), what).toMatch(/\/tree\/1$/);

    const stopped = await client.services.stop('tree');
    expect(stopped.state).toBe('stopped');
    expect(stopped.reason).toContain('ignored SIGTERM for 500 ms and were killed');
    for (const [what, pid] of Object.entries(pids)) expect(alive(pid), `${what} ${pid}`).toBe(false);
    expect(home.serviceProcesses().size).toBe(0);
  });

  it('cleans up what the top process left behind when it exits on its own', async () => {
    const pidFile = join(scratch, 'tree-exit.json');
    const { seen } = await record();
    await client.services.add(treeService('orphans', pidFile, { policy: 'never' }));
    const pids = readPids(pidFile);
    process.kill(pids.top, 'SIGHUP'); // it exits with code 5; its children keep running

    const failed = await eventually(async () => {
      const s = await client.services.get('orphans');
      return s.state === 'failed' ? s : null;
    }, 'the service to be failed');
    expect(failed.lastExit).toMatchObject({ code: 5, signal: null });
    expect(failed.reason).toMatch(/^exited with code 5 after running/);
    await eventually(() => Object.values(pids).every((pid) => !alive(pid)), 'every process of the tree to be gone');
    expect(home.serviceProcesses().size).toBe(0);
    expect(statesOf(seen, 'orphans')).toEqual(['stopped', 'starting', 'running', 'failed']);
  });

  it('kills the leftovers of a crashed start before restarting it', async () => {
    const pidFile = join(scratch, 'tree-restart.json');
    await client.services.add(treeService('phoenix', pidFile, { policy: 'on-failure', initialDelayMs: 50, jitter: 0 }));
    const first = readPids(pidFile);
    process.kill(first.top, 'SIGHUP');

    const second = await eventually(async () => {
      const s = await client.services.get('phoenix');
      return s.state === 'running' && s.pid !== null && s.pid !== first.top ? s : null;
    }, 'the restarted service to be running', 15_000);
    expect(second.restarts).toBe(1);
    // The new start waited until nothing of the old tree was left (the escapee needed SIGKILL).
    for (const [what, pid] of Object.entries(first)) expect(alive(pid), `old ${what} ${pid}`).toBe(false);
    const now = readPids(pidFile);
    expect(now.top).toBe(second.pid);
    for (const [what, pid] of Object.entries(now)) expect(home.serviceProcesses().get(pid), what).toMatch(/\/phoenix\/2$/);
  });

  // Regression: start() right after an unexpected exit waits for the leftovers' clean-up instead
  // of rejecting with the old failure.
  it('start() right after an unexpected exit waits for the leftovers to go and the new process to be ready', async () => {
    const pidFile = join(scratch, 'tree-start.json');
    await client.services.add(treeService('again', pidFile, { policy: 'never' }));
    const first = readPids(pidFile);
    process.kill(first.top, 'SIGHUP');
    await eventually(async () => (await client.services.get('again')).state === 'failed', 'the service to be failed');
    const outcome = await client.services.start('again').then((s) => s.state, (e: Error) => e.message);
    const later = await eventually(async () => {
      const s = await client.services.get('again');
      return s.state === 'running' && s.pid !== null ? s : null;
    }, 'the service to run again');
    expect(later.pid).not.toBe(first.top);
    for (const [what, pid] of Object.entries(first)) expect(alive(pid), `old ${what} ${pid}`).toBe(false);
    expect(outcome).toBe('running');
  });

  // Regression: an exit is handled synchronously, and an exit while a stop is pending belongs to
  // the stop (it once produced a spurious `failed` after `stopped`).
  it('a stop right after an unexpected exit leaves the service stopped', async () => {
    const { seen } = await record();
    const service = await client.services.add({
      name: 'racy', command: 'sh', args: ['-c', 'sleep 60 & echo ready; wait'],
      readiness: { type: 'log', pattern: '^ready$' }, restart: { policy: 'never' }, stopTimeoutMs: 1_000,
    });
    // The top process dies; its child keeps stdout open, so the supervisor waits 100 ms for the
    // pipe before handling the exit. The test sees the exit noticed (pid null) and stops at once:
    // a get() takes about a millisecond, so the stop lands inside those 100 ms.
    process.kill(service.pid as number, 'SIGKILL');
    const noticed = await eventually(async () => {
      const s = await client.services.get('racy');
      return s.pid === null || s.state !== 'running' ? s : null;
    }, 'the exit to be noticed');
    const stopped = await client.services.stop('racy');
    expect(stopped.state).toBe('stopped');
    await new Promise((resolve) => setTimeout(resolve, 400)); // the rest of the exit handling
    const after = await client.services.get('racy');
    expect(after.desired).toBe('stopped');
    // Whatever the exit handling said before the stop, nothing may follow the stop's own events.
    const mine = statesOf(seen, 'racy');
    expect(mine.slice(mine.indexOf('stopping')), `noticed as ${noticed.state} with pid ${noticed.pid}`).toEqual(['stopping', 'stopped']);
    expect(after.state).toBe('stopped');
  });
});

describe('state events', () => {
  it('arrive numbered with no gaps, each naming the state before it, and replay from a seq', async () => {
    const { seen, sub } = await record();
    const last = new Map<string, ServiceState | 'removed'>(sub.services.map((s) => [s.name, s.state]));
    const sleeper = (name: string): ServiceDefinition => ({
      name, command: 'sleep', args: ['60'], readiness: { type: 'none' }, restart: { policy: 'never' }, stopTimeoutMs: 1_000,
    });
    await client.services.add(sleeper('alpha'));
    const beta = await client.services.add(sleeper('beta'));
    await client.services.stop('alpha');
    await client.services.start('alpha');
    await client.services.restart('beta', { wait: false });
    await eventually(async () => {
      const s = await client.services.get('beta');
      return s.state === 'running' && s.pid !== beta.pid;
    }, 'beta to run again');
    await client.services.remove('alpha');
    await client.services.stop('beta');
    await eventually(() => seen.at(-1)?.event.service === 'beta' && seen.at(-1)?.event.state === 'stopped', 'the last event');

    seen.forEach((s, i) => expect(s.seq, `event ${i}`).toBe(sub.seq + i + 1));
    for (let i = 1; i < seen.length; i++) expect((seen[i] as Seen).time).toBeGreaterThanOrEqual((seen[i - 1] as Seen).time);
    for (const { seq, event } of seen) {
      expect(event.previous, `event ${seq}: ${event.service} -> ${event.state}`).toBe(last.get(event.service) ?? null);
      if (event.state === 'removed') last.delete(event.service);
      else last.set(event.service, event.state);
    }
    expect(statesOf(seen, 'alpha')).toEqual([
      'stopped', 'starting', 'running', 'stopping', 'stopped', 'starting', 'running', 'stopping', 'stopped', 'removed',
    ]);
    expect(statesOf(seen, 'beta')).toEqual(['stopped', 'starting', 'running', 'stopping', 'stopped', 'starting', 'running', 'stopping', 'stopped']);

    // A second subscriber that saw up to sub.seq gets exactly the same events replayed.
    const later = await client.services.subscribe(() => undefined, { since: sub.seq });
    subscriptions.push(later);
    expect(later.seq).toBe((seen.at(-1) as Seen).seq);
    expect(later.replay?.map((r) => ({ seq: r.seq, time: r.time, event: r.data }))).toEqual(seen);
    expect(later.services.map((s) => [s.name, s.state])).toEqual([['beta', 'stopped']]);
    const partial = await client.services.subscribe(() => undefined, { since: (seen[4] as Seen).seq });
    subscriptions.push(partial);
    expect(partial.replay?.map((r) => r.seq)).toEqual(seen.slice(5).map((s) => s.seq));
    const current = await client.services.subscribe(() => undefined, { since: later.seq });
    subscriptions.push(current);
    expect(current.replay).toEqual([]);
  });
});

describe('refused definitions and unknown names', () => {
  it('names every problem of a bad definition at once, and the supervisor keeps working', async () => {
    const bad = {
      name: 'bad name!', command: '', ports: { x: 70000 }, readiness: { type: 'tcp', port: 'nope' },
      restart: { policy: 'sometimes' }, stopSignal: 'SIGFOO', colour: 'red',
    } as unknown as ServiceDefinition;
    const error = await rejection(client.services.add(bad));
    expect(error.code).toBe(ErrorCode.InvalidArgument);
    expect(error.message).toContain('has 7 problem(s)');
    const problems = (error.data as { problems: string[] }).problems;
    expect(problems).toHaveLength(7);
    for (const [field, says] of [
      ['colour', 'unknown field'],
      ['name', '"bad name!"'],
      ['command', 'must be a non-empty string'],
      ['ports.x', '70000'],
      ['readiness.port', '"nope"'],
      ['restart.policy', '"sometimes"'],
      ['stopSignal', '"SIGFOO"'],
    ] as const) {
      expect(problems.filter((p) => p.startsWith(`${field}:`) && p.includes(says)), `${field} ${says} in ${JSON.stringify(problems)}`).toHaveLength(1);
    }
    expect(await client.services.list()).toEqual([]);
    expect(await client.ping()).toBeGreaterThan(0);
    const fine = await client.services.add({ name: 'fine', command: 'sleep', args: ['60'], readiness: { type: 'none' } });
    expect(fine.state).toBe('running');
  });

  it('refuses unknown service names, listing the known ones', async () => {
    for (const name of ['known-b', 'known-a']) await client.services.add({ name, command: 'sleep', args: ['60'] }, { start: false });
    for (const call of [
      () => client.services.get('nope'), () => client.services.stop('nope'), () => client.services.start('nope'),
      () => client.services.logs('nope'), () => client.services.remove('nope'), () => client.services.waitReady('nope'),
    ]) {
      const error = await rejection(call());
      expect(error.code).toBe(ErrorCode.UnknownService);
      expect(error.message).toContain('no service named `nope` (known: known-a, known-b)');
      expect((error.data as { known: string[] }).known).toEqual(['known-a', 'known-b']);
    }
    expect((await client.services.list()).map((s) => [s.name, s.state])).toEqual([['known-a', 'stopped'], ['known-b', 'stopped']]);
  });

  it('refuses a duplicate name unless asked to replace, and a replace stops the old process', async () => {
    const first = await client.services.add({ name: 'dup', command: 'sleep', args: ['60'], readiness: { type: 'none' } });
    const error = await rejection(client.services.add({ name: 'dup', command: 'sleep', args: ['61'] }));
    expect(error.code).toBe(ErrorCode.ServiceExists);
    expect(error.message).toContain('a service named `dup` exists (running)');
    const unchanged = await client.services.get('dup');
    expect(unchanged.pid).toBe(first.pid);
    expect(unchanged.definition.args).toEqual(['60']);

    const replaced = await client.services.add({ name: 'dup', command: 'sleep', args: ['61'], readiness: { type: 'none' } }, { replace: true });
    expect(replaced.state).toBe('running');
    expect(replaced.definition.args).toEqual(['61']);
    expect(replaced.pid).not.toBe(first.pid);
    expect(alive(first.pid as number)).toBe(false);
    expect((await client.services.list()).map((s) => s.name)).toEqual(['dup']);
  });

  it('fails a service whose command does not exist, naming the command', async () => {
    for (const command of ['muxvisor-no-such-program', '/nonexistent/muxvisor/bin/program']) {
      const error = await rejection(client.services.add({ name: 'ghost', command, restart: { policy: 'never' } }, { replace: true }));
      expect(error.code).toBe(ErrorCode.ServiceFailed);
      expect(error.message).toContain(`\`${command}\` was not found`);
      const status = await client.services.get('ghost');
      expect(status).toMatchObject({ state: 'failed', pid: null });
      expect(status.health.detail).toContain(`\`${command}\` was not found`);
    }
  });
});

describe('log-line readiness and logs', () => {
  it('is ready when a line matches, and logs() returns the lines in order', async () => {
    const gate = join(scratch, 'gate');
    await client.services.add({
      name: 'talker', command: NODE, args: [fixture('lifecycle-log-ready.mjs'), gate],
      readiness: { type: 'log', pattern: 'listening on \\d+', stream: 'stdout', timeoutMs: 20_000 }, restart: { policy: 'never' },
    }, { wait: false });
    await eventually(async () => (await client.services.logs('talker')).lines.some((l) => l.line === 'waiting for the gate'), 'the service to wait at the gate');
    const waiting = await client.services.get('talker');
    expect(waiting.state).toBe('starting');
    expect(waiting.health.ready).toBe(false);

    writeFileSync(gate, '');
    const ready = await client.services.waitReady('talker', { timeoutMs: 15_000 });
    expect(ready.state).toBe('running');
    expect(ready.health.ready).toBe(true);
    expect(ready.health.detail).toContain('stdout line matched /listening on \\d+/');
    expect(ready.health.detail).toContain('listening on 4321');

    const stdout = ['booting', 'waiting for the gate', 'listening on 4321', 'request 1', 'request 2', 'request 3'];
    const { lines, files } = await eventually(async () => {
      const l = await client.services.logs('talker');
      return l.lines.length === 7 ? l : null;
    }, 'all 7 lines');
    expect(lines.filter((l) => l.stream === 'stdout').map((l) => l.line)).toEqual(stdout);
    expect(lines.filter((l) => l.stream === 'stderr').map((l) => l.line)).toEqual(['a warning on stderr']);
    for (let i = 1; i < lines.length; i++) expect((lines[i] as { time: number }).time).toBeGreaterThanOrEqual((lines[i - 1] as { time: number }).time);
    expect((await client.services.logs('talker', { lines: 2 })).lines.map((l) => l.line)).toEqual(['request 2', 'request 3']);

    // The files hold the same bytes, after the supervisor's separator line for this start.
    const file = readFileSync(files.stdout, 'utf8').split('\n');
    expect(file[0]).toMatch(/^==== muxvisor: start 1 of `talker` at .*, pid \d+: /);
    expect(file.slice(1)).toEqual([...stdout, '']);
    expect(readFileSync(files.stderr, 'utf8')).toMatch(/^==== muxvisor: start 1 of `talker`.*\na warning on stderr\n$/);
  });
});
