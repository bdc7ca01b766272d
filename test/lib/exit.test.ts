/**
 * A process that ends without calling finish (the event loop empties, process.exit(), an uncaught
 * exception, SIGINT/SIGTERM/SIGHUP) loses none of the records it handed to the library, and its run ends
 * crashed or interrupted. Real supervisor, real child processes (test/fixtures/exit/publisher.mjs,
 * which imports the built library from dist/), a temporary home.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect } from '../../lib/index.js';
import { decodeValue } from '../../protocol/index.js';
import { EntryType } from '../../supervisor/recorder/log-format.js';
import { readRunLog, scanRunLog } from '../../supervisor/recorder/log-reader.js';
import { type Child, runFixture } from '../helpers/children.js';
import { eventually, type TempHome, tempHome } from '../helpers/home.js';

type Mode = 'natural' | 'exit' | 'exit-later' | 'uncaught' | 'sigint' | 'sigterm' | 'sighup' | 'sigint-own-handler' | 'sigint-busy' | 'big-exit';
type Exit = { code: number | null; signal: NodeJS.Signals | null };

const SMALL_PAD = 64;
const BIG_PAD = 64 * 1024;

let home: TempHome;
let client: Client;
let supervisorPid: number | null;
let nextRun = 0;
const children: Child[] = [];

beforeAll(async () => {
  home = tempHome();
  client = await connect({ home: home.home, supervisor: { idleTimeoutMs: 0 } });
  supervisorPid = home.supervisorPid();
});

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
  }
});

afterAll(async () => {
  await client?.close();
  await home?.cleanup();
});

interface Started {
  run: string;
  child: Child;
  records: number;
}

/** Resolves when the child has exited and its stdout and stderr are closed (all lines read). */
const closed = new WeakMap<Child, Promise<void>>();

function startPublisher(mode: Mode, records: number, batch: number, pad?: number): Started {
  const run = `exit-${mode}-${nextRun++}`;
  const child = runFixture('exit/publisher.mjs', [], {
    MUXVISOR_HOME: home.home, RUN: run, RECORDS: String(records), BATCH: String(batch), MODE: mode,
    PAD: pad === undefined ? undefined : String(pad),
  });
  children.push(child);
  closed.set(child, new Promise((resolve) => child.process.once('close', () => resolve())));
  return { run, child, records };
}

/**
 * The child's exit, once its output is all read; or a failure (after killing it) if it is still
 * alive after `ms`.
 */
async function exitWithin(child: Child, ms: number, what: string): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), ms); });
  const done = await Promise.race([closed.get(child)?.then(() => true), timeout]).finally(() => clearTimeout(timer));
  if (!done) {
    child.process.kill('SIGKILL');
    throw new Error(`${what}: the child (pid ${child.process.pid}) was still alive ${ms} ms later; lines: ${JSON.stringify(child.lines)}; stderr: ${child.stderr()}`);
  }
  return child.exited;
}

/** The "published" line of a child that has exited (exitWithin read all its output). */
function publishedLine(child: Child): Record<string, unknown> {
  const line = child.lines.find((l) => l.event === 'published');
  expect(line, `no "published" line; lines: ${JSON.stringify(child.lines)}; stderr: ${child.stderr()}`).toBeDefined();
  return line as Record<string, unknown>;
}

function metaPath(run: string): string {
  return join(home.layout.runsDir, run, 'meta.json');
}

function readMeta(run: string): Record<string, unknown> {
  return JSON.parse(readFileSync(metaPath(run), 'utf8')) as Record<string, unknown>;
}

/** Supervisor log lines that mention `run`, for failure messages. */
function supervisorLogAbout(run: string): string {
  if (!existsSync(home.layout.supervisorLog)) return '(no supervisor log)';
  return readFileSync(home.layout.supervisorLog, 'utf8').split('\n').filter((l) => l.includes(run)).join('\n');
}

/** Waits (bounded) until the supervisor has finished `run`, and returns its meta.json. */
async function finishedMeta(run: string): Promise<Record<string, unknown>> {
  try {
    return await eventually(() => {
      const meta = readMeta(run);
      return meta.state === 'finished' ? meta : null;
    }, `run ${run} to be finished in meta.json`, 10_000);
  } catch (error) {
    const meta = existsSync(metaPath(run)) ? readFileSync(metaPath(run), 'utf8') : '(no meta.json)';
    throw new Error(`${(error as Error).message}\nmeta.json: ${meta}\nsupervisor log:\n${supervisorLogAbout(run)}`);
  }
}

interface LogCheck {
  records: number;
  /** Indexes i where record i did not have seq i (first 10). */
  misplaced: Array<{ index: number; seq: unknown }>;
  /** Records whose pad was not `padLength` x's. */
  badPads: number;
}

