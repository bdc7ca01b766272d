/**
 * The startup question's client programs. `node startup-client.js '<StartupSpec JSON>'` prints
 * one JSON line. Each task imports only what it uses, after noting the time: `bootMs` is Node's
 * own start-up plus that import, from the process's time origin to the timed call.
 * - `cold`: `connect()` into `home`, where no supervisor runs, so that it starts one; then asks it
 *   to shut down and reports its pid (the harness waits for that pid to go).
 * - `cold-raw`: spawns echo-server.js on `socket`, waits for its `ready`, connects, and makes one
 *   round trip (as the handshake is one); then stops it.
 * - `warm`: `n` times connect() to the running supervisor (connect + HELLO/WELCOME), each closed
 *   before the next; only the connect is timed.
 * - `warm-raw`: `n` times a plain connection to the raw server plus one PING round trip.
 */
import { printResult } from './spec.js';

export type StartupSpec =
  | { task: 'cold'; home: string }
  | { task: 'cold-raw'; socket: string }
  | { task: 'warm'; home: string; n: number }
  | { task: 'warm-raw'; socket: string; n: number };

export interface ColdResult {
  /** From the call to the connected client, ms. */
  ms: number;
  bootMs: number;
  /** The supervisor the call started (cold only): it has been asked to shut down. */
  pid?: number;
}

const spec = JSON.parse(process.argv[2] as string) as StartupSpec;
/** Connects of `warm` not counted, so the figures are of a warmed-up client. */
const WARMUP = 20;

switch (spec.task) {
  case 'cold': {
    const { connect } = await import('../../lib/index.js');
    const began = performance.now();
    const client = await connect({ home: spec.home, name: 'bench-cold', handleExit: false, exportEnv: false });
    const ms = performance.now() - began;
    if (!client.started) throw new Error(`a supervisor was already running in ${spec.home}: the start was not cold`);
    const { pid } = await client.shutdown();
    await client.close();
    printResult({ ms, bootMs: began, pid } satisfies ColdResult);
    break;
  }
  case 'cold-raw': {
    const { spawn } = await import('node:child_process');
    const { connect } = await import('node:net');
    const programsDir = new URL('./', import.meta.url).pathname;
    const began = performance.now();
    const server = spawn(process.execPath, [`${programsDir}echo-server.js`, spec.socket], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => server.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout.once('data', () => resolve());
        server.once('exit', (code, signal) => reject(new Error(`echo-server exited with ${signal ?? code} before it listened`)));
      });
      const socket = connect(spec.socket);
      const hello = Buffer.alloc(64, 1);
      await new Promise<void>((resolve, reject) => {
        let echoed = 0;
        socket.once('error', reject);
        socket.once('connect', () => socket.write(hello));
        socket.on('data', (chunk: Buffer) => {
          echoed += chunk.length;
          if (echoed >= hello.length) resolve();
        });
      });
      const ms = performance.now() - began;
      socket.destroy();
      printResult({ ms, bootMs: began } satisfies ColdResult);
    } finally {
      server.stdin.end();
      await exited;
    }
    break;
  }
  case 'warm': {
    const { connect } = await import('../../lib/index.js');
    printResult(await timedConnects(spec.n, async () => {
      const began = performance.now();
      const client = await connect({ home: spec.home, start: false, name: 'bench-warm', handleExit: false, exportEnv: false });
      const ms = performance.now() - began;
      await client.close();
      return ms;
    }));
    break;
  }
  case 'warm-raw': {
    const { encodeFrame, Kind } = await import('../../protocol/index.js');
    const { openSocket, Transport } = await import('../../lib/transport.js');
    const ping = encodeFrame({ kind: Kind.Ping, flags: 0, id: 1, channel: 0 });
    printResult(await timedConnects(spec.n, async () => {
      const began = performance.now();
      let answered = () => {};
      const pong = new Promise<void>((resolve) => (answered = resolve));
      const transport = new Transport(await openSocket(spec.socket, 10_000), { onFrame: () => answered(), onClose: () => {} });
      transport.send(ping);
      await pong;
      const ms = performance.now() - began;
      transport.destroy();
      return ms;
    }));
    break;
  }
}

/** `n` timed connects after WARMUP untimed ones: p50 and p99 in ms (nearest rank). */
async function timedConnects(n: number, once: () => Promise<number>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < WARMUP; i++) await once();
  const ms = new Float64Array(n);
  for (let i = 0; i < n; i++) ms[i] = await once();
  ms.sort();
  const at = (p: number) => ms[Math.min(n - 1, Math.ceil((p / 100) * n) - 1)] as number;
  return { p50: at(50), p99: at(99) };
}
