/**
 * What a fuzz case is, and the judgements every case ends with. A case is made from its own
 * generator (forked from the section's, in case order, so a seed repeats the schedule whatever
 * the interleaving), speaks through raw connections, and ends with one of the judgements below,
 * each with a deadline:
 * - `expectFatal`: bad input. The supervisor sends one fatal ERROR (id 0, a code of the closing
 *   group; one of `codes` when given) and closes. For self-evidently bad frames it must do so on
 *   its own; otherwise after the client half-closes.
 * - `expectAnswers`: well-formed requests. Each is answered exactly once (RESPONSE, ERROR or PONG)
 *   and `check` may demand a code; the connection then still answers a PING.
 * - `settle`: input whose fate is not predictable (mutated frames). The supervisor answers a
 *   probe PING, or refuses with a fatal ERROR and closes; after the client half-closes it closes.
 * A connection that does neither within the deadline is the violation "bad connection neither
 * answered nor closed".
 */
import type { Client } from '../../../lib/index.js';
import { Kind } from '../../../protocol/index.js';
import type { Rng } from '../random.js';
import type { FuzzConn, Received } from './conn.js';
import { frameOf } from './wire.js';

/** How long an answer (or the close after bad input) may take. */
export const ANSWER_MS = 5_000;
/** How long the close may take after the client half-closed. */
export const CLOSE_MS = 3_000;

export type Outcome = 'answered' | 'closed';

/** The live supervisor under test. */
export interface FuzzTarget {
  socketPath: string;
  token: string;
  /** Its payload limit (WELCOME's `limits.maxPayloadBytes`). */
  cap: number;
  /** A well-behaved connection for looking at the supervisor from the side (`connections.list`). */
  control: Client;
}

export interface CaseEnv {
  readonly rng: Rng;
  readonly target: FuzzTarget;
  /** A raw connection owned by the case (destroyed when it ends). */
  connect(): Promise<FuzzConn>;
  /** A raw connection past a WELCOME; throws when the handshake fails. */
  welcomed(): Promise<FuzzConn>;
  fail(check: string, message: string): void;
  /** A measurement of the case, kept as its family's maximum (`fuzz <name>` figure). */
  observe(name: string, value: number): void;
}

export interface FuzzCase {
  family: string;
  /** What it does, for violation messages: "open cut after 7 of 26 bytes, then half-closed". */
  what: string;
  /** Sends or holds megabytes: at most two such cases run at once. */
  heavy?: boolean;
  run(env: CaseEnv): Promise<Outcome>;
}

export interface Family {
  name: string;
  /** Share of the cases, relative to the other families. */
  weight: number;
  make(rng: Rng): FuzzCase;
}

/** Request ids a case allocates itself, never reused on its connection. */
export class Ids {
  #next: number;
  constructor(start = 1) {
    this.#next = start;
  }
  next(conn?: FuzzConn): number {
    const id = this.#next++;
    conn?.expect(id);
    return id;
  }
}

const PROBE_BASE = 0xffff_ff00;
let probes = 0;

/** Sends a PING with a fresh id from a range cases never use, and returns the id. */
export function probe(conn: FuzzConn): number {
  const id = PROBE_BASE + (probes++ % 0xff);
  conn.expect(id);
  conn.write(frameOf(Kind.Ping, { probe: id }, { id }));
  return id;
}

const describeFrames = (conn: FuzzConn) => conn.received.slice(-4).map((r) => r.error ? `${r.error.code}${r.fatal ? ' (fatal)' : ''}` : `kind ${r.kind} id ${r.id}`).join(', ') || 'nothing';

/** Half-closes and waits for the supervisor to close too. */
export async function hangUp(env: CaseEnv, conn: FuzzConn): Promise<void> {
  conn.end();
  if (!(await conn.endedWithin(CLOSE_MS))) {
    env.fail('bad connection neither answered nor closed', `still open ${CLOSE_MS} ms after the client half-closed (received: ${describeFrames(conn)})`);
  }
  conn.destroy();
}

/**
 * Bad input was sent: one fatal ERROR with one of `codes` (any closing code when null), then the
 * close. `selfEvident`: the supervisor can tell without the client half-closing.
 */
