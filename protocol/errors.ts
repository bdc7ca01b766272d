/**
 * The one error type of muxvisor, its stable codes, and its wire form.
 *
 * Contract: `code` is stable across releases and is what callers branch on; `message` is for
 * people and carries the numbers ("... 16777217 bytes exceeds the limit of 16777216"); `data` is
 * optional plain data (msgpack-encodable) with the same facts for programs. Never match on text.
 */

/** Every code muxvisor puts on the wire or throws. PROTOCOL.md lists each one; a test keeps them equal. */
export const ErrorCode = {
  // Framing and decoding. The connection is closed after this error.
  BadMagic: 'MUXVISOR_BAD_MAGIC',
  UnsupportedVersion: 'MUXVISOR_UNSUPPORTED_VERSION',
  FrameTooLarge: 'MUXVISOR_FRAME_TOO_LARGE',
  Truncated: 'MUXVISOR_TRUNCATED',
  BadFrame: 'MUXVISOR_BAD_FRAME',
  BadPayload: 'MUXVISOR_BAD_PAYLOAD',
  UnknownKind: 'MUXVISOR_UNKNOWN_KIND',
  BadMessage: 'MUXVISOR_BAD_MESSAGE',
  // Handshake. The connection is closed after this error.
  HandshakeRequired: 'MUXVISOR_HANDSHAKE_REQUIRED',
  VersionMismatch: 'MUXVISOR_VERSION_MISMATCH',
  BadToken: 'MUXVISOR_BAD_TOKEN',
  // Outcomes of one request. The connection stays open.
  Timeout: 'MUXVISOR_TIMEOUT',
  Cancelled: 'MUXVISOR_CANCELLED',
  UnknownRun: 'MUXVISOR_UNKNOWN_RUN',
  RunExists: 'MUXVISOR_RUN_EXISTS',
  UnknownOp: 'MUXVISOR_UNKNOWN_OP',
  InvalidArgument: 'MUXVISOR_INVALID_ARGUMENT',
  HandlerError: 'MUXVISOR_HANDLER_ERROR',
  WorkerFailed: 'MUXVISOR_WORKER_FAILED',
  Overloaded: 'MUXVISOR_OVERLOADED',
  ShuttingDown: 'MUXVISOR_SHUTTING_DOWN',
  Storage: 'MUXVISOR_STORAGE',
  UnknownService: 'MUXVISOR_UNKNOWN_SERVICE',
  ServiceExists: 'MUXVISOR_SERVICE_EXISTS',
  ServiceFailed: 'MUXVISOR_SERVICE_FAILED',
  Internal: 'MUXVISOR_INTERNAL',
  // Local to a process; never sent.
  ConnectionClosed: 'MUXVISOR_CONNECTION_CLOSED',
  Unavailable: 'MUXVISOR_UNAVAILABLE',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const knownCodes: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Codes after which the supervisor closes the connection that caused them. */
const fatalCodes: ReadonlySet<string> = new Set<ErrorCode>([
  ErrorCode.BadMagic,
  ErrorCode.UnsupportedVersion,
  ErrorCode.FrameTooLarge,
  ErrorCode.Truncated,
  ErrorCode.BadFrame,
  ErrorCode.BadPayload,
  ErrorCode.UnknownKind,
  ErrorCode.BadMessage,
  ErrorCode.HandshakeRequired,
  ErrorCode.VersionMismatch,
  ErrorCode.BadToken,
]);

/** True for the codes of PROTOCOL.md's "closes the connection" group. */
export function isFatalCode(code: string): boolean {
  return fatalCodes.has(code);
}

/** True when `code` is one this version knows; a newer peer may send others. */
export function isKnownCode(code: string): code is ErrorCode {
  return knownCodes.has(code);
}

/** The error as it travels in an ERROR frame's payload. */
export interface WireError {
  code: string;
  message: string;
  data?: unknown;
}

export interface MuxvisorErrorOptions {
  /** The underlying error, kept for stack traces and logs; never sent on the wire. */
  cause?: unknown;
  /** Plain, msgpack-encodable facts for programs (limits, ids, counts). */
  data?: unknown;
  /** True when the error was received from the peer rather than raised here. */
  remote?: boolean;
}

const brand = Symbol.for('muxvisor.error');

export class MuxvisorError extends Error {
  /**
   * Stable code. A code this version does not know (sent by a newer peer) is kept as received,
   * which is why the type also admits other strings.
   */
  readonly code: ErrorCode;
  readonly data: unknown;
  readonly remote: boolean;

  constructor(code: ErrorCode, message: string, options: MuxvisorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MuxvisorError';
    this.code = code;
    this.data = options.data;
    this.remote = options.remote ?? false;
  }

  /** Works across copies of this module (two installed versions, worker threads). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }

  /** The wire form: code, message and data; `cause` stays local. */
  toWire(): WireError {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }

  /** Rebuilds an error received from the peer; `remote` is set. */
  static fromWire(wire: WireError): MuxvisorError {
    return new MuxvisorError(wire.code as ErrorCode, wire.message, { data: wire.data, remote: true });
  }
}

Object.defineProperty(MuxvisorError.prototype, brand, { value: true });

/** True when `error` is a MuxvisorError, and has `code` if one is given. */
export function isMuxvisorError(error: unknown, code?: ErrorCode): error is MuxvisorError {
  return error instanceof MuxvisorError && (code === undefined || error.code === code);
}
