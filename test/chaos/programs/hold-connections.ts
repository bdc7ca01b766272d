/**
 * Holds many client connections to one supervisor, for the load section.
 *
 * Spec (argv[2], JSON): `{ home, n, timeoutMs?: 60000 }`. It prints `{"event":"ready"}` once
 * loaded, then waits for commands on stdin, one per line:
 * - `open`: opens `n` connections at once (each a full library connect: socket, HELLO, WELCOME)
 *   and one PING on each, then prints `HoldOpened`;
 * - `close`: closes every connection it holds (GOODBYE, then the socket), prints
 *   `{"event":"closed","ms":...}` and exits 0.
 * stdin's end counts as `close`. Every connection is its own library client, as if from its own
 * process: no exit handlers, no environment exported.
 */
import { createInterface } from 'node:readline';
import { type Client, connect, MuxvisorError } from '../../../lib/index.js';

export interface HoldOpened {
  event: 'opened';
  ok: number;
  /** Failures by code: a MuxvisorError's code, or `untyped <name or errno>` for anything else. */
  failed: Record<string, number>;
  /** The first few failures: `code: message`. */
  errors: string[];
  /** From the `open` command to the last connection answered (or failed). */
  ms: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as { home: string; n: number; timeoutMs?: number };
const timeoutMs = spec.timeoutMs ?? 60_000;
const clients: Client[] = [];

async function openAll(): Promise<HoldOpened> {
  const started = performance.now();
  const failed: Record<string, number> = {};
  const errors: string[] = [];
  await Promise.all(Array.from({ length: spec.n }, async (_, i) => {
    try {
      const client = await connect({ home: spec.home, start: false, name: `chaos-hold-${process.pid}-${i}`, handleExit: false, exportEnv: false, timeoutMs, requestTimeoutMs: timeoutMs });
      clients.push(client);
      await client.ping({ timeoutMs });
    } catch (error) {
      const code = error instanceof MuxvisorError ? error.code : `untyped ${(error as NodeJS.ErrnoException).code ?? (error as Error).name}`;
      failed[code] = (failed[code] ?? 0) + 1;
      if (errors.length < 5) errors.push(`${code}: ${(error as Error).message}`);
    }
  }));
  const ok = spec.n - Object.values(failed).reduce((a, b) => a + b, 0);
  return { event: 'opened', ok, failed, errors, ms: performance.now() - started };
}

let closing = false;
async function closeAll(): Promise<void> {
  if (closing) return;
  closing = true;
  const started = performance.now();
  await Promise.allSettled(clients.map((c) => c.close()));
  process.stdout.write(`${JSON.stringify({ event: 'closed', ms: performance.now() - started })}\n`);
  process.exit(0);
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const command = line.trim();
    if (command === 'open') void openAll().then((r) => process.stdout.write(`${JSON.stringify(r)}\n`));
    else if (command === 'close') void closeAll();
  })
  .on('close', () => void closeAll());
process.stdout.write(`${JSON.stringify({ event: 'ready', pid: process.pid })}\n`);
