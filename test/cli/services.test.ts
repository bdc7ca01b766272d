/**
 * `muxvisor services` and `service add|start|stop|restart|remove|describe|logs` against one
 * supervisor: a python3 http.server taken through its whole life, a node service that prints a
 * line every 100 ms for `logs --follow`, and the errors (unknown name, missing program, name
 * taken, bad flags). Every service a test adds is removed by the end of its describe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect } from '../../lib/client.js';
import { type CliErrorJson, followCli, runCli } from '../helpers/cli.js';
import { alive, eventually, tempHome } from '../helpers/home.js';

const NODE = process.execPath;
const home = tempHome('muxvisor-cli-services-');
let client: Client;
/** Services run in the home (python's http.server lists its working directory). */
const cli = (...args: string[]) => runCli(home.home, args, { cwd: home.home });

const WEB = ['-p', 'http=0', '--url', 'http://127.0.0.1:{port}/', '--ready', 'http:/', '--', 'python3', '-m', 'http.server', '{port}', '--bind', '127.0.0.1'];

beforeAll(async () => {
  client = await connect({ home: home.home, name: 'services-cli-test', handleExit: false, exportEnv: false, supervisor: { idleTimeoutMs: 0 } });
});

afterAll(async () => {
  client?.destroy();
  await home.cleanup();
});

/** GET `url`: its status, or the error's code when nothing answers. */
async function get(url: string): Promise<number | string> {
  try {
    const res = await fetch(url);
    await res.text();
    return res.status;
  } catch (error) {
    return String((error as { cause?: { code?: string } }).cause?.code ?? error);
  }
}

