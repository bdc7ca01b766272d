/**
 * The supervisor under a low limit of open files: started the way users start it (`muxvisor
 * start`) under `prlimit --nofile=128:128` (the detached daemon inherits the limit; both soft and
 * hard are set because Node raises the soft limit to the hard one at startup). Clients connect
 * from this process, whose own limit is the machine's.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, ErrorCode, type MuxvisorError, type Run } from '../../lib/index.js';
import { connectionBudget, openFileLimit } from '../../supervisor/fd-budget.js';
import { CLI_MAIN } from '../helpers/cli.js';
import { rejection } from '../helpers/errors.js';
import { alive, eventually, type TempHome, tempHome } from '../helpers/home.js';

const LIMIT = 128;

function prlimitMissing(): string | null {
  if (process.platform !== 'linux') return `prlimit and /proc/self/limits are Linux's (this is ${process.platform})`;
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'prlimit (util-linux) is not installed';
  }
}
const missing = prlimitMissing();

describe('the cap on connections, from the limit of open files', () => {
  it('reads the soft limit from /proc/self/limits, and none when it is unlimited or absent', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n';
    expect(openFileLimit(text)).toBe(1024);
    expect(openFileLimit(text.replace('1024 ', 'unlimited '))).toBeNull();
    expect(openFileLimit('')).toBeNull();
    expect(openFileLimit(null)).toBeNull();
  });

  it('keeps a quarter of the limit (64 to 1024) for runs and workers, and always takes one client', () => {
    expect(connectionBudget(128, 22)).toEqual({ fileLimit: 128, baseline: 22, reserve: 64, maxConnections: 42 });
    expect(connectionBudget(1024, 22)).toMatchObject({ reserve: 256, maxConnections: 746 });
    expect(connectionBudget(1_048_576, 30)).toMatchObject({ reserve: 1024, maxConnections: 1_047_522 });
    expect(connectionBudget(80, 30)).toMatchObject({ maxConnections: 1 });
    expect(connectionBudget(null, 30)).toEqual({ fileLimit: null, baseline: 30, reserve: 0, maxConnections: null });
  });
});

describe.skipIf(missing !== null)(`a supervisor started under prlimit --nofile=${LIMIT}:${LIMIT}${missing ? ` (${missing})` : ''}`, () => {
  // Made in beforeAll: the body of a skipped describe still runs, its hooks do not.
  let home: TempHome;
  const clients: Client[] = [];
  let first: Client;
  let max: number;
  beforeAll(async () => {
    home = tempHome();
    execFileSync('prlimit', [`--nofile=${LIMIT}:${LIMIT}`, process.execPath, CLI_MAIN, 'start', '--home', home.home, '--idle-timeout-ms', '0'], { stdio: 'ignore' });
    first = await connect({ home: home.home, name: 'fd-first', start: false });
    clients.push(first);
    const limit = (await first.status()).connectionLimit as { fileLimit: number; maxConnections: number };
    expect(limit.fileLimit).toBe(LIMIT);
    max = limit.maxConnections;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await home.cleanup();
  });

  it('refuses a client beyond the cap with MUXVISOR_OVERLOADED before WELCOME, and logs the refusals sparingly', async () => {
    while (clients.length < max) clients.push(await connect({ home: home.home, name: `fd-${clients.length}`, start: false }));
    for (let i = 0; i < 20; i++) {
      const error = await rejection(connect({ home: home.home, name: 'one-too-many', start: false }));
      expect(error.code).toBe(ErrorCode.Overloaded);
      expect(error.message).toBe(`too many connections: ${max} open, the supervisor takes ${max} (its limit of open files is ${LIMIT}, 64 of them kept for runs and workers); close some clients, or restart the supervisor with a higher \`ulimit -n\``);
      expect(error.data).toEqual({ connections: max, maxConnections: max, fileLimit: LIMIT, reserve: 64 });
    }
    // A client that may start a supervisor gets the same answer, and does not start one.
    const started = Date.now();
    expect((await rejection(connect({ home: home.home, name: 'would-start', timeoutMs: 5_000 }))).code).toBe(ErrorCode.Overloaded);
    expect(Date.now() - started).toBeLessThan(4_000);
    const status = await first.status();
    expect(status.connectionLimit).toMatchObject({ refused: 21, acceptErrors: 0 });
    expect((status.problems as string[]).some((p) => p.startsWith('21 connection(s) refused since start'))).toBe(true);
    const lines = readFileSync(home.layout.supervisorLog, 'utf8').split('\n').filter((l) => l.includes('refused connections over the cap'));
    expect(lines.length).toBe(1);
  });

  it('keeps serving the clients it has at the cap: ping, runs opened, published, synced and finished', async () => {
    expect(clients.length).toBe(max);
    expect(await first.ping()).toBeGreaterThan(0);
    const runs = await Promise.all([0, 1, 2, 3].map((k) => clients[k + 1]!.openRun(`at-cap-${k}`)));
    for (const run of runs) for (let i = 0; i < 100; i++) run.publish({ i });
    for (const run of runs) expect((await run.sync()).records).toBe(100);
    for (const run of runs) expect((await run.finish()).records).toBe(100);
  });

  it('takes new clients again as soon as it has seen some close', async () => {
    await clients.pop()!.close();
    // The client's close resolves when its socket is closed; the supervisor frees the place when it
    // sees that (soon after, not necessarily before this line).
    const again = await eventually(() => connect({ home: home.home, name: 'after-close', start: false }).catch(() => null), 'a place to come free', 2_000);
    clients.push(again);
    expect(await again.ping()).toBeGreaterThan(0);
    expect(alive(first.server.pid)).toBe(true);
  });

  it('fails runs typed when descriptors run out, and retries a worker thread that cannot start with backoff, not in a loop', async () => {
    const runs: Run[] = [];
    let refused: MuxvisorError | null = null;
    while (refused === null && runs.length < 200) {
      await first.openRun(`no-fd-${runs.length}`).then((r) => runs.push(r), (e: MuxvisorError) => (refused = e));
    }
    expect(refused).toMatchObject({ code: ErrorCode.Storage });
    expect((refused as unknown as MuxvisorError).message).toContain('EMFILE (too many open files');
    const failedBefore = countLines(home.layout.supervisorLog, 'worker failed; restarting its runs');
    // A run on a thread of its own: the thread cannot even load its modules.
    const error = await rejection(first.openRun('no-fd-dedicated', { dedicated: true }));
    expect(error.code).toBe(ErrorCode.WorkerFailed);
    expect(error.message).toContain('EMFILE');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // Without backoff, the replacement of a thread that cannot start failed hundreds of times a second.
    expect(countLines(home.layout.supervisorLog, 'worker failed; restarting its runs') - failedBefore).toBeLessThanOrEqual(8);
    expect(await first.ping()).toBeGreaterThan(0);
    await Promise.all(runs.map((r) => r.finish()));
    // Descriptors are free again: the run's end is written by the next thread that starts.
    const meta = await eventually(() => {
      const m = JSON.parse(readFileSync(join(home.home, 'runs', 'no-fd-dedicated', 'meta.json'), 'utf8')) as { state: string; status: string };
      return m.state === 'finished' ? m : null;
    }, 'the dedicated run to be finished', 10_000);
    expect(meta.status).toBe('failed');
  });
});

function countLines(path: string, msg: string): number {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).length;
}
