/**
 * The scale question's client programs. `node scale-client.js '<ScaleSpec JSON>'`:
 * - `open-many`: on one connection, starts the supervisor's worker threads (they start with the
 *   first runs), then opens `n` runs at once and keeps them open; reads the supervisor's RSS (its
 *   `status`) before any run, once the threads run, and with the `n` open; finishes them, and
 *   prints one JSON line with the figures.
 * - `hold`: opens `n` idle connections one after another (handshaken to a supervisor's home, or
 *   plain sockets to the raw server, each after one PING), prints `{"connected":n}`, and holds
 *   them until its stdin ends.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Client, connect, type Run } from '../../lib/index.js';
import { openSocket, Transport } from '../../lib/transport.js';
import { encodeFrame, Kind } from '../../protocol/index.js';
import { printResult } from './spec.js';

export type ScaleSpec =
  | { task: 'open-many'; home: string; n: number; settleMs: number }
  | { task: 'hold'; home: string; n: number }
  | { task: 'hold'; socket: string; n: number };

export interface OpenManyResult {
  /** Supervisor RSS before any run is opened (no worker thread yet), and with all `n` open. */
  idleRssMB: number;
  rssMB: number;
  /** What starting the worker threads added (runs opened one at a time until one shares a thread). */
  threadsMB: number;
  /** (rss − rss with the threads started and no run open) / n: what one more open run costs. */
  perRunKB: number;
  /** From the first OPEN sent to the last one answered, all `n` in flight together. */
  openMs: number;
}

const spec = JSON.parse(process.argv[2] as string) as ScaleSpec;
const MB = 1024 * 1024;

const options = (home: string, name: string) => ({ home, start: false, name, handleExit: false, exportEnv: false, timeoutMs: 30_000, requestTimeoutMs: 120_000 });
const rssBytes = async (client: Client) => (((await client.status()).process as { rssBytes: number }).rssBytes);

if (spec.task === 'open-many') {
  const client = await connect(options(spec.home, 'bench-scale-runs'));
  const idle = await rssBytes(client);
  const base = `scale-${process.pid}`;
  let threads = -1;
  const first: Run[] = [];
  for (;;) {
    first.push(await client.openRun(`${base}-first-${first.length}`));
    const started = ((await client.status()).workers as unknown[]).length;
    if (started === threads) break;
    threads = started;
  }
  await Promise.all(first.map((run) => run.finish()));
  const ready = await rssBytes(client);
  const began = performance.now();
  const runs = await Promise.all(Array.from({ length: spec.n }, (_, i) => client.openRun(`${base}-${i}`)));
  const openMs = performance.now() - began;
  await sleep(spec.settleMs);
  const status = await client.status();
  const open = (status.runs as { open: number }).open;
  if (open !== spec.n) throw new Error(`the supervisor reports ${open} runs open, not ${spec.n}`);
  const rss = (status.process as { rssBytes: number }).rssBytes;
  await Promise.all(runs.map((run) => run.finish()));
  await client.close();
  const result: OpenManyResult = { idleRssMB: idle / MB, rssMB: rss / MB, threadsMB: (ready - idle) / MB, perRunKB: (rss - ready) / 1024 / spec.n, openMs };
  printResult(result);
} else {
  // One after another, each answered before the next: a burst could overrun the listen backlog.
  const close: Array<() => unknown> = [];
  if ('home' in spec) {
    for (let i = 0; i < spec.n; i++) {
      const client = await connect(options(spec.home, `bench-idle-${i}`));
      close.push(() => client.close());
    }
  } else {
    // One PING each, as muxvisor's connections have their handshake: the server has accepted it.
    for (let i = 0; i < spec.n; i++) {
      let answered = () => {};
      const pong = new Promise<void>((resolve) => (answered = resolve));
      const transport = new Transport(await openSocket(spec.socket, 30_000), { onFrame: () => answered(), onClose: () => {} });
      transport.send(encodeFrame({ kind: Kind.Ping, flags: 0, id: 1, channel: 0 }));
      await pong;
      close.push(() => transport.destroy());
    }
  }
  printResult({ connected: close.length });
  process.stdin.resume();
  process.stdin.once('end', () => void Promise.all(close.map((c) => c())).finally(() => process.exit(0)));
}