describe('a python web service, from add to remove', () => {
  let pid = 0;
  let url = '';

  it('`service add` starts it and waits until its URL answers', async () => {
    const r = await cli('service', 'add', 'web', '--json', ...WEB);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const s = r.json();
    expect(s).toMatchObject({ name: 'web', state: 'running', restarts: 0 });
    expect(s.ports.http).toBeGreaterThan(0);
    expect(s.url).toBe(`http://127.0.0.1:${s.ports.http}/`);
    ({ pid, url } = s);
    expect(alive(pid)).toBe(true);
    expect(home.serviceProcesses().has(pid)).toBe(true);
    expect(await get(url)).toBe(200);
  });

  it('`services` lists it: name, state, pid, uptime, restarts, port/url', async () => {
    const [json, text] = await Promise.all([cli('services', '--json'), cli('services')]);
    expect(json.code, json.stderr).toBe(0);
    const list = json.json() as Array<Record<string, any>>;
    expect(list.map((s) => s.name)).toEqual(['web']);
    expect(list[0]).toMatchObject({ name: 'web', state: 'running', pid, url, lastExit: null });
    const [head, row, ...rest] = text.stdout.trim().split('\n');
    expect(rest).toEqual([]);
    expect(head!.split(/\s+/)).toEqual(['name', 'state', 'pid', 'uptime', '↺', 'cpu', 'mem', 'port/url', 'last', 'exit', 'why']);
    expect(row).toMatch(new RegExp(`^web\\s+running\\s+${pid}\\s+\\S+\\s+0\\s+.*${url.replace(/[./]/g, '\\$&')}`));
  });

  it('`service describe` shows its state, pid, command and recent events', async () => {
    const [json, text] = await Promise.all([cli('service', 'describe', 'web', '--json'), cli('service', 'describe', 'web')]);
    expect(json.code, json.stderr).toBe(0);
    const d = json.json();
    expect(d).toMatchObject({ name: 'web', state: 'running', desired: 'running', pid, url });
    expect(d.definition).toMatchObject({ command: 'python3', args: ['-m', 'http.server', '{port}', '--bind', '127.0.0.1'], cwd: home.home });
    expect(d.definition.readiness).toMatchObject({ type: 'http', path: '/' });
    expect(d.events.map((e: { state: string }) => e.state)).toEqual(['stopped', 'starting', 'running']);
    expect(d.events.every((e: { service: string }) => e.service === 'web')).toBe(true);
    // The readiness probe's request is in python's log on stderr; -n 0 asks for no lines at all.
    expect(d.lastLines.some((l: { stream: string; line: string }) => l.stream === 'stderr' && l.line.includes('"GET / HTTP/1.1" 200'))).toBe(true);
    const none = await cli('service', 'describe', 'web', '-n', '0', '--json');
    expect(none.json().lastLines).toEqual([]);

    expect(text.code).toBe(0);
    expect(text.stdout).toContain('service web');
    expect(text.stdout).toMatch(/state\s+running \(wanted running\)/);
    expect(text.stdout).toMatch(new RegExp(`pid\\s+${pid}\\n`));
    expect(text.stdout).toMatch(/command\s+python3 -m http\.server \{port\} --bind 127\.0\.0\.1/);
    expect(text.stdout).toContain(`where       ${url}`);
    expect(text.stdout).toContain('recent events');
    expect(text.stdout).toContain('starting → running');
  });

  it('`service logs -n` shows the lines it wrote, stderr marked as such', async () => {
    const probe = `/?probe=${process.pid}-${Date.now()}`;
    expect(await get(`${url.slice(0, -1)}${probe}`)).toBe(200);
    // python logs the request on stderr once it has answered: wait until the supervisor has it.
    await eventually(async () => (await client.services.logs('web', { lines: 5 })).lines.some((l) => l.line.includes(probe)), 'the request to be logged');
    const [json, one, text] = await Promise.all([cli('service', 'logs', 'web', '-n', '5', '--json'), cli('service', 'logs', 'web', '-n', '1', '--json'), cli('service', 'logs', 'web', '-n', '5')]);
    expect(json.code, json.stderr).toBe(0);
    const lines = json.jsonLines<{ time: number; stream: string; line: string }>();
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(5);
    expect(lines.find((l) => l.line.includes(probe))).toMatchObject({ stream: 'stderr', line: expect.stringContaining(`"GET ${probe} HTTP/1.1" 200`) });
    expect(one.jsonLines()).toEqual([lines.at(-1)]);
    expect(text.stdout).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d err .*GET ${probe.replace(/[?]/g, '\\?')}`, 'm'));
  });

  it('`service stop` stops it: state stopped, the process gone, the URL silent', async () => {
    const r = await cli('service', 'stop', 'web', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ name: 'web', state: 'stopped', desired: 'stopped', pid: null });
    expect(alive(pid)).toBe(false);
    expect(home.serviceProcesses().size).toBe(0);
    expect(await get(url)).toBe('ECONNREFUSED');
  });

  it('`service start` runs it again with a new pid', async () => {
    const r = await cli('service', 'start', 'web');
    expect(r.code, r.stderr).toBe(0);
    const m = /^started web: running pid (\d+)\s+(http:\S+)$/.exec(r.stdout.trim());
    expect(m, r.stdout).not.toBeNull();
    const next = Number(m![1]);
    expect(next).not.toBe(pid);
    expect(alive(next)).toBe(true);
    pid = next;
    url = m![2]!;
    expect(await get(url)).toBe(200);
  });

  it('`service restart` gives a new pid; the old process is gone and the new one answers', async () => {
    const r = await cli('service', 'restart', 'web', '--json');
    expect(r.code, r.stderr).toBe(0);
    const s = r.json();
    expect(s).toMatchObject({ name: 'web', state: 'running' });
    expect(s.pid).not.toBe(pid);
    expect(alive(pid)).toBe(false);
    expect(alive(s.pid)).toBe(true);
    expect(await get(s.url)).toBe(200);
    pid = s.pid;
  });

  it('`service remove` stops it and forgets it', async () => {
    const r = await cli('service', 'remove', 'web', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toEqual({ removed: 'web' });
    expect(alive(pid)).toBe(false);
    expect(home.serviceProcesses().size).toBe(0);
    expect((await cli('services', '--json')).json()).toEqual([]);
    const text = await cli('services');
    expect(text.stdout).toContain('no services');
    const gone = await cli('service', 'describe', 'web');
    expect(gone.code).toBe(4);
    expect(gone.stderr).toContain('no service named `web`');
  });
});

describe('service logs --follow', () => {
  const TICKER = "let n = 0; setInterval(() => console.log('tick ' + n++), 100)";
  beforeAll(async () => {
    const r = await cli('service', 'add', 'ticker', '--', NODE, '-e', TICKER);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^added ticker: running pid \d+/);
  });
  afterAll(async () => {
    await client.services.remove('ticker').catch(() => undefined);
  });

  it('prints lines the service writes after following began, and ends with exit 0 on SIGINT', async () => {
    // -n 0: nothing from before, so every line printed was written while following.
    const f = followCli(home.home, ['service', 'logs', 'ticker', '-n', '0', '--follow', '--json']);
    try {
      await eventually(() => f.lines.length >= 3, 'three live lines', 15_000);
      const lines = f.lines.slice(0, 3).map((l) => JSON.parse(l) as { time: number; stream: string; line: string });
      const ticks = lines.map((l) => Number(/^tick (\d+)$/.exec(l.line)?.[1]));
      expect(lines.every((l) => l.stream === 'stdout' && typeof l.time === 'number')).toBe(true);
      expect(ticks).toEqual([ticks[0], ticks[0]! + 1, ticks[0]! + 2]);
      expect(await f.stop('SIGINT')).toEqual({ code: 0, signal: null });
    } finally {
      await f.stop('SIGKILL');
    }
  });

  it('prints the last -n lines first, then the lines written after it began, as text', async () => {
    // A web server that logs each request: what it writes, and when, is up to this test.
    const ECHO = "require('http').createServer((q, s) => { console.log('hit ' + q.url); s.end('ok'); }).listen(Number(process.argv[1]), '127.0.0.1')";
    const added = await cli('service', 'add', 'echo', '-p', 'http=0', '--url', 'http://127.0.0.1:{port}/', '--ready', 'http:/', '--json', '--', NODE, '-e', ECHO, '{port}');
    expect(added.code, added.stderr).toBe(0);
    const base = added.json().url as string;
    try {
      expect(await get(`${base}before`)).toBe(200);
      await eventually(async () => (await client.services.logs('echo', { lines: 1 })).lines[0]?.line === 'hit /before', 'the request to be logged');
      const f = followCli(home.home, ['service', 'logs', 'echo', '-n', '1', '--follow']);
      try {
        // The history comes with the subscription's answer: once it shows, new lines are followed.
        await f.waitFor((l) => l.endsWith('hit /before'));
        expect(await get(`${base}after`)).toBe(200);
        await f.waitFor((l) => l.endsWith('hit /after'));
        expect(f.lines).toHaveLength(2);
        f.lines.forEach((l, i) => expect(l).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d out hit /${['before', 'after'][i]}$`)));
        expect(await f.stop('SIGINT')).toEqual({ code: 0, signal: null });
      } finally {
        await f.stop('SIGKILL');
      }
    } finally {
      await client.services.remove('echo');
    }
  });

  it('ends by itself with exit 4 when the service is removed', async () => {
    const f = followCli(home.home, ['service', 'logs', 'ticker', '-n', '1', '--follow']);
    try {
      await f.waitFor((l) => l.includes('tick'));
      const removed = await cli('service', 'remove', 'ticker');
      expect(removed.code, removed.stderr).toBe(0);
      expect(await f.exited).toEqual({ code: 4, signal: null });
      expect(f.errLines.join('\n')).toContain('service ticker was removed');
    } finally {
      await f.stop('SIGKILL');
    }
  });
});

