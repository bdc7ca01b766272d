/**
 * Runs the fuzz cases against a live supervisor: `count` cases, each family drawn by weight
 * from the section's generator and each case made from a generator forked from it, in case
 * order (a seed repeats the schedule however the cases interleave). `LANES` cases run at once,
 * at most `HEAVY_LANES` of them heavy. Every case has an overall deadline; a case that passes it
 * is a violation. Every problem a connection saw in what the supervisor sent becomes one.
 */
import type { SectionContext } from '../context.js';
import type { Rng } from '../random.js';
import { type CaseEnv, type Family, type FuzzCase, type FuzzTarget, type Outcome } from './case.js';
import { randomBytes, lengths, truncated } from './bytes.js';
import { FuzzConn } from './conn.js';
import { hostile } from './hostile.js';
import { deep, huge, malformed } from './msgpack.js';
import { mutated } from './mutate.js';
import { helloFlood, unknowns } from './sessions.js';
import { slowReader } from './slow.js';
import { wrongArgs, wrongTypes } from './types.js';
import { helloFrame } from './wire.js';

export const FAMILIES: readonly Family[] = [randomBytes, truncated, lengths, mutated, deep, huge, malformed, wrongTypes, wrongArgs, helloFlood, unknowns, hostile, slowReader];

const LANES = 12;
const HEAVY_LANES = 2;
/** No case may take longer than this, whatever it does. */
const CASE_DEADLINE_MS = 45_000;
/** Violations kept per check name, so that one broken promise does not flood the report. */
const MAX_PER_CHECK = 5;

export interface FuzzStats {
  cases: number;
  outcomes: Record<Outcome, number>;
  /** Each family's observations, by name: the largest value seen. */
  observed: Map<string, number>;
  /** When each case ran (Date.now()), to tell what went on when something was slow. */
  timeline: Array<{ label: string; start: number; end: number }>;
  ms: number;
}

/** `CHAOS_FUZZ_FAMILIES=huge,slow` (a debugging aid): only families whose name contains one of these. */
const only = process.env.CHAOS_FUZZ_FAMILIES?.split(',').filter(Boolean);
const chosen = only ? FAMILIES.filter((f) => only.some((o) => f.name.includes(o))) : FAMILIES;

function pickFamily(rng: Rng): Family {
  const total = chosen.reduce((sum, f) => sum + f.weight, 0);
  let at = rng.int(0, total - 1);
  for (const f of chosen) {
    if (at < f.weight) return f;
    at -= f.weight;
  }
  return FAMILIES[0] as Family;
}

/** The cases running now, as `family: what` (for the RSS sampler's note on its peak). */
export const running = new Set<string>();

export async function runFuzz(ctx: SectionContext, target: FuzzTarget, count: number): Promise<FuzzStats> {
  const started = Date.now();
  const stats: FuzzStats = { cases: 0, outcomes: { answered: 0, closed: 0 }, observed: new Map(), timeline: [], ms: 0 };
  const perCheck = new Map<string, number>();
  let next = 0;
  let heavy = 0;
  const heavyWaiters: Array<() => void> = [];

  // Drawn in case order, synchronously: the schedule depends on the seed only.
  const draw = (): { index: number; c: FuzzCase; rng: Rng } | null => {
    if (next >= count || ctx.signal.aborted) return null;
    const index = next++;
    const family = pickFamily(ctx.rng);
    const rng = ctx.rng.fork();
    return { index, c: family.make(rng), rng };
  };

  const runOne = async (index: number, c: FuzzCase, rng: Rng) => {
    const conns: FuzzConn[] = [];
    const fail = (check: string, message: string) => {
      const n = (perCheck.get(check) ?? 0) + 1;
      perCheck.set(check, n);
      ctx.count(`fuzz violations: ${check}`);
      if (n <= MAX_PER_CHECK) ctx.violation(check, `case ${index} (${c.family}: ${c.what}; --seed ${ctx.options.seed}): ${message}`);
    };
    const env: CaseEnv = {
      rng,
      target,
      fail,
      observe: (name, value) => stats.observed.set(name, Math.max(stats.observed.get(name) ?? value, value)),
      async connect() {
        const conn = await FuzzConn.open(target.socketPath);
        conns.push(conn);
        return conn;
      },
      async welcomed() {
        const conn = await env.connect();
        conn.write(helloFrame(target.token));
        await conn.until(() => conn.received.length > 0, 5_000);
        if (conn.received[0]?.kind !== 2) throw new Error(`the handshake failed: ${JSON.stringify(conn.received[0] ?? 'no answer within 5 s')}`);
        return conn;
      },
    };
    let timer: NodeJS.Timeout | undefined;
    const label = `${c.family}: ${c.what}`;
    const start = Date.now();
    running.add(label);
    try {
      const outcome = await Promise.race([
        c.run(env),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the case took more than ${CASE_DEADLINE_MS} ms`)), CASE_DEADLINE_MS); }),
      ]);
      stats.outcomes[outcome]++;
      ctx.count(`fuzz outcome ${outcome}`);
    } catch (error) {
      fail('fuzz case failed', (error as Error).message);
    } finally {
      clearTimeout(timer);
      running.delete(label);
      stats.timeline.push({ label, start, end: Date.now() });
      for (const conn of conns) {
        for (const problem of conn.problems) fail('supervisor broke the protocol', problem);
        conn.destroy();
      }
    }
    stats.cases++;
    ctx.count('checks'); // each case is one judged check (fuzz/case.ts), whatever it found
    ctx.count('fuzz cases');
    ctx.count(`fuzz ${c.family}`);
  };

  const lane = async () => {
    for (let item = draw(); item !== null; item = draw()) {
      if (item.c.heavy) {
        while (heavy >= HEAVY_LANES) await new Promise<void>((resolve) => heavyWaiters.push(resolve));
        heavy++;
      }
      try {
        await runOne(item.index, item.c, item.rng);
      } finally {
        if (item.c.heavy) {
          heavy--;
          heavyWaiters.shift()?.();
        }
      }
      if (stats.cases % 500 === 0) ctx.log(`${stats.cases} of ${count} cases`);
    }
  };
  await Promise.all(Array.from({ length: LANES }, lane));
  stats.ms = Date.now() - started;
  return stats;
}
