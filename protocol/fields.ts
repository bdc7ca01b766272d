/**
 * Reading the fields of a decoded payload, with MUXVISOR_BAD_MESSAGE naming the message, the
 * field, what it must be and what it was. Unknown fields are ignored (newer peers may add some).
 */
import { ErrorCode, MuxvisorError } from './errors.js';

export type Body = Record<string, unknown>;

const MAX_U32 = 0xffff_ffff;

export function badMessage(what: string, problem: string, data?: Record<string, unknown>): MuxvisorError {
  return new MuxvisorError(ErrorCode.BadMessage, `${what}: ${problem}`, { data: { message: what, ...data } });
}

/** The payload as a map; `what` names the message in errors ("hello"). */
export function asBody(what: string, value: unknown): Body {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value) || value instanceof Date) {
    throw badMessage(what, `payload must be a map, got ${describe(value)}`);
  }
  return value as Body;
}

function wrongType(what: string, field: string, expected: string, value: unknown): MuxvisorError {
  return badMessage(what, `field \`${field}\` must be ${expected}, got ${describe(value)}`, { field });
}

export function str(what: string, body: Body, field: string, maxLength = 4096): string {
  const value = body[field];
  if (typeof value !== 'string') throw wrongType(what, field, 'a string', value);
  if (value.length > maxLength) throw wrongType(what, field, `a string of at most ${maxLength} characters`, `${value.length} characters`);
  return value;
}

export function optStr(what: string, body: Body, field: string, maxLength?: number): string | undefined {
  return body[field] === undefined || body[field] === null ? undefined : str(what, body, field, maxLength);
}

/** A safe integer in `min..max`. Integers beyond 32 bits may arrive as float64 (msgpackr sends them so). */
export function int(what: string, body: Body, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const value = body[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw wrongType(what, field, `an integer in ${min}..${max}`, value);
  }
  return value;
}

export function optInt(what: string, body: Body, field: string, min?: number, max?: number): number | undefined {
  return body[field] === undefined || body[field] === null ? undefined : int(what, body, field, min, max);
}

export function bool(what: string, body: Body, field: string): boolean {
  const value = body[field];
  if (typeof value !== 'boolean') throw wrongType(what, field, 'a boolean', value);
  return value;
}

export function optBool(what: string, body: Body, field: string): boolean | undefined {
  return body[field] === undefined || body[field] === null ? undefined : bool(what, body, field);
}

export function strArray(what: string, body: Body, field: string, maxItems = 256): string[] {
  const value = body[field];
  if (!Array.isArray(value) || value.length > maxItems || !value.every((item) => typeof item === 'string')) {
    throw wrongType(what, field, `an array of at most ${maxItems} strings`, value);
  }
  return value as string[];
}

export function map(what: string, body: Body, field: string): Body {
  const value = body[field];
  try {
    return asBody(what, value);
  } catch {
    throw wrongType(what, field, 'a map', value);
  }
}

/** A header id or channel that must be set (1..2^32-1) or must be 0. */
export function headerField(what: string, field: 'id' | 'channel', value: number, required: boolean): number {
  if (required ? value < 1 || value > MAX_U32 : value !== 0) {
    throw badMessage(what, `header \`${field}\` must be ${required ? 'non-zero' : '0'}, got ${value}`, { field });
  }
  return value;
}

export function describe(value: unknown): string {
  if (value === null) return 'nil';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (Buffer.isBuffer(value)) return `${value.length} bytes of binary`;
  if (value instanceof Date) return 'a timestamp';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  if (typeof value === 'object') return 'a map';
  return `${typeof value} ${String(value)}`;
}
