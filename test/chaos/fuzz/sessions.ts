/**
 * Families of whole conversations: floods of HELLO (many connections at once, many HELLOs on one
 * connection, a connection that never says hello), requests for runs, channels, ops and services
 * that do not exist, and well-formed but hostile sequences between connections (publishing to
 * another connection's channel, cancelling what is not in flight, opening a run that is taken,
 * reusing a live id, using a run after finishing it, exceeding the in-flight limit).
 */
import { ErrorCode, Kind } from '../../../protocol/index.js';
import { ANSWER_MS, type CaseEnv, errorWith, expectAnswers, expectFatal, type Family, type FuzzCase, hangUp, Ids } from './case.js';
import type { FuzzConn, Received } from './conn.js';
import { runId } from './bytes.js';
import { frameOf, helloBody, helloFrame } from './wire.js';

export const helloFlood: Family = {
  name: 'hello flood',
  weight: 4,
  make(rng): FuzzCase {
    const variant = rng.chance(0.015) ? 'silent' : rng.pick(['many connections', 'many connections', 'one connection'] as const);
    if (variant === 'silent') {
      return {
        family: 'hello flood', what: 'a connection that never says hello',
        async run(env) {
          const conn = await env.connect();
          // The supervisor's HELLO deadline (5 s) plus slack.
          if (!(await conn.endedWithin(8_000))) env.fail('bad connection neither answered nor closed', 'a connection that sent nothing was still open 8 s later (the HELLO deadline is 5 s)');
          return expectFatal(env, conn, [ErrorCode.Timeout], false);
        },
      };
    }
    if (variant === 'one connection') {
      const count = rng.int(2, 300);
      return {
        family: 'hello flood', what: `${count} HELLOs on one connection`,
        async run(env) {
          const conn = await env.connect();
          const hello = helloFrame(env.target.token);
          conn.write(Buffer.concat(Array.from({ length: count }, () => hello)));
          const outcome = await expectFatal(env, conn, [ErrorCode.BadMessage], true);
          if (conn.received[0]?.kind !== Kind.Welcome) env.fail('valid hello refused', `the first of ${count} HELLOs got ${JSON.stringify(conn.received[0] ?? null)}`);
          return outcome;
        },
      };
    }
    const count = rng.int(8, 48);
    const kinds = Array.from({ length: count }, () => rng.pick(['good', 'good', 'good', 'token', 'versions'] as const));
    return {
      family: 'hello flood', what: `${count} connections saying HELLO at once (${kinds.filter((k) => k !== 'good').length} of them wrongly)`,
      async run(env) {
        const conns = await Promise.all(kinds.map(() => env.connect()));
        conns.forEach((conn, i) => {
          const body = helloBody(kinds[i] === 'token' ? 'f'.repeat(64) : env.target.token);
          if (kinds[i] === 'versions') body.versions = [7, 9];
          conn.write(helloFrame('', body));
        });
        await Promise.all(conns.map((conn) => conn.until(() => conn.received.length > 0, ANSWER_MS)));
        conns.forEach((conn, i) => {
          const got = conn.received[0];
          const want = kinds[i] === 'good' ? 'welcome' : kinds[i] === 'token' ? ErrorCode.BadToken : ErrorCode.VersionMismatch;
          const saw = got === undefined ? 'nothing' : got.kind === Kind.Welcome ? 'welcome' : got.error?.code;
          if (saw !== want) env.fail('hello answered wrongly', `connection ${i + 1} of ${count} (${kinds[i]} hello) got ${saw}, expected ${want}`);
        });
        await Promise.all(conns.map((conn) => hangUp(env, conn)));
        return 'answered';
      },
    };
  },
};

