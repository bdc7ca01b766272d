/**
 * Wrong types in every field of every message kind a client sends (PROTOCOL.md section 4,
 * protocol/messages.ts and fields.ts): one field of an otherwise valid message gets a value of
 * another type, a string one longer than its limit, a number out of range, nil, or is left out;
 * or the payload is not a map; or a header field breaks its kind's rule. And `args` of wrong
 * types for every supervisor operation. Each value has one right answer, which PROTOCOL.md
 * gives: BAD_MESSAGE (fatal) for a wrong field; VERSION_MISMATCH, BAD_TOKEN for the handshake's
 * own refusals; INVALID_ARGUMENT (answered) for a run id that is a string but not a run id; and
 * nil in an optional field is read as absent, so that message is accepted. Header rules: headers.ts.
 */
import { ErrorCode, Kind } from '../../../protocol/index.js';
import type { Rng } from '../random.js';
import { anyAnswer, type CaseEnv, errorWith, expectAnswers, expectFatal, type Family, type FuzzCase, type Outcome } from './case.js';
import { badHeader } from './headers.js';
import { frameOf, helloBody, sampleValues } from './wire.js';

type FieldType =
  | { t: 'str'; max: number }
  | { t: 'int'; min: number; max: number }
  | { t: 'bool' }
  | { t: 'strArray' }
  | { t: 'versions' }
  | { t: 'status' }
  | { t: 'token' }
  | { t: 'run' };

interface KindSpec {
  name: string;
  kind: number;
  /** A valid payload map (the token is filled in at run time). */
  base(token: string, rng: Rng): Record<string, unknown>;
  fields: Array<{ field: string; type: FieldType; optional: boolean }>;
  /** What the valid message gets: an answer to its id, a WELCOME, or nothing (a PING probes). */
  id: boolean;
  channel: number;
}

const STR = (max: number): FieldType => ({ t: 'str', max });
const U32 = 0xffff_ffff;

const SPECS: readonly KindSpec[] = [
  {
    name: 'hello', kind: Kind.Hello, id: false, channel: 0,
    base: (token) => helloBody(token),
    fields: [
      { field: 'versions', type: { t: 'versions' }, optional: false },
      { field: 'token', type: { t: 'token' }, optional: false },
      { field: 'pid', type: { t: 'int', min: 0, max: Number.MAX_SAFE_INTEGER }, optional: false },
      { field: 'name', type: STR(256), optional: false },
      { field: 'caps', type: { t: 'strArray' }, optional: true },
    ],
  },
  { name: 'goodbye', kind: Kind.Goodbye, id: false, channel: 0, base: () => ({ reason: 'fuzz' }), fields: [{ field: 'reason', type: STR(4096), optional: false }] },
  {
    name: 'error', kind: Kind.Error, id: false, channel: 0,
    base: () => ({ code: 'MUXVISOR_TIMEOUT', message: 'from a client' }),
    fields: [
      { field: 'code', type: STR(256), optional: false },
      { field: 'message', type: STR(65536), optional: false },
      { field: 'fatal', type: { t: 'bool' }, optional: true },
    ],
  },
  {
    name: 'request', kind: Kind.Request, id: true, channel: 0,
    base: () => ({ op: 'status', timeoutMs: 5000 }),
    fields: [
      { field: 'op', type: STR(256), optional: false },
      { field: 'timeoutMs', type: { t: 'int', min: 0, max: U32 }, optional: true },
    ],
  },
  { name: 'cancel', kind: Kind.Cancel, id: true, channel: 0, base: () => ({ reason: 'fuzz' }), fields: [{ field: 'reason', type: STR(4096), optional: true }] },
  {
    name: 'open', kind: Kind.Open, id: true, channel: 0,
    base: (_t, rng) => ({ run: `fuzz-t${rng.int(0, 0x7fff_ffff).toString(36)}`, config: { a: 1 } }),
    fields: [
      { field: 'run', type: { t: 'run' }, optional: false },
      { field: 'handler', type: STR(4096), optional: true },
      { field: 'dedicated', type: { t: 'bool' }, optional: true },
    ],
  },
  { name: 'attach', kind: Kind.Attach, id: true, channel: 0, base: (_t, rng) => ({ run: `fuzz-a${rng.int(0, 0x7fff_ffff).toString(36)}` }), fields: [{ field: 'run', type: { t: 'run' }, optional: false }] },
  {
    name: 'finish', kind: Kind.Finish, id: true, channel: 5,
    base: () => ({ status: 'ok', exitCode: 0, reason: 'fuzz' }),
    fields: [
      { field: 'status', type: { t: 'status' }, optional: true },
      { field: 'exitCode', type: { t: 'int', min: -0x8000_0000, max: 0x7fff_ffff }, optional: true },
      { field: 'reason', type: STR(4096), optional: true },
    ],
  },
];

