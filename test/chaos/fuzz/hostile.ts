/**
 * Well-formed but hostile sequences: every frame is valid, the intent is not. Each checks what
 * the protocol promises about it (PROTOCOL.md sections 6 and 7):
 * - another connection's channel number means nothing here: its records are dropped with one
 *   warning, its SYNC/FINISH/DETACH/REQUEST are UNKNOWN_RUN, and the owner's run keeps exactly
 *   its own records;
 * - a CANCEL of an id not in flight is ignored, of an OPEN too (it completes), of a REQUEST gives
 *   exactly one answer;
 * - a run that is taken cannot be opened again, by anyone; a co-owner leaving does not end it;
 * - reusing a live subscription's id is fatal;
 * - a finished or detached run's channel is closed;
 * - past the in-flight limit, requests are answered OVERLOADED, each exactly once;
 * - past the dedicated-worker limit, OPEN is answered OVERLOADED.
 */
import { ErrorCode, Kind } from '../../../protocol/index.js';
import { ANSWER_MS, type CaseEnv, errorWith, expectAnswers, expectFatal, type Family, type FuzzCase, hangUp, type Outcome } from './case.js';
import type { FuzzConn } from './conn.js';
import { runId } from './bytes.js';
import { call, describe, openOn, syncedRecords } from './sessions.js';
import { frameOf } from './wire.js';

const publishes = (channel: number, n: number, tag: string) => Buffer.concat(Array.from({ length: n }, (_, i) => frameOf(Kind.Publish, { tag, i }, { channel })));

const SEQUENCES = ['cross-channel', 'cancels', 'taken run', 'reused id', 'after finish', 'after detach', 'in-flight limit', 'dedicated limit'] as const;
type Sequence = (typeof SEQUENCES)[number];

export const hostile: Family = {
  name: 'hostile sequence',
  weight: 6,
  make(rng): FuzzCase {
    const sequence: Sequence = rng.pick(SEQUENCES);
    const run = runId(rng);
    const j = rng.int(1, 50);
    const k = rng.int(1, 50);
    const n = rng.int(4097, 4600);
    return {
      family: 'hostile sequence',
      what: `${sequence} (run ${run}, ${j} and ${k} records${sequence === 'in-flight limit' ? `, ${n} requests` : ''})`,
      heavy: sequence === 'dedicated limit' || sequence === 'in-flight limit',
      run: (env) => SEQUENCE_RUNS[sequence](env, run, j, k, n),
    };
  },
};

type SequenceRun = (env: CaseEnv, run: string, j: number, k: number, n: number) => Promise<Outcome>;

function expectRecords(env: CaseEnv, what: string, got: ReturnType<typeof syncedRecords>, want: number, answer: string): void {
  if (got !== want) env.fail('hostile sequence changed a run', `${what}: ${want} records expected, the answer said ${answer}`);
}

