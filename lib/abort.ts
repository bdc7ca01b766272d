/** An AbortSignal's abort, as the library's typed error. */
import { ErrorCode, MuxvisorError } from '../protocol/index.js';

/** Throws MUXVISOR_CANCELLED (with the signal's reason as `cause`) if `signal` has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw aborted(signal, what);
}

export function aborted(signal: AbortSignal | undefined, what: string): MuxvisorError {
  return new MuxvisorError(ErrorCode.Cancelled, `${what} was aborted`, { cause: signal?.reason });
}