function checkLog(run: string, padLength: number): LogCheck {
  const path = join(home.layout.runsDir, run, 'run.mvlog');
  const check: LogCheck = { records: 0, misplaced: [], badPads: 0 };
  for (const entry of readRunLog(path)) {
    if (entry.type !== EntryType.Record) continue;
    const value = decodeValue(entry.payload) as { seq?: unknown; pad?: unknown };
    if (value.seq !== entry.index && check.misplaced.length < 10) check.misplaced.push({ index: entry.index, seq: value.seq });
    if (typeof value.pad !== 'string' || value.pad.length !== padLength || /[^x]/.test(value.pad)) check.badPads++;
    check.records++;
  }
  return check;
}

/** Every record once, in order, a whole log with its FINISH entry, and meta.json agreeing. */
function expectEveryRecord(run: string, records: number, padLength: number, meta: Record<string, unknown>): void {
  const context = `run ${run}; meta.json: ${JSON.stringify(meta)}\nsupervisor log:\n${supervisorLogAbout(run)}`;
  const scan = scanRunLog(join(home.layout.runsDir, run, 'run.mvlog'));
  expect(scan.torn, context).toBeNull();
  expect(scan.finished, context).toBe(true);
  expect({ records: scan.records, meta: meta.records }, context).toEqual({ records, meta: records });
  expect(checkLog(run, padLength), context).toEqual({ records, misplaced: [], badPads: 0 });
  const finish = decodeValue(scan.finish as Uint8Array) as Record<string, unknown>;
  expect({ status: finish.status, records: finish.records }, context).toEqual({ status: meta.status, records });
}

function expectCrashed(meta: Record<string, unknown>): void {
  expect(meta.status, JSON.stringify(meta)).toBe('crashed');
  expect(meta.reason, JSON.stringify(meta)).toMatch(/went away without finishing/);
}

function expectInterrupted(meta: Record<string, unknown>, signal: NodeJS.Signals, pid: unknown): void {
  expect(meta.status, JSON.stringify(meta)).toBe('interrupted');
  expect(meta.reason, JSON.stringify(meta)).toContain(`received ${signal}`);
  expect(meta.reason, JSON.stringify(meta)).toContain(`pid ${String(pid)}`);
}

/** The first line with `event`, while the child runs; fails at once if it ends without one. */
async function lineOf(child: Child, event: string): Promise<Record<string, unknown>> {
  const ended = (closed.get(child) as Promise<void>).then(() => null);
  const seen = child.line((l) => l.event === event, 15_000);
  seen.catch(() => {}); // when the child ends first, nobody waits for this one any more
  const line = await Promise.race([seen, ended]);
  if (line !== null) return line;
  const late = child.lines.find((l) => l.event === event);
  if (late !== undefined) return late;
  const exit = await child.exited;
  throw new Error(`the child ended (${JSON.stringify(exit)}) without printing "${event}"; lines: ${JSON.stringify(child.lines)}; stderr: ${child.stderr()}`);
}

