import { expect } from 'vitest';
import { type ErrorCode, MuxvisorError } from '../../protocol/index.js';

/** Runs `fn`, expects it to throw a MuxvisorError with `code`, and returns that error. */
export function expectMuxvisorError(fn: () => unknown, code: ErrorCode): MuxvisorError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `expected ${code} to be thrown`).toBeInstanceOf(MuxvisorError);
  expect((thrown as MuxvisorError).code).toBe(code);
  return thrown as MuxvisorError;
}

/** Awaits `promise`, expects it to reject with a MuxvisorError, and returns that error. */
export async function rejection(promise: Promise<unknown>): Promise<MuxvisorError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error, 'expected a rejection').toBeInstanceOf(MuxvisorError);
  return error as MuxvisorError;
}
