/**
 * The supervisor under a low limit of open files: started the way users start it (`muxvisor
 * start`) under `prlimit --nofile=96:96` (the detached daemon inherits the limit; both soft and
 * hard are set because Node raises the soft limit to the hard one at startup). Clients connect
 * from this process, whose own limit is the machine's.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect, ErrorCode } from '../../lib/index.js';
import { connectionBudget, openFileLimit } from '../../supervisor/fd-budget.js';
import { CLI_MAIN } from '../helpers/cli.js';
import { rejection } from '../helpers/errors.js';
import { alive, tempHome } from '../helpers/home.js';

const LIMIT = 96;

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

  it('keeps a quarter of the limit (32 to 1024) for runs and workers, and always takes one client', () => {
    expect(connectionBudget(128, 22)).toEqual({ fileLimit: 128, baseline: 22, reserve: 32, maxConnections: 74 });
    expect(connectionBudget(1024, 22)).toMatchObject({ reserve: 256, maxConnections: 746 });
    expect(connectionBudget(1_048_576, 30)).toMatchObject({ reserve: 1024, maxConnections: 1_047_522 });
    expect(connectionBudget(40, 30)).toMatchObject({ maxConnections: 1 });
    expect(connectionBudget(null, 30)).toEqual({ fileLimit: null, baseline: 30, reserve: 0, maxConnections: null });
  });
});

describe.skipIf(missing !== null)(`a supervisor started under prlimit --nofile=${LIMIT}:${LIMIT}${missing ? ` (${missing})` : ''}`, () => {
  const home = tempHome();
  const clients: Client[] = [];
  let first: Client;
  let max: number;
  beforeAll(async () => {
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
      expect(error.message).toBe(`too many connections: ${max} open, the supervisor takes ${max} (its limit of open files is ${LIMIT}, 32 of them kept for runs and workers); close some clients, or restart the supervisor with a higher \`ulimit -n\``);
      expect(error.data).toEqual({ connections: max, maxConnections: max, fileLimit: LIMIT, reserve: 32 });
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

  it('takes new clients again as soon as some close', async () => {
    await clients.pop()!.close();
    const again = await connect({ home: home.home, name: 'after-close', start: false });
    clients.push(again);
    expect(await again.ping()).toBeGreaterThan(0);
    expect(alive(first.server.pid)).toBe(true);
  });
});
