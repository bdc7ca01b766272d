/**
 * `muxvisor monitor` in a real terminal: tmux runs the built CLI (dist/, so build first; `npm
 * test` does) against a real supervisor and real services, sends it keys, and reads the screen
 * back. One private tmux server for this file (`-L`), killed at the end, and a session per test.
 * The pure parts (layout, clipping, keys) are checked directly first.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { commandFor } from '../../lib/cli/monitor/keys.js';
import { planRows, renderFrame, type View } from '../../lib/cli/monitor/render.js';
import type { Snapshot } from '../../lib/cli/monitor/snapshot.js';
import { fit, visibleWidth } from '../../lib/cli/monitor/text.js';
import { colors } from '../../lib/cli/format.js';
import { type Client, connect } from '../../lib/client.js';
import type { ServiceStatus } from '../../lib/services.js';
import * as templates from '../../lib/templates.js';
import { VERSION } from '../../protocol/version.js';
import { eventually, type TempHome, tempHome } from '../helpers/home.js';

const MAIN = resolve(import.meta.dirname, '..', '..', 'dist', 'lib', 'cli', 'main.js');
const hasTmux = spawnSync('tmux', ['-V']).status === 0;

describe('monitor layout (pure)', () => {
  const c = colors(false);
  const colored = colors(true);
  const service = (i: number): ServiceStatus => ({
    name: `svc-${String(i).padStart(2, '0')}`, state: i % 3 === 0 ? 'failed' : 'running', desired: 'running', pid: 1000 + i, ports: { http: 8000 + i },
    url: `http://127.0.0.1:${8000 + i}/`, health: { ready: true, probe: 'http', detail: null, at: 0 }, restarts: 0, startedAt: 0, readyAt: 0,
    lastExit: null, usage: null, reason: `a very long reason\nwith a newline and more words ${'x'.repeat(200)}`, missingEnv: [], logs: { stdout: '', stderr: '' },
  } as unknown as ServiceStatus);
  const snapshot: Snapshot = {
    at: Date.now(),
    status: { server: { version: VERSION, pid: 42 }, problems: ['p1', 'p2', 'p3', 'p4', 'p5'], uptimeMs: 5000, state: 'running', rates: {}, runs: { open: 0 }, services: { count: 30, byState: {} }, process: {} },
    services: Array.from({ length: 30 }, (_, i) => service(i)),
    runs: Array.from({ length: 5 }, (_, i) => ({ run: `run-${i}`, state: 'open', records: i, bytes: i, owners: [], openedAt: 0 })),
    connections: Array.from({ length: 5 }, (_, i) => ({ conn: i, pid: i, name: `c${i}`, runs: 0, pending: 0, ageMs: 0 })),
  };

  it('fits the terminal: no line wider than columns - 1, no more lines than rows, tables capped with "… N more"', () => {
    const view: View = { snapshot, selected: 'svc-25', feedback: { text: 'web stopped', tone: 'ok' }, lastEvent: null, refreshError: null };
    for (const size of [{ columns: 60, rows: 16 }, { columns: 160, rows: 48 }, { columns: 30, rows: 8 }]) {
      for (const line of renderFrame(view, size, colored)) expect(visibleWidth(line), line).toBeLessThan(size.columns);
      const lines = renderFrame(view, size, c);
      expect(lines.length, `${size.columns}x${size.rows}`).toBeLessThanOrEqual(size.rows);
      for (const line of lines) expect(line.length, line).toBeLessThan(size.columns);
      for (const line of lines) expect(line, 'a row stays one line').not.toMatch(/[\n\r\t]/);
      if (size.rows < 16) continue; // too small for more than the header and problems
      const plain = lines.join('\n');
      expect(plain).toMatch(/\n… \d+ more( \(\d+ above\))?\n/);
      expect(plain).toContain('svc-25'); // the selected row stays in view
      expect(plain).toContain('problems:');
    }
    const big = renderFrame(view, { columns: 160, rows: 48 }, c);
    expect(big.at(-1)).toContain('q quit');
    expect(big.at(-2)).toContain('web stopped');
    expect(big.join('\n')).toContain('… 2 more (muxvisor status)'); // five problems, three shown
  });

  it('plans rows: every section shows some before any shows all, and the first never collapses', () => {
    expect(planRows([2, 0, 1], 100)).toEqual({ shown: [2, 0, 1], collapsed: [false, false, false], gap: true });
    expect(planRows([30, 5, 5], 20)).toEqual({ shown: [4, 3, 2], collapsed: [false, false, false], gap: true }); // 7 + 6 + 5 lines and 2 blank
    expect(planRows([30, 5, 5], 6)).toEqual({ shown: [1, 0, 0], collapsed: [false, true, true], gap: false });
  });

  it('cuts colored text without breaking an escape sequence, and resets the colour it cut', () => {
    const red = '\u001b[31mhello world\u001b[39m';
    expect(fit(red, 20)).toBe(red);
    expect(fit(red, 5)).toBe('\u001b[31mhell…\u001b[0m');
    expect(visibleWidth(fit(red, 5))).toBe(5);
    expect(fit('plain text', 6)).toBe('plain…');
  });

  it('maps ctrl+s, ctrl+k, ctrl+c and a lone Esc, as readline reports them, to start, stop and quit', () => {
    expect(commandFor({ name: 's', ctrl: true, sequence: '\u0013' })).toEqual({ kind: 'service', verb: 'start' });
    expect(commandFor({ name: 'k', ctrl: true, sequence: '\u000b' })).toEqual({ kind: 'service', verb: 'stop' });
    expect(commandFor({ name: 'c', ctrl: true, sequence: '\u0003' })).toEqual({ kind: 'quit' });
    expect(commandFor({ name: 'k', sequence: 'k' })).toEqual({ kind: 'move', by: -1 });
    expect(commandFor({ name: 'escape', meta: true, sequence: '\u001b' })).toEqual({ kind: 'quit' }); // as readline reports a lone Esc
    expect(commandFor({ name: 'q', meta: true, sequence: '\u001bq' })).toBeNull(); // alt+q is not q
    expect(commandFor({ name: 'x', sequence: 'x' })).toBeNull();
  });
});

describe.skipIf(!hasTmux)('muxvisor monitor in a terminal (tmux; skipped when `tmux -V` fails)', () => {
  const server = `muxvisor-monitor-${process.pid}`;
  let home: TempHome;
  let client: Client;
  let sessions = 0;
  let session = '';

  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', server, '-f', '/dev/null', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const screen = () => tmux('capture-pane', '-p', '-t', session);
  const flag = (name: string) => tmux('display', '-p', '-t', session, `#{${name}}`).trim();
  /** Starts the monitor for `dir` in a new 160x48 session; the shell prints its exit code after it. */
  const launch = (dir: string) => {
    session = `s${++sessions}`;
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '48',
      `node '${MAIN}' --home '${dir}' monitor --interval 200; echo EXITED:$?; sleep 30`);
  };
  /** Resolves with the screen once it shows `what`; a timeout's error carries the last screen. */
  const shows = async (what: string | RegExp, ms = 10_000): Promise<string> => {
    const has = (text: string) => (typeof what === 'string' ? text.includes(what) : what.test(text));
    try {
      return await eventually(() => { const text = screen(); return has(text) ? text : null; }, `the pane to show ${what}`, ms);
    } catch (error) {
      let last = '(no pane)';
      try { last = screen(); } catch { /* the session is gone */ }
      throw new Error(`${(error as Error).message}; it shows:\n${last}`);
    }
  };
  /** The line of the selected service (the one marked `›`). */
  const selectedLine = () => screen().split('\n').find((l) => l.startsWith('›')) ?? '';

  beforeAll(async () => {
    expect(existsSync(MAIN), `${MAIN} is missing: run \`npm run build\` first`).toBe(true);
    // One server for the whole file: without exit-empty it would exit with its last session, and
    // the next test's new-session would race with it going ("server exited unexpectedly").
    tmux('start-server', ';', 'set-option', '-g', 'exit-empty', 'off');
    home = tempHome();
    client = await connect({ home: home.home, name: 'monitor-test', handleExit: false, exportEnv: false, supervisor: { idleTimeoutMs: 0 } });
    await client.services.add({ name: 'api', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], restart: { policy: 'never' } });
    await client.services.add(templates.httpServer({ name: 'web', dir: home.home }));
  });
  afterEach(() => {
    try {
      tmux('kill-session', '-t', session);
    } catch {
      // the session ended already
    }
  });
  afterAll(async () => {
    try {
      tmux('kill-server');
    } catch {
      // it never started
    }
    await client?.close();
    await home?.cleanup();
  });

  it('shows the services, the supervisor\'s facts and the connections, on the alternate screen without a cursor', async () => {
    launch(home.home);
    const text = await shows(/web\s+running/);
    expect(text).toMatch(/api\s+running/);
    expect(text).toContain(`muxvisor ${VERSION}`);
    expect(text).toContain(`pid ${home.supervisorPid()}`);
    expect(text).toMatch(/services 2 \(2 running\)/);
    expect(text).toContain('Services (2)');
    expect(text).toMatch(/Connections \(2\)[\s\S]*monitor-test/);
    expect(text).toContain('http://127.0.0.1:');
    expect(flag('alternate_on')).toBe('1');
    expect(flag('cursor_flag')).toBe('0');
  });

  it('moves the selection with j, stops the selected service with ctrl+k and starts it with ctrl+s', async () => {
    launch(home.home);
    await eventually(() => selectedLine().includes('api'), 'api selected first');
    tmux('send-keys', '-t', session, 'j');
    await eventually(() => selectedLine().includes('web'), 'web selected after j');
    tmux('send-keys', '-t', session, 'C-k');
    await eventually(async () => (await client.services.get('web')).state === 'stopped', 'web stopped');
    expect((await client.services.get('api')).state).toBe('running');
    await shows('web stopped');
    tmux('send-keys', '-t', session, 'C-s');
    await eventually(async () => (await client.services.get('web')).state === 'running', 'web running again');
    await shows('web started');
    expect(selectedLine()).toMatch(/web\s+running/);
  });

  for (const [key, name] of [['q', 'q'], ['C-c', 'ctrl+c'], ['Escape', 'Esc']] as const) {
    it(`quits on ${name} with exit code 0 and gives the terminal back (main screen, cursor shown)`, async () => {
      launch(home.home);
      await shows('Services (2)');
      expect(flag('alternate_on')).toBe('1');
      tmux('send-keys', '-t', session, key);
      const text = await shows('EXITED:0');
      expect(text).not.toContain('Services (2)'); // the main screen is back, the frame went with the alternate one
      expect(flag('alternate_on')).toBe('0');
      expect(flag('cursor_flag')).toBe('1');
    });
  }

  for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
    it(`stops cleanly on ${signal}: exit code 0, the terminal given back`, async () => {
      launch(home.home);
      await shows('Services (2)');
      // The monitor's pid, as the supervisor sees it: the newest CLI connection (an earlier
      // test's monitor may not be forgotten yet).
      const clis = (await client.connections()).filter((x) => x.name === 'muxvisor-cli').sort((a, b) => Number(a.ageMs) - Number(b.ageMs));
      expect(clis.length).toBeGreaterThan(0);
      process.kill(clis[0]?.pid as number, signal);
      await shows('EXITED:0');
      expect(flag('alternate_on')).toBe('0');
      expect(flag('cursor_flag')).toBe('1');
    });
  }

  it('quits at once while a start it asked for still waits for readiness', async () => {
    await client.services.add({ name: 'slow', command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], readiness: { type: 'log', pattern: 'never printed', timeoutMs: 60_000 } }, { start: false });
    try {
      launch(home.home);
      await eventually(() => selectedLine().includes('api'), 'api selected first');
      tmux('send-keys', '-t', session, 'j'); // api, slow, web
      await eventually(() => selectedLine().includes('slow'), 'slow selected after j');
      tmux('send-keys', '-t', session, 'C-s');
      await shows('starting slow…');
      await eventually(async () => (await client.services.get('slow')).state === 'starting', 'slow starting');
      tmux('send-keys', '-t', session, 'q');
      await shows('EXITED:0', 5_000); // not after the 60 s the readiness wait could take
    } finally {
      await client.services.remove('slow');
    }
  });

  it('stops with exit code 3 and one line on stderr when the supervisor dies, and gives the terminal back', async () => {
    const other = tempHome();
    const watcher = await connect({ home: other.home, name: 'monitor-test', handleExit: false, exportEnv: false, supervisor: { idleTimeoutMs: 0 } });
    try {
      launch(other.home);
      await shows('Services  none');
      expect(flag('alternate_on')).toBe('1');
      process.kill(other.supervisorPid() as number, 'SIGKILL');
      const text = await shows('EXITED:3');
      expect(text).toMatch(/muxvisor: the supervisor went away \(.+\); the monitor stopped/);
      expect(flag('alternate_on')).toBe('0');
      expect(flag('cursor_flag')).toBe('1');
    } finally {
      watcher.destroy();
      await other.cleanup();
    }
  });
});