export const unknowns: Family = {
  name: 'unknown names',
  weight: 6,
  make(rng): FuzzCase {
    const ids = new Ids();
    const channel = rng.pick([1, 2, 0x7fff_ffff, 0xffff_ffff, rng.int(3, 1_000_000)]);
    const ghost = runId(rng);
    const asks: Array<{ what: string; frame: Buffer; id: number; codes: string[] }> = [];
    const ask = (what: string, kind: number, body: unknown, ch: number, codes: string[]) => {
      const id = ids.next();
      asks.push({ what, frame: frameOf(kind, body, { id, channel: ch }), id, codes });
    };
    const menu = [
      () => ask('attach', Kind.Attach, { run: ghost }, 0, [ErrorCode.UnknownRun]),
      () => ask('runs.get', Kind.Request, { op: 'runs.get', args: { run: ghost } }, 0, [ErrorCode.UnknownRun]),
      () => ask('runs.read', Kind.Request, { op: 'runs.read', args: { run: ghost, last: 5 } }, 0, [ErrorCode.UnknownRun]),
      () => ask('runs.verify', Kind.Request, { op: 'runs.verify', args: { run: ghost } }, 0, [ErrorCode.UnknownRun]),
      () => ask('sync', Kind.Sync, undefined, channel, [ErrorCode.UnknownRun]),
      () => ask('finish', Kind.Finish, { status: 'failed' }, channel, [ErrorCode.UnknownRun]),
      () => ask('detach', Kind.Detach, undefined, channel, [ErrorCode.UnknownRun]),
      () => ask('a run request', Kind.Request, { op: 'summary' }, channel, [ErrorCode.UnknownRun]),
      () => ask('an unknown op', Kind.Request, { op: `no.such.op.${rng.int(0, 999)}` }, 0, [ErrorCode.UnknownOp]),
      () => ask('an op of 256 characters', Kind.Request, { op: 'o'.repeat(256) }, 0, [ErrorCode.UnknownOp]),
      () => ask('services.get', Kind.Request, { op: 'services.get', args: { name: 'no-such-service' } }, 0, [ErrorCode.UnknownService]),
      () => ask('services.stop', Kind.Request, { op: 'services.stop', args: { name: 'no-such-service' } }, 0, [ErrorCode.UnknownService]),
      () => ask('services.wait', Kind.Request, { op: 'services.wait', args: { name: 'ghost' } }, 0, [ErrorCode.UnknownService]),
    ];
    for (let i = rng.int(1, 8); i > 0; i--) rng.pick(menu)();
    const publishChannels = [...new Set(Array.from({ length: rng.int(0, 4) }, () => rng.int(1, 50)))];
    const records = rng.int(1, 20);
    const runOp = rng.chance(0.3);
    return {
      family: 'unknown names',
      what: `${asks.map((a) => a.what).join(', ')}${publishChannels.length ? `, ${records} records to each of channels ${publishChannels.join(', ')}` : ''}${runOp ? ', an unknown op of a run' : ''}`,
      async run(env) {
        const conn = await env.welcomed();
        const byId = new Map(asks.map((a) => [a.id, a]));
        conn.write(Buffer.concat([...asks.map((a) => a.frame), ...publishChannels.flatMap((ch) => Array.from({ length: records }, (_, i) => frameOf(Kind.Publish, { i }, { channel: ch })))]));
        let extra: number[] = [];
        if (runOp) {
          const opened = await openOn(env, conn, runId(rng), 900);
          if (opened !== null) {
            conn.write(frameOf(Kind.Request, { op: 'no-such-run-op' }, { id: 901, channel: opened }));
            byId.set(901, { what: 'unknown run op', frame: Buffer.alloc(0), id: 901, codes: [ErrorCode.UnknownOp] });
            extra = [901];
          }
        }
        const outcome = await expectAnswers(env, conn, [...asks.map((a) => a.id), ...extra], (id, a) => errorWith(...(byId.get(id)?.codes ?? []))(id, a));
        // One UNKNOWN_RUN (id 0) per channel that got records, not one per record.
        const warnings = conn.received.filter((r) => r.kind === Kind.Error && r.id === 0 && !r.fatal);
        if (warnings.length !== publishChannels.length || warnings.some((w) => w.error?.code !== ErrorCode.UnknownRun)) {
          env.fail('unknown channel warned wrongly', `${records} records to each of ${publishChannels.length} unknown channels got ${warnings.length} warnings (${warnings.map((w) => w.error?.code).join(', ')}), expected one UNKNOWN_RUN per channel`);
        }
        return outcome;
      },
    };
  },
};

/** Sends OPEN of `run` as request `id` on `conn` and returns its channel, or null (a violation was recorded). */
export async function openOn(env: CaseEnv, conn: FuzzConn, run: string, id: number, extra: Record<string, unknown> = {}): Promise<number | null> {
  conn.expect(id);
  conn.write(frameOf(Kind.Open, { run, ...extra }, { id }));
  await conn.until(() => conn.answered(id), ANSWER_MS);
  const channel = (conn.answers(id)[0]?.value as { channel?: unknown } | undefined)?.channel;
  if (typeof channel === 'number') return channel;
  env.fail('open refused', `OPEN of ${run} got ${describe(conn.answers(id)[0])}`);
  return null;
}

/** Sends a request and waits for its one answer (undefined after the deadline). */
export async function call(conn: FuzzConn, frame: Buffer, id: number): Promise<Received | undefined> {
  conn.expect(id);
  conn.write(frame);
  await conn.until(() => conn.answered(id), ANSWER_MS);
  return conn.answers(id)[0];
}

export function describe(r: Received | undefined): string {
  if (r === undefined) return 'no answer';
  if (r.error) return `${r.error.code}: ${r.error.message}`;
  return JSON.stringify(r.value ?? `kind ${r.kind}`);
}

/** `records` of a SYNC answer, or NaN. */
export const syncedRecords = (r: Received | undefined) => Number((r?.value as { records?: unknown } | undefined)?.records ?? Number.NaN);