describe('a process that ends without finishing its run', () => {
  afterEach(() => {
    // One supervisor served every case: none of them may take it down.
    expect(home.supervisorPid()).toBe(supervisorPid);
  });

  it('exits on its own when its event loop empties (an idle client does not keep it alive), keeping every record; the run crashes', async () => {
    const { run, child, records } = startPublisher('natural', 20_000, 2_000);
    const line = await lineOf(child, 'published');
    expect(line.records).toBe(records);
    const exit = await exitWithin(child, 5_000, 'natural end of the event loop');
    expect(exit, child.stderr()).toEqual({ code: 0, signal: null });
    const meta = await finishedMeta(run);
    expectCrashed(meta);
    expectEveryRecord(run, records, SMALL_PAD, meta);
  });

  it('keeps every record, even those published in the exiting turn, when process.exit(3) follows the last publish', async () => {
    const { run, child, records } = startPublisher('exit', 20_000, 2_000);
    const exit = await exitWithin(child, 15_000, 'process.exit in the last turn');
    expect(publishedLine(child).records).toBe(records);
    expect(exit, child.stderr()).toEqual({ code: 3, signal: null });
    const meta = await finishedMeta(run);
    expectCrashed(meta);
    expectEveryRecord(run, records, SMALL_PAD, meta);
  });

  it('keeps every record when process.exit(0) comes in a later turn', async () => {
    const { run, child, records } = startPublisher('exit-later', 20_000, 2_000);
    const exit = await exitWithin(child, 15_000, 'process.exit in a later turn');
    expect(publishedLine(child).records).toBe(records);
    expect(exit, child.stderr()).toEqual({ code: 0, signal: null });
    const meta = await finishedMeta(run);
    expectCrashed(meta);
    expectEveryRecord(run, records, SMALL_PAD, meta);
  });

  it('keeps every record when an uncaught exception ends the process (exit code 1)', async () => {
    const { run, child, records } = startPublisher('uncaught', 20_000, 2_000);
    const exit = await exitWithin(child, 15_000, 'uncaught exception');
    expect(publishedLine(child).records).toBe(records);
    expect(exit, child.stderr()).toEqual({ code: 1, signal: null });
    expect(child.stderr()).toContain('boom');
    const meta = await finishedMeta(run);
    expectCrashed(meta);
    expectEveryRecord(run, records, SMALL_PAD, meta);
  });

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`finishes the run as interrupted on ${signal}, keeps every record, and still dies of ${signal}`, async () => {
      const { run, child, records } = startPublisher(signal.toLowerCase() as Mode, 20_000, 2_000);
      const line = await lineOf(child, 'published');
      await lineOf(child, 'waiting');
      child.process.kill(signal);
      const exit = await exitWithin(child, 10_000, `after ${signal}`);
      expect(exit, child.stderr()).toEqual({ code: null, signal });
      const meta = await finishedMeta(run);
      expectInterrupted(meta, signal, line.pid);
      expectEveryRecord(run, records, SMALL_PAD, meta);
    });
  }

  it('leaves SIGINT to a handler of the process: the run is not finished as interrupted, it crashes when the handler exits, every record kept', async () => {
    const { run, child, records } = startPublisher('sigint-own-handler', 20_000, 2_000);
    await lineOf(child, 'published');
    await lineOf(child, 'waiting');
    child.process.kill('SIGINT');
    const exit = await exitWithin(child, 10_000, 'after SIGINT with its own handler');
    expect(child.lines.some((l) => l.event === 'own-handler'), JSON.stringify(child.lines)).toBe(true);
    expect(exit, child.stderr()).toEqual({ code: 0, signal: null });
    const meta = await finishedMeta(run);
    expectCrashed(meta);
    expectEveryRecord(run, records, SMALL_PAD, meta);
  });

  it('finishes the run as interrupted on a SIGINT that arrives while records are streaming out, losing none handed over before it', async () => {
    // Records of 4 KiB, 1 MiB per turn, up to 64 MiB; the signal follows the first 2 MiB at once.
    const cap = 16_384;
    const { run, child } = startPublisher('sigint-busy', cap, 256, 4096);
    const line = await lineOf(child, 'waiting');
    child.process.kill('SIGINT');
    const exit = await exitWithin(child, 10_000, 'after SIGINT while publishing');
    expect(exit, child.stderr()).toEqual({ code: null, signal: 'SIGINT' });
    const meta = await finishedMeta(run);
    expectInterrupted(meta, 'SIGINT', line.pid);
    const context = `run ${run}; meta.json: ${JSON.stringify(meta)}\nsupervisor log:\n${supervisorLogAbout(run)}`;
    const scan = scanRunLog(join(home.layout.runsDir, run, 'run.mvlog'));
    expect(scan.torn, context).toBeNull();
    expect(scan.finished, context).toBe(true);
    // Every record handed over before the signal, and whatever followed it, as one gapless prefix.
    const kept = checkLog(run, 4096);
    expect(kept.records, context).toBeGreaterThanOrEqual(line.records as number);
    expect(kept.records, context).toBeLessThanOrEqual(cap);
    expect(kept, context).toEqual({ records: kept.records, misplaced: [], badPads: 0 });
    expect({ scan: scan.records, meta: meta.records }, context).toEqual({ scan: kept.records, meta: kept.records });
  });

  it('writes 25 MiB still queued in the process when process.exit(0) follows the last publish', async () => {
    // 400 records of 64 KiB, 100 per turn: at exit a write is in flight and most bytes wait behind it.
    const { run, child, records } = startPublisher('big-exit', 400, 100);
    const exit = await exitWithin(child, 20_000, 'process.exit with 25 MiB queued');
    expect(publishedLine(child).records).toBe(records);
    expect(exit, child.stderr()).toEqual({ code: 0, signal: null });
    const meta = await finishedMeta(run);
    expectCrashed(meta);
    expectEveryRecord(run, records, BIG_PAD, meta);
    expect(meta.bytes as number).toBeGreaterThan(records * BIG_PAD);
  });
});

describe('a child attached to its parent\'s run', () => {
  it('leaves the run open for its parent when it dies of SIGTERM (it detaches, it does not finish it)', async () => {
    const run = await client.openRun(`attached-sigterm-${nextRun++}`);
    run.publish({ from: 'parent', n: 0 });
    const child = runFixture('publish.mjs', [], { MUXVISOR_HOME: home.home, RUNS: run.id, ATTACH: '1', RECORDS: '50', SYNC: '1', HOLD: '1', TAG: 'child' });
    children.push(child);
    await child.line((l) => l.event === 'published');
    child.process.kill('SIGTERM');
    expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
    // The parent still owns an open run: it publishes on and finishes it ok, with the child's records kept.
    run.publish({ from: 'parent', n: 1 });
    const done = await run.finish();
    expect(done).toMatchObject({ status: 'ok', records: 52 });
  });
});
