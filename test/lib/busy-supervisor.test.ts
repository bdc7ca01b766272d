/**
 * connect() to a supervisor that is there but cannot take the connection yet: its queue of
 * connections not yet accepted is full, and the kernel refuses more with EAGAIN. The full chaos
 * run saw it: 1,000 clients connecting at once while the machine stalled, 100 of them failed with
 * MUXVISOR_UNAVAILABLE. A client must wait for a busy supervisor (until its deadline), not fail,
 * and not start another one.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect } from '../../lib/index.js';
import { tempHome } from '../helpers/home.js';

const home = tempHome('muxvisor-busy-');
let keeper: Client;
const sockets: Socket[] = [];
let stopped: number | null = null;

beforeAll(async () => {
  keeper = await connect({ home: home.home, name: 'busy-keeper', supervisor: { idleTimeoutMs: 0 }, handleExit: false, exportEnv: false });
});

afterEach(() => {
  if (stopped !== null) process.kill(stopped, 'SIGCONT');
  stopped = null;
  for (const s of sockets.splice(0)) s.destroy();
});

afterAll(async () => {
  await keeper?.close();
  await home.cleanup();
});

/** Connects a raw socket: true when it connected, false when the kernel refused it with EAGAIN. */
function rawConnect(path: string): Promise<boolean> {
  const socket = netConnect(path);
  sockets.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(true));
    socket.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EAGAIN' ? resolve(false) : reject(error)));
  });
}

describe('connect() to a busy supervisor', () => {
  it('waits while the queue of connections is full, then connects to the same supervisor', async () => {
    const pid = keeper.server.pid;
    // Stopped, the supervisor accepts nothing; the kernel queues connections until its backlog is full.
    process.kill(pid, 'SIGSTOP');
    stopped = pid;
    let queued = 0;
    while (await rawConnect(home.layout.socketPath)) {
      queued++;
      if (queued > 10_000) throw new Error('the accept queue never filled');
    }
    expect(queued, 'connections queued before EAGAIN').toBeGreaterThan(0);

    const connecting = connect({ home: home.home, name: 'busy-waiter', start: false, timeoutMs: 10_000, handleExit: false, exportEnv: false });
    let settled = false;
    void connecting.then(() => (settled = true), () => (settled = true));
    await new Promise((r) => setTimeout(r, 400));
    expect(settled, 'connect() still waits while the queue is full').toBe(false);

    process.kill(pid, 'SIGCONT');
    stopped = null;
    const client = await connecting;
    try {
      expect(client.server.pid, 'the same supervisor, not a new one').toBe(pid);
      await client.ping({ timeoutMs: 5_000 });
    } finally {
      await client.close();
    }
  });
});