const isSafeIn = (v: unknown, min: number, max: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;

/** Whether `value` is acceptable for `type` (as a present, non-nil value). */
function fits(type: FieldType, value: unknown): boolean {
  switch (type.t) {
    case 'str': case 'token': case 'run': return typeof value === 'string' && value.length <= (type.t === 'str' ? type.max : type.t === 'token' ? 1024 : 256);
    case 'int': return isSafeIn(value, type.min, type.max);
    case 'bool': return typeof value === 'boolean';
    case 'strArray': return Array.isArray(value) && value.length <= 256 && value.every((s) => typeof s === 'string');
    case 'versions': return false; // every sample is wrong for [min, max]
    case 'status': return value === 'ok' || value === 'failed' || value === 'interrupted';
  }
}

interface Wrong {
  label: string;
  value: unknown;
  /** Left out entirely (only for required fields: that is wrong). */
  omit?: boolean;
  /** The fatal code, or an answer's code, or 'accepted'. */
  expect: { fatal: string } | { answer: string } | 'accepted';
}

/** Every wrong (and every borderline right) value for one field. */
function wrongValues(type: FieldType, optional: boolean): Wrong[] {
  const bad = { fatal: ErrorCode.BadMessage };
  const out: Wrong[] = sampleValues().filter((s) => s.value !== null && !fits(type, s.value)).map((s) => ({ label: s.name, value: s.value, expect: bad }));
  out.push(optional ? { label: 'nil (absent)', value: null, expect: 'accepted' } : { label: 'nil', value: null, expect: bad });
  if (!optional) out.push({ label: 'missing', value: undefined, omit: true, expect: bad });
  if (type.t === 'str') out.push({ label: `a string of ${type.max + 1}`, value: 's'.repeat(type.max + 1), expect: bad });
  if (type.t === 'int') out.push({ label: 'below the minimum', value: type.min - 1, expect: bad }, { label: 'above the maximum', value: type.max === Number.MAX_SAFE_INTEGER ? 2 ** 60 : type.max + 1, expect: bad });
  if (type.t === 'strArray') out.push({ label: '257 strings', value: Array.from({ length: 257 }, () => 'c'), expect: bad }, { label: 'a number among strings', value: ['a', 1], expect: bad });
  if (type.t === 'status') out.push({ label: '"crashed"', value: 'crashed', expect: bad }, { label: '"OK"', value: 'OK', expect: bad });
  if (type.t === 'token') {
    out.push({ label: 'a string of 1025', value: 't'.repeat(1025), expect: bad }, { label: 'another token', value: '0'.repeat(64), expect: { fatal: ErrorCode.BadToken } }, { label: 'empty', value: '', expect: { fatal: ErrorCode.BadToken } });
  }
  if (type.t === 'versions') {
    for (const v of [[1], [1, 1, 1], [0, 1], [1, 65536], [2, 1], ['1', '1'], [1.5, 2], [-1, 1]]) out.push({ label: JSON.stringify(v), value: v, expect: bad });
    out.push({ label: '[2, 9] (no common version)', value: [2, 9], expect: { fatal: ErrorCode.VersionMismatch } });
  }
  if (type.t === 'run') {
    out.push({ label: 'a string of 257', value: 'r'.repeat(257), expect: bad });
    for (const run of ['', '../etc', '/etc/passwd', '.hidden', 'a/b', 'r'.repeat(129), 'ünï', ' lead', 'nul\u0000', '-dash']) {
      out.push({ label: `run id ${JSON.stringify(run.length > 20 ? `${run.slice(0, 8)}…(${run.length})` : run)}`, value: run, expect: { answer: ErrorCode.InvalidArgument } });
    }
  }
  return out;
}

export const wrongTypes: Family = {
  name: 'wrong types',
  weight: 14,
  make(rng): FuzzCase {
    const spec = rng.pick(SPECS);
    const shape = rng.int(0, 7);
    // 1 in 8 each: the payload itself is not a map, or a header field breaks the kind's rule.
    if (shape === 0) return notAMap(spec, rng);
    if (shape === 1) return badHeader(rng);
    const field = rng.pick(spec.fields);
    const wrong = rng.pick(wrongValues(field.type, field.optional));
    const base = spec.base('', rng);
    return {
      family: 'wrong types',
      what: `${spec.name} with \`${field.field}\` = ${wrong.label}`,
      async run(env) {
        const body: Record<string, unknown> = { ...base, ...(spec.kind === Kind.Hello ? { token: env.target.token } : {}) };
        if (wrong.omit) delete body[field.field];
        else body[field.field] = wrong.value;
        return send(env, spec, body, wrong.expect, 21);
      },
    };
  },
};

/** Sends `body` as `spec`'s message and judges it by `expect`. */
async function send(env: CaseEnv, spec: KindSpec, body: unknown, expect: Wrong['expect'], id: number): Promise<Outcome> {
  const conn = spec.kind === Kind.Hello ? await env.connect() : await env.welcomed();
  conn.write(frameOf(spec.kind, body, { id: spec.id ? id : 0, channel: spec.channel }));
  if (expect !== 'accepted' && 'fatal' in expect) return expectFatal(env, conn, [expect.fatal], true);
  if (expect !== 'accepted') return expectAnswers(env, conn, [id], errorWith(expect.answer));
  // Accepted: HELLO gets a WELCOME, a GOODBYE closes cleanly, FINISH on a channel with no run is
  // answered UNKNOWN_RUN, a CANCEL or a client's ERROR gets nothing; the rest are answered.
  if (spec.kind === Kind.Goodbye) {
    conn.end();
    if (!(await conn.endedWithin(3_000))) env.fail('bad connection neither answered nor closed', 'a GOODBYE did not lead to a close');
    conn.destroy();
    return 'closed';
  }
  const outcome = await expectAnswers(env, conn, spec.id && spec.kind !== Kind.Cancel ? [id] : [], spec.kind === Kind.Finish ? errorWith(ErrorCode.UnknownRun) : anyAnswer);
  if (spec.kind === Kind.Hello && !conn.received.some((r) => r.kind === Kind.Welcome)) env.fail('valid hello refused', `a HELLO with nil in an optional field got no WELCOME: ${JSON.stringify(conn.received.map((r) => r.error?.message ?? r.kind))}`);
  return outcome;
}

function notAMap(spec: KindSpec, rng: Rng): FuzzCase {
  const sample = rng.pick(sampleValues().filter((s) => typeof s.value !== 'object' || s.value === null || Array.isArray(s.value) || Buffer.isBuffer(s.value) || s.value instanceof Date));
  // CANCEL and FINISH may have no payload at all; a nil payload is still a nil, not a map.
  return {
    family: 'wrong types',
    what: `${spec.name} whose payload is ${sample.name}`,
    run: (env) => send(env, spec, sample.value, { fatal: ErrorCode.BadMessage }, 22),
  };
}

/** Supervisor operations and their argument names (PROTOCOL.md section 6); `shutdown` is never sent. */
const OPS: Record<string, string[]> = {
  status: [], 'connections.list': [], 'runs.list': ['recorded'], 'runs.get': ['run', 'summary'], 'runs.read': ['run', 'from', 'last', 'limit'],
  'runs.verify': ['run'], events: ['topics', 'since'], 'services.add': ['definition', 'inherited', 'replace', 'start'], 'services.list': [],
  'services.get': ['name'], 'services.start': ['name', 'inherited'], 'services.restart': ['name'], 'services.stop': ['name', 'timeoutMs'],
  'services.remove': ['name'], 'services.wait': ['name'], 'services.logs': ['name', 'lines', 'follow'], 'services.events': ['since'],
};

/** Run ids that are paths: no op may answer them with a result. */
const PATHS = ['../etc', '/etc/passwd', '..', '.', '../../../../tmp', 'runs/../..'];

export const wrongArgs: Family = {
  name: 'wrong args',
  weight: 6,
  make(rng): FuzzCase {
    const op = rng.pick(Object.keys(OPS));
    const names = OPS[op] as string[];
    const samples = sampleValues();
    const args: Record<string, unknown> | unknown = rng.chance(0.2) || names.length === 0
      ? rng.pick(samples).value
      : Object.fromEntries(names.filter(() => rng.chance(0.7)).map((n) => [n, n === 'run' && rng.chance(0.4) ? rng.pick(PATHS) : rng.pick(samples).value]));
    const pathRun = typeof args === 'object' && args !== null && PATHS.includes((args as { run?: unknown }).run as string);
    return {
      family: 'wrong args',
      what: `${op} with args ${describeArgs(args)}`,
      async run(env) {
        const conn = await env.welcomed();
        conn.write(frameOf(Kind.Request, { op, args, timeoutMs: 3000 }, { id: 31 }));
        return expectAnswers(env, conn, [31], pathRun ? errorWith(ErrorCode.InvalidArgument, ErrorCode.UnknownRun) : anyAnswer);
      },
    };
  },
};

function describeArgs(args: unknown): string {
  try {
    const text = JSON.stringify(args, (_k, v) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'string' && v.length > 20 ? `${v.slice(0, 8)}…(${v.length})` : v));
    return text === undefined ? String(args) : text.slice(0, 120);
  } catch {
    return String(args);
  }
}
