/** The library's options: typed, documented, validated once in `resolveConnectOptions`. */
import { basename } from 'node:path';
import { defaultHome, ErrorCode, MuxvisorError } from '../protocol/index.js';

export interface ConnectOptions {
  /**
   * The home: where the supervisor keeps its socket, token, run logs and its own log.
   * @default `$MUXVISOR_HOME`, else `$XDG_STATE_HOME/muxvisor`, else `~/.local/state/muxvisor`
   * @example connect({ home: '/scratch/me/muxvisor' })
   */
  home?: string;
  /**
   * How this process appears in the supervisor's diagnostics.
   * @default the running script's file name
   */
  name?: string;
  /**
   * Start the supervisor when none is running.
   * @default true
   */
  start?: boolean;
  /**
   * Deadline for connecting, starting the supervisor if needed, and the handshake. A supervisor
   * that is starting, stopping, or too busy to accept yet (EAGAIN) is waited for until then.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * Deadline of a request that names none. Every request has one.
   * @default 30000
   */
  requestTimeoutMs?: number;
  /** Aborts connecting (and starting). */
  signal?: AbortSignal;
  /**
   * On process exit, write every accepted byte to the supervisor before the process goes; on
   * SIGINT/SIGTERM/SIGHUP with no other handler, finish open runs as `interrupted` first.
   * @default true
   */
  handleExit?: boolean;
  /**
   * Put `MUXVISOR_SERVICE` (and, when a run opens, `MUXVISOR_RUN`) into `process.env`, so child
   * processes reach the same supervisor and can attach to the run.
   * @default true
   */
  exportEnv?: boolean;
  /**
   * `publish` returns false once this many bytes wait in this process for the kernel to take
   * them; `await run.drain()` then waits until they have left. Nothing is dropped.
   * @default 8388608 (8 MiB)
   */
  highWaterBytes?: number;
  /**
   * Above this many waiting bytes, `publish` throws MUXVISOR_OVERLOADED and accepts nothing.
   * @default 268435456 (256 MiB)
   */
  maxBufferedBytes?: number;
  /** Settings for a supervisor that this call starts; an already running one keeps its own. */
  supervisor?: {
    /** @default 600000 (10 minutes) */
    idleTimeoutMs?: number;
    /** @default 2 */
    workers?: number;
    /** @default 5000 */
    watchdogMs?: number;
    /** @default 'info' */
    logLevel?: string;
    /** How often services' CPU and memory are sampled; 0 turns it off. @default 2000 */
    serviceSampleMs?: number;
  };
}

export interface ResolvedConnectOptions {
  readonly home: string;
  /** True when the caller named the home (MUXVISOR_SERVICE is then not consulted). */
  readonly homeGiven: boolean;
  readonly name: string;
  readonly start: boolean;
  readonly timeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly handleExit: boolean;
  readonly exportEnv: boolean;
  readonly highWaterBytes: number;
  readonly maxBufferedBytes: number;
  readonly daemonArgs: readonly string[];
}

export function resolveConnectOptions(options: ConnectOptions = {}): ResolvedConnectOptions {
  const positive = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new MuxvisorError(ErrorCode.InvalidArgument, `Expected \`${name}\` to be a positive integer, got \`${String(v)}\` (${typeof v})`, { data: { option: name } });
    }
    return v;
  };
  const s = options.supervisor ?? {};
  const daemonArgs: string[] = [];
  if (s.idleTimeoutMs !== undefined) daemonArgs.push('--idle-timeout-ms', String(positiveOrZero('supervisor.idleTimeoutMs', s.idleTimeoutMs)));
  if (s.workers !== undefined) daemonArgs.push('--workers', String(positive('supervisor.workers', s.workers, 2)));
  if (s.watchdogMs !== undefined) daemonArgs.push('--watchdog-ms', String(positive('supervisor.watchdogMs', s.watchdogMs, 5000)));
  if (s.logLevel !== undefined) daemonArgs.push('--log-level', s.logLevel);
  if (s.serviceSampleMs !== undefined) daemonArgs.push('--sample-ms', String(positiveOrZero('supervisor.serviceSampleMs', s.serviceSampleMs)));
  return Object.freeze({
    home: options.home ?? defaultHome(),
    homeGiven: options.home !== undefined,
    name: options.name ?? basename(process.argv[1] ?? 'node'),
    start: options.start ?? true,
    timeoutMs: positive('timeoutMs', options.timeoutMs, 10_000),
    requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs, 30_000),
    signal: options.signal,
    handleExit: options.handleExit ?? true,
    exportEnv: options.exportEnv ?? true,
    highWaterBytes: positive('highWaterBytes', options.highWaterBytes, 8 * 1024 * 1024),
    maxBufferedBytes: positive('maxBufferedBytes', options.maxBufferedBytes, 256 * 1024 * 1024),
    daemonArgs: Object.freeze(daemonArgs),
  });
}

function positiveOrZero(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, `Expected \`${name}\` to be an integer >= 0, got \`${String(value)}\``, { data: { option: name } });
  }
  return value;
}