const SEQUENCE_RUNS: Record<Sequence, SequenceRun> = {
  async 'cross-channel'(env, run, j, k) {
    const a = await env.welcomed();
    const b = await env.welcomed();
    const channel = await openOn(env, a, run, 1);
    if (channel === null) return 'answered';
    b.write(publishes(channel, k, 'intruder'));
    const intrusions = [10, 11, 12, 13];
    b.write(Buffer.concat([
      frameOf(Kind.Sync, undefined, { id: 10, channel }), frameOf(Kind.Finish, { status: 'failed' }, { id: 11, channel }),
      frameOf(Kind.Detach, undefined, { id: 12, channel }), frameOf(Kind.Request, { op: 'summary' }, { id: 13, channel }),
    ]));
    await expectAnswers(env, b, intrusions, errorWith(ErrorCode.UnknownRun));
    const warnings = b.received.filter((r) => r.id === 0 && r.error?.code === ErrorCode.UnknownRun).length;
    if (warnings !== 1) env.fail('unknown channel warned wrongly', `${k} records to another connection's channel got ${warnings} UNKNOWN_RUN warnings, expected 1`);
    a.write(publishes(channel, j, 'owner'));
    const synced = await call(a, frameOf(Kind.Sync, undefined, { id: 2, channel }), 2);
    expectRecords(env, `the owner's SYNC after another connection wrote to its channel number`, syncedRecords(synced), j, describe(synced));
    const finished = await call(a, frameOf(Kind.Finish, { status: 'ok' }, { id: 3, channel }), 3);
    expectRecords(env, 'the owner\'s FINISH', syncedRecords(finished), j, describe(finished));
    await hangUp(env, a);
    return 'answered';
  },

  async cancels(env, run) {
    const a = await env.welcomed();
    a.write(Buffer.concat(Array.from({ length: 20 }, (_, i) => frameOf(Kind.Cancel, { reason: 'nothing' }, { id: 5000 + i }))));
    a.expect(1);
    a.write(Buffer.concat([frameOf(Kind.Open, { run }, { id: 1 }), frameOf(Kind.Cancel, undefined, { id: 1 })]));
    await a.until(() => a.answered(1), ANSWER_MS);
    const channel = (a.answers(1)[0]?.value as { channel?: number } | undefined)?.channel;
    if (typeof channel !== 'number') {
      env.fail('cancelled open did not complete', `OPEN followed by CANCEL of its id got ${describe(a.answers(1)[0])}; an OPEN always completes`);
      return expectAnswers(env, a, []);
    }
    a.write(Buffer.concat([
      frameOf(Kind.Request, { op: 'echo', args: 'x' }, { id: 2, channel }), frameOf(Kind.Cancel, undefined, { id: 2 }),
      frameOf(Kind.Request, { op: 'runs.get', args: { run } }, { id: 3 }), frameOf(Kind.Cancel, undefined, { id: 3 }),
      frameOf(Kind.Sync, undefined, { id: 4, channel }), frameOf(Kind.Cancel, undefined, { id: 4 }),
    ]));
    return expectAnswers(env, a, [2, 3, 4], (id, r) => {
      if (id === 4) return r.kind === Kind.Response ? null : `a SYNC followed by CANCEL must still complete, got ${describe(r)}`;
      return r.kind === Kind.Response || r.error?.code === ErrorCode.Cancelled ? null : `expected the answer or CANCELLED, got ${describe(r)}`;
    });
  },

  async 'taken run'(env, run, j, k) {
    const a = await env.welcomed();
    const b = await env.welcomed();
    const channel = await openOn(env, a, run, 1);
    if (channel === null) return 'answered';
    a.write(publishes(channel, j, 'owner'));
    const first = await call(a, frameOf(Kind.Sync, undefined, { id: 2, channel }), 2);
    expectRecords(env, 'the owner\'s first SYNC', syncedRecords(first), j, describe(first));
    for (const [conn, id] of [[b, 20], [a, 21]] as Array<[FuzzConn, number]>) {
      const again = await call(conn, frameOf(Kind.Open, { run }, { id }), id);
      if (again?.error?.code !== ErrorCode.RunExists) env.fail('taken run opened again', `OPEN of open run ${run} by ${conn === a ? 'its owner' : 'another connection'} got ${describe(again)}`);
    }
    const attached = await call(b, frameOf(Kind.Attach, { run }, { id: 22 }), 22);
    const bChannel = (attached?.value as { channel?: number } | undefined)?.channel;
    if (typeof bChannel !== 'number') {
      env.fail('attach refused', `ATTACH to open run ${run} got ${describe(attached)}`);
      return expectAnswers(env, a, []);
    }
    b.write(publishes(bChannel, k, 'co-owner'));
    const bSynced = await call(b, frameOf(Kind.Sync, undefined, { id: 23, channel: bChannel }), 23);
    expectRecords(env, 'the co-owner\'s SYNC', syncedRecords(bSynced), j + k, describe(bSynced));
    b.destroy(); // a co-owner vanishing leaves the run to its other owner
    a.write(publishes(channel, 1, 'owner'));
    const last = await call(a, frameOf(Kind.Sync, undefined, { id: 3, channel }), 3);
    expectRecords(env, 'the owner\'s SYNC after its co-owner vanished', syncedRecords(last), j + k + 1, describe(last));
    return expectAnswers(env, a, []);
  },

  async 'reused id'(env) {
    const a = await env.welcomed();
    const subscribed = await call(a, frameOf(Kind.Request, { op: 'events', args: { topics: ['run'] } }, { id: 5 }), 5);
    if (subscribed?.kind !== Kind.Response) env.fail('subscription refused', `events got ${describe(subscribed)}`);
    a.write(frameOf(Kind.Request, { op: 'status' }, { id: 5 }));
    return expectFatal(env, a, [ErrorCode.BadMessage], true);
  },

  async 'after finish'(env, run, j) {
    const a = await env.welcomed();
    const channel = await openOn(env, a, run, 1);
    if (channel === null) return 'answered';
    a.write(publishes(channel, j, 'x'));
    const done = await call(a, frameOf(Kind.Finish, undefined, { id: 2, channel }), 2);
    expectRecords(env, 'FINISH', syncedRecords(done), j, describe(done));
    a.write(publishes(channel, 3, 'late'));
    a.write(Buffer.concat([
      frameOf(Kind.Sync, undefined, { id: 3, channel }), frameOf(Kind.Finish, undefined, { id: 4, channel }), frameOf(Kind.Attach, { run }, { id: 5 }),
    ]));
    const outcome = await expectAnswers(env, a, [3, 4, 5], errorWith(ErrorCode.UnknownRun));
    const b = await env.welcomed();
    const reopened = await call(b, frameOf(Kind.Open, { run }, { id: 1 }), 1);
    if (reopened?.error?.code !== ErrorCode.RunExists) env.fail('finished run opened again', `OPEN of finished run ${run} got ${describe(reopened)}`);
    await hangUp(env, b);
    return outcome;
  },

  async 'after detach'(env, run, j) {
    const a = await env.welcomed();
    const channel = await openOn(env, a, run, 1);
    if (channel === null) return 'answered';
    a.write(publishes(channel, j, 'x'));
    const detached = await call(a, frameOf(Kind.Detach, undefined, { id: 2, channel }), 2);
    if (detached?.kind !== Kind.Response) env.fail('detach refused', `DETACH got ${describe(detached)}`);
    a.write(publishes(channel, 2, 'late'));
    a.write(Buffer.concat([frameOf(Kind.Sync, undefined, { id: 3, channel }), frameOf(Kind.Request, { op: 'info' }, { id: 4, channel })]));
    return expectAnswers(env, a, [3, 4], errorWith(ErrorCode.UnknownRun));
  },

  async 'in-flight limit'(env, run, _j, _k, n) {
    const a = await env.welcomed();
    const channel = await openOn(env, a, run, 1);
    if (channel === null) return 'answered';
    const ids = Array.from({ length: n }, (_, i) => 100 + i);
    a.write(Buffer.concat(ids.map((id) => frameOf(Kind.Request, { op: 'echo', args: id }, { id, channel }))));
    const outcome = await expectAnswers(env, a, ids, (_id, r) => (r.kind === Kind.Response || r.error?.code === ErrorCode.Overloaded ? null : `expected the echo or OVERLOADED, got ${describe(r)}`));
    env.observe('overloaded answers', ids.filter((id) => a.answers(id)[0]?.error?.code === ErrorCode.Overloaded).length);
    return outcome;
  },

  async 'dedicated limit'(env, run) {
    const a = await env.welcomed();
    const ids = Array.from({ length: 20 }, (_, i) => 40 + i);
    a.write(Buffer.concat(ids.map((id, i) => frameOf(Kind.Open, { run: `${run}-d${i}`, dedicated: true }, { id }))));
    return expectAnswers(env, a, ids, (_id, r) => (r.kind === Kind.Response || r.error?.code === ErrorCode.Overloaded ? null : `expected a channel or OVERLOADED, got ${describe(r)}`));
  },
};
