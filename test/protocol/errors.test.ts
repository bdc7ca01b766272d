import { describe, expect, it } from 'vitest';
import { ErrorCode, isFatalCode, isKnownCode, isMuxvisorError, MuxvisorError } from '../../protocol/index.js';

describe('MuxvisorError', () => {
  it('round-trips through its wire form: code, message and data, and nothing local', () => {
    const cause = new Error('disk said no');
    const error = new MuxvisorError(ErrorCode.Storage, 'append to run r1 failed: ENOSPC', { cause, data: { run: 'r1', free: 0 } });
    const wire = error.toWire();
    expect(wire).toEqual({ code: 'MUXVISOR_STORAGE', message: 'append to run r1 failed: ENOSPC', data: { run: 'r1', free: 0 } });
    const back = MuxvisorError.fromWire(wire);
    expect(back.toWire()).toEqual(wire);
    expect(back.remote).toBe(true);
    expect(back.cause).toBeUndefined();
    expect(error.cause).toBe(cause);
    expect(new MuxvisorError(ErrorCode.Timeout, 'late').toWire()).toEqual({ code: 'MUXVISOR_TIMEOUT', message: 'late' });
  });

  it('keeps a code from a newer peer as received', () => {
    const error = MuxvisorError.fromWire({ code: 'MUXVISOR_FROM_THE_FUTURE', message: 'x' });
    expect(error.code).toBe('MUXVISOR_FROM_THE_FUTURE');
    expect(isKnownCode(error.code)).toBe(false);
  });

  it('is recognised across copies of the module by its brand, not by class identity', () => {
    const foreign = Object.create(Object.getPrototypeOf(new Error('x')), {
      [Symbol.for('muxvisor.error')]: { value: true },
      code: { value: ErrorCode.Timeout },
    });
    expect(foreign instanceof MuxvisorError).toBe(true);
    expect(isMuxvisorError(foreign, ErrorCode.Timeout)).toBe(true);
    expect(isMuxvisorError(new Error('plain'))).toBe(false);
    expect(isMuxvisorError(null)).toBe(false);
  });

  it('is an Error with a name and stack', () => {
    const error = new MuxvisorError(ErrorCode.Internal, 'x');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('MuxvisorError');
    expect(error.stack).toContain('errors.test.ts');
  });

  it('every code is MUXVISOR_ and upper snake case, and the framing and handshake codes are fatal', () => {
    for (const code of Object.values(ErrorCode)) expect(code).toMatch(/^MUXVISOR_[A-Z_]+$/);
    expect(isFatalCode(ErrorCode.BadMagic)).toBe(true);
    expect(isFatalCode(ErrorCode.BadToken)).toBe(true);
    expect(isFatalCode(ErrorCode.Timeout)).toBe(false);
    expect(isFatalCode(ErrorCode.UnknownRun)).toBe(false);
  });
});