describe('errors', () => {
  beforeAll(async () => {
    const r = await cli('service', 'add', 'parked', '--no-start', '--json', '--', NODE, '-e', 'setInterval(() => {}, 1000)');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ name: 'parked', state: 'stopped', pid: null });
  });
  afterAll(async () => {
    for (const s of await client.services.list()) await client.services.remove(s.name);
  });

  it.each([['describe'], ['start'], ['stop'], ['restart'], ['remove'], ['logs']])('`service %s` of an unknown name exits 4 naming the known ones', async (verb) => {
    const [text, json] = await Promise.all([cli('service', verb, 'nope'), cli('service', verb, 'nope', '--json')]);
    expect(text.code, text.stderr).toBe(4);
    expect(text.stderr).toContain('no service named `nope` (known: parked)');
    const { error } = json.json<CliErrorJson>();
    expect(error).toMatchObject({ code: 'MUXVISOR_UNKNOWN_SERVICE', exitCode: 4, data: { service: 'nope', known: ['parked'] } });
  });

  it('`service add` of a program that does not exist exits 8 and leaves the service failed', async () => {
    const missing = '/nonexistent/muxvisor-no-such-program';
    const text = await cli('service', 'add', 'ghost', '--', missing, '--flag');
    expect(text.code, text.stderr).toBe(8);
    expect(text.stderr).toContain('service `ghost` is failed');
    expect(text.stderr).toContain(`\`${missing}\` was not found`);
    const json = await cli('service', 'add', 'ghost', '--replace', '--json', '--', missing);
    expect(json.code).toBe(8);
    expect(json.json<CliErrorJson>().error).toMatchObject({ code: 'MUXVISOR_SERVICE_FAILED', exitCode: 8 });
    const ghost = (await cli('service', 'describe', 'ghost', '--json')).json();
    expect(ghost).toMatchObject({ state: 'failed', pid: null });
    expect((await cli('service', 'remove', 'ghost')).code).toBe(0);
  });

  it('`service add` of a name taken exits 5 unless --replace', async () => {
    const add = (...extra: string[]) => cli('service', 'add', 'taken', ...extra, '--json', '--', NODE, '-e', 'setInterval(() => {}, 1000)');
    const first = await add();
    expect(first.code, first.stderr).toBe(0);
    const again = await add();
    expect(again.code).toBe(5);
    expect(again.json<CliErrorJson>().error).toMatchObject({ code: 'MUXVISOR_SERVICE_EXISTS', exitCode: 5 });
    expect(again.json<CliErrorJson>().error.message).toContain('a service named `taken` exists');
    expect(alive(first.json().pid)).toBe(true);
    const replaced = await add('--replace');
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(replaced.json().pid).not.toBe(first.json().pid);
    expect(alive(first.json().pid)).toBe(false);
  });

  it('bad flags exit 2', async () => {
    const cases: string[][] = [
      ['service', 'add', 'x'],
      ['service', 'add', 'x', '-p', 'http=abc', '--', NODE],
      ['service', 'add', 'x', '--ready', 'sometimes', '--', NODE],
      ['service', 'add', 'x', '--env', 'NOVALUE', '--', NODE],
      ['service', 'add', 'x', '--stop-timeout', 'soon', '--', NODE],
      ['service', 'add', 'x', '-f', '/nonexistent/definition.json'],
      ['service', 'add', 'x', '--restart', 'sometimes', '--', NODE],
      ['service', 'logs', 'parked', '-n', 'all'],
      ['service', 'describe', 'parked', '-n', 'all'],
      ['service', 'frobnicate', 'parked'],
    ];
    const results = await Promise.all(cases.map((args) => cli(...args)));
    results.forEach((r, i) => expect(r.code, `muxvisor ${cases[i]!.join(' ')}: ${r.stderr}`).toBe(2));
    expect(results[0]!.stderr).toContain('no command');
    expect((await client.services.list()).map((s) => s.name)).not.toContain('x');
  });
});
