/**
 * A client publishing into one run while the disk under the home fills up: the exhaustion
 * section's writer. Every record is `{ i, pad }` with `i` counting from 0, so the checker can tell
 * which records the log must hold.
 *
 * Spec (argv[2], JSON): `DiskWriterSpec`. It connects (never starting a supervisor), opens the run,
 * publishes `initial` records and syncs them, prints `{"event":"ready"}` and waits for `go` on
 * stdin (the section fills the disk meanwhile). Then, by `mode`:
 * - `continue`: rounds of `syncEvery` records and a SYNC, each acknowledged round printed as
 *   `{"event":"acked","acked":n}`, until a SYNC fails; `roundsAfterFull` more rounds (all failing,
 *   each error kept); `{"event":"waiting"}`; on `freed`, one SYNC (`{"event":"synced"}`), `after`
 *   more records and a FINISH (`{"event":"finished"}`).
 * - `finish-while-full`: the same rounds until a SYNC fails, then FINISH at once
 *   (`{"event":"finished"}` with its error or result).
 * - `flood`: records of `recordBytes` as fast as the socket takes them (no SYNC) until a warning
 *   comes or `floodBytes` are published: `{"event":"flooded"}`.
 * It always ends with `{"event":"done"}` holding every error it saw, and exits 0; `exit` on stdin
 * (or stdin's end) makes it skip whatever it still waits for.
 */
import { createInterface } from 'node:readline';
import { connect, type MuxvisorError } from '../../../lib/index.js';

export interface DiskWriterSpec {
  home: string;
  run: string;
  mode: 'continue' | 'finish-while-full' | 'flood';
  recordBytes: number;
  initial: number;
  syncEvery: number;
  roundsAfterFull: number;
  after: number;
  floodBytes: number;
  timeoutMs: number;
}

export interface SeenError {
  op: string;
  code: string;
  message: string;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as DiskWriterSpec;
const errors: SeenError[] = [];
let published = 0;
let acked = 0;

const lines: string[] = [];
let wake: (() => void) | null = null;
let ended = false;
createInterface({ input: process.stdin })
  .on('line', (line) => {
    lines.push(line.trim());
    wake?.();
  })
  .on('close', () => {
    ended = true;
    wake?.();
  });

/** Waits for `word` on stdin; false when `exit` or the end of stdin came first. */
async function command(word: string): Promise<boolean> {
  for (;;) {
    const at = lines.findIndex((l) => l === word || l === 'exit');
    if (at >= 0) return lines.splice(at, 1)[0] === word;
    if (ended) return false;
    await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
  }
}

function say(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function seen(op: string, error: unknown): SeenError {
  const e = error as Partial<MuxvisorError>;
  const s = { op, code: String(e.code ?? 'not a MuxvisorError'), message: String(e.message ?? error) };
  errors.push(s);
  return s;
}

const pad = 'x'.repeat(spec.recordBytes);
const client = await connect({ home: spec.home, name: `disk-writer-${spec.run}`, start: false, timeoutMs: spec.timeoutMs, requestTimeoutMs: spec.timeoutMs });
const warnings: SeenError[] = [];
client.on('warning', (w: MuxvisorError) => warnings.push(seen('warning', w)));
const run = await client.openRun(spec.run);
const call = { timeoutMs: spec.timeoutMs };

for (; published < spec.initial; published++) run.publish({ i: published, pad });
await run.sync(call);
acked = published;
say({ event: 'ready', acked, pid: process.pid });

/** One round: `n` records and a SYNC. True when the SYNC was acknowledged. */
async function round(n: number): Promise<boolean> {
  try {
    for (let k = 0; k < n; k++) run.publish({ i: published++, pad });
    await run.sync(call);
    acked = published;
    say({ event: 'acked', acked });
    return true;
  } catch (error) {
    seen('sync', error);
    return false;
  }
}

if (await command('go')) {
  if (spec.mode === 'flood') {
    let bytes = 0;
    try {
      while (bytes < spec.floodBytes && warnings.length === 0) {
        run.publish({ i: published, pad });
        published++;
        bytes += spec.recordBytes;
        if (published % 16 === 0) await run.drain();
      }
      // The warning may still be on its way: a PING's answer comes after it.
      await client.ping(call);
    } catch (error) {
      seen('publish', error);
    }
    say({ event: 'flooded', published, bytes, warning: warnings[0] ?? null });
  } else {
    // Until the disk is full; a generous bound keeps a disk that never fills from looping forever.
    for (let r = 0; r < 100_000 && (await round(spec.syncEvery)); r++);
    const full = errors.at(-1) ?? null;
    say({ event: 'full', acked, published, error: full });
    if (spec.mode === 'finish-while-full') {
      try {
        say({ event: 'finished', result: await run.finish(call), published });
      } catch (error) {
        say({ event: 'finished', error: seen('finish', error), published });
      }
    } else {
      for (let r = 0; r < spec.roundsAfterFull; r++) await round(spec.syncEvery);
      say({ event: 'waiting', acked, published });
      if (await command('freed')) {
        try {
          say({ event: 'synced', result: await run.sync(call), published });
          acked = published;
          for (let k = 0; k < spec.after; k++) run.publish({ i: published++, pad });
          say({ event: 'finished', result: await run.finish(call), published });
        } catch (error) {
          say({ event: 'finished', error: seen('after freeing', error), published });
        }
      }
    }
  }
}
if (spec.mode !== 'continue') await command('exit');
client.destroy();
say({ event: 'done', acked, published, errors });
process.exit(0);
