/**
 * A soak publisher: publishes ~100-byte records as fast as the supervisor takes them, in a
 * rotation of runs, and checks each run holds exactly what it published.
 *
 * Spec (argv[2], JSON): `SoakSpec`. It connects (never starting a supervisor), prints
 * `{"event":"ready"}`, and waits for `go` on stdin. Then, until `seconds` have passed since `go`
 * (or `stop` arrives on stdin), one run after another: open `soak-<pid>-<k>`, publish N records
 * (N drawn from [minRecords, maxRecords] by a generator seeded with `seed`; `await drain()`
 * whenever publish says to), sync, finish. The sync must say N records durable and the finish
 * exactly N records, status ok; every `verifyEvery`-th run is also verified (`runs.verify`: every
 * CRC whole, N records, FINISH present). Then, with `removeFinished`, the run's directory is
 * removed (a finished run is no longer the supervisor's business; this bounds the disk).
 * At the end it prints one `SoakResult` line and exits 0.
 */
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { connect, ErrorCode, MuxvisorError } from '../../../lib/index.js';
import { encodeValue } from '../../../protocol/index.js';
import { Rng } from '../random.js';

export interface SoakSpec {
  home: string;
  seconds: number;
  seed: number;
  minRecords: number;
  maxRecords: number;
  /** Verify every this many runs with `runs.verify`; 0 never. */
  verifyEvery: number;
  removeFinished: boolean;
  /** Width of the buckets of `recordsPerWindow`, in ms. */
  windowMs: number;
}

export interface SoakResult {
  event: 'result';
  runs: number;
  records: number;
  /** Bytes the finished runs' logs held (from FINISH), before their directories were removed. */
  bytes: number;
  /** Records of runs finished and checked, by the window (from `go`) in which each run finished. */
  recordsPerWindow: number[];
  /** Runs whose sync, finish or verify disagreed with what was published: the first 10. */
  mismatches: string[];
  mismatchCount: number;
  verified: number;
  verifiedRecords: number;
  errorCount: number;
  errors: string[];
  ms: number;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as SoakSpec;
const rng = new Rng(spec.seed);
const client = await connect({ home: spec.home, start: false, name: 'chaos-soak', handleExit: false, exportEnv: false, timeoutMs: 120_000, requestTimeoutMs: 120_000 });

// A record of about 100 bytes of msgpack.
const sample = { c: process.pid, r: 0, i: 0, t: Date.now(), pad: '' };
const pad = 'p'.repeat(Math.max(0, 100 - encodeValue(sample).length));

let stopping = false;
let go: () => void = () => {};
const started = new Promise<void>((resolve) => (go = resolve));
createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line.trim() === 'go') go();
    if (line.trim() === 'stop') stopping = true;
  })
  .on('close', () => {
    stopping = true;
    go();
  });
process.stdout.write(`${JSON.stringify({ event: 'ready', pid: process.pid })}\n`);
await started;

const t0 = performance.now();
const deadline = t0 + spec.seconds * 1000;
const result: SoakResult = {
  event: 'result', runs: 0, records: 0, bytes: 0, recordsPerWindow: [], mismatches: [], mismatchCount: 0, verified: 0, verifiedRecords: 0, errorCount: 0, errors: [], ms: 0,
};
const mismatch = (what: string) => {
  result.mismatchCount++;
  if (result.mismatches.length < 10) result.mismatches.push(what);
};

for (let k = 0; !stopping && performance.now() < deadline; k++) {
  const id = `soak-${process.pid}-${k}`;
  const n = rng.int(spec.minRecords, spec.maxRecords);
  try {
    const run = await client.openRun(id);
    for (let i = 0; i < n; i++) {
      if (!run.publish({ c: process.pid, r: k, i, t: Date.now(), pad })) await run.drain();
    }
    const synced = await run.sync();
    if (synced.records !== n) mismatch(`${id}: published ${n}, sync said ${synced.records} durable`);
    const finished = await run.finish();
    if (finished.records !== n || finished.status !== 'ok') mismatch(`${id}: published ${n}, finish said ${finished.records} records, status ${finished.status}`);
    if (spec.verifyEvery > 0 && k % spec.verifyEvery === 0) {
      const v = await client.runs.verify(id);
      result.verified++;
      result.verifiedRecords += v.records;
      if (!v.ok || v.records !== n || !v.finished) mismatch(`${id}: published ${n}, runs.verify found ${v.records} records, finished ${v.finished}, problems: ${v.problems.join('; ') || 'none'}`);
    }
    result.runs++;
    result.records += n;
    result.bytes += finished.bytes;
    const window = Math.floor((performance.now() - t0) / spec.windowMs);
    while (result.recordsPerWindow.length <= window) result.recordsPerWindow.push(0);
    result.recordsPerWindow[window] = (result.recordsPerWindow[window] ?? 0) + n;
    if (spec.removeFinished) rmSync(dirname(finished.log), { recursive: true, force: true });
  } catch (error) {
    result.errorCount++;
    const e = error as { code?: string; message?: string };
    if (result.errors.length < 10) result.errors.push(`${id}: ${e.code ?? 'Error'}: ${e.message ?? String(error)}`);
    // A connection gone is gone for good: stop instead of failing every next run the same way.
    if (error instanceof MuxvisorError && error.code === ErrorCode.ConnectionClosed) break;
  }
}
result.ms = performance.now() - t0;
await client.close().catch(() => {});
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