export async function expectFatal(env: CaseEnv, conn: FuzzConn, codes: readonly string[] | null, selfEvident: boolean): Promise<Outcome> {
  if (selfEvident && !(await conn.endedWithin(ANSWER_MS))) {
    env.fail('bad input neither refused nor closed', `no fatal ERROR and no close within ${ANSWER_MS} ms (received: ${describeFrames(conn)})`);
  }
  conn.end();
  if (!(await conn.endedWithin(CLOSE_MS))) {
    env.fail('bad connection neither answered nor closed', `still open ${CLOSE_MS} ms after the client half-closed (received: ${describeFrames(conn)})`);
    conn.destroy();
    return 'closed';
  }
  const fatal = conn.fatal;
  if (fatal === null) env.fail('bad input closed without a typed error', `the connection closed with no fatal ERROR (received: ${describeFrames(conn)})`);
  else if (codes !== null && !codes.includes(fatal.error?.code ?? '')) {
    env.fail('bad input refused with the wrong code', `fatal ${fatal.error?.code} (${fatal.error?.message}), expected ${codes.join(' or ')}`);
  }
  conn.destroy();
  return 'closed';
}

/**
 * Well-formed requests `ids` were sent: each gets one answer within the deadline; `check` may
 * return a problem with one (a wrong code). Then a probe PING must come back, and the close
 * follows the client's half-close.
 */
export async function expectAnswers(env: CaseEnv, conn: FuzzConn, ids: readonly number[], check?: (id: number, answer: Received) => string | null): Promise<Outcome> {
  for (const id of ids) conn.expect(id);
  await conn.until(() => ids.every((id) => conn.answered(id)), ANSWER_MS);
  const missing = ids.filter((id) => !conn.answered(id));
  if (missing.length > 0) {
    const how = conn.ended ? 'the connection closed first' : `neither answered nor closed within ${ANSWER_MS} ms`;
    env.fail('request unanswered', `${missing.length} of ${ids.length} requests (ids ${missing.slice(0, 5).join(', ')}) got no answer: ${how} (received: ${describeFrames(conn)})`);
  }
  for (const id of ids) {
    const answer = conn.answers(id)[0];
    const problem = answer && check ? check(id, answer) : null;
    if (problem) env.fail('request answered wrongly', `request ${id}: ${problem}`);
  }
  if (!conn.ended) {
    const p = probe(conn);
    if (!(await conn.until(() => conn.answered(p), ANSWER_MS))) {
      env.fail('connection stopped answering', `a PING after answered requests got no PONG within ${ANSWER_MS} ms (received: ${describeFrames(conn)})`);
    }
  }
  await hangUp(env, conn);
  return 'answered';
}

/**
 * A request the protocol lets the supervisor either answer (with one of `answers`) or refuse as
 * bad input (with one of `fatal`): e.g. a SYNC on channel 0, which names no run (section 7) and
 * breaks the kind's header rule (section 4).
 */
export async function expectAnswerOrFatal(env: CaseEnv, conn: FuzzConn, id: number, answers: string[], fatal: string[]): Promise<Outcome> {
  conn.expect(id);
  await conn.until(() => conn.answered(id) || conn.ended, ANSWER_MS);
  if (conn.answered(id)) return expectAnswers(env, conn, [id], errorWith(...answers));
  return expectFatal(env, conn, fatal, true);
}

/** Input of unpredictable fate: a PONG to a probe, or a fatal ERROR and a close. */
export async function settle(env: CaseEnv, conn: FuzzConn): Promise<Outcome> {
  const p = conn.ended ? -1 : probe(conn);
  await conn.until(() => conn.ended || conn.answered(p), ANSWER_MS);
  const answered = conn.answered(p) && conn.fatal === null;
  await hangUp(env, conn);
  if (!answered && conn.fatal === null && conn.ended) {
    env.fail('bad input closed without a typed error', `the connection closed with no fatal ERROR and no PONG (received: ${describeFrames(conn)})`);
  }
  return answered ? 'answered' : 'closed';
}

/** A check for `expectAnswers`: the answer is an ERROR with one of `codes`. */
export function errorWith(...codes: string[]) {
  return (_id: number, a: Received): string | null => {
    const code = a.error?.code;
    return code !== undefined && codes.includes(code) ? null : `expected an ERROR with ${codes.join(' or ')}, got ${code ?? `kind ${a.kind}`}${a.error ? `: ${a.error.message}` : ''}`;
  };
}

/** A check for `expectAnswers`: any non-fatal answer (RESPONSE, PONG or an ERROR for the request). */
export function anyAnswer(_id: number, a: Received): string | null {
  return a.fatal ? `a fatal ERROR ${a.error?.code}` : null;
}
