/**
 * The supervisor's options: typed, documented, validated once here, never mutated after.
 */
import { DEFAULT_MAX_PAYLOAD_BYTES, ErrorCode, MAX_U32, MuxvisorError } from '../protocol/index.js';

export interface SupervisorOptions {
  /** The home directory (see protocol/discovery.ts). Required. */
  home: string;
  /**
   * Exit after this long with no client connected and no run open. 0 never exits on idleness.
   * @default 600000 (10 minutes)
   * @example { idleTimeoutMs: 30_000 }
   */
  idleTimeoutMs?: number;
  /** Drain and exit when the process with this pid is gone (checked every second). */
  parentPid?: number;
  /**
   * Worker threads shared by runs. Each run's handler lives on one of them.
   * @default 2
   */
  workers?: number;
  /**
   * How long a SIGTERM/SIGINT drain may take before the supervisor exits anyway.
   * @default 10000
   */
  drainTimeoutMs?: number;
  /**
   * The deadline of a request that names none, and the longest any request may ask for.
   * @default 60000
   */
  requestTimeoutMs?: number;
  /**
   * A worker thread that sends no heartbeat for this long is declared hung and replaced; its runs
   * are restarted from their logs.
   * @default 5000
   */
  watchdogMs?: number;
  /**
   * While a run log has data that is not yet fsynced, fsync it at least this often. Sync requests
   * and finish fsync at once regardless.
   * @default 1000
   */
  fsyncIntervalMs?: number;
  /** @default 16777216 (16 MiB) */
  maxPayloadBytes?: number;
  /**
   * Requests one connection may have unanswered at once; more are answered MUXVISOR_OVERLOADED.
   * @default 4096
   */
  maxInFlight?: number;
  /**
   * How long a new connection has to send HELLO.
   * @default 5000
   */
  handshakeTimeoutMs?: number;
  /**
   * Bytes of answers queued for a client that does not read them before the supervisor stops
   * reading that client's requests (it resumes when they drain).
   * @default 4194304 (4 MiB)
   */
  outputHighWaterBytes?: number;
  /**
   * Record bytes on their way to one worker thread before the supervisor stops reading the
   * connections that feed it (backpressure). Each worker gets twice this much shared memory for
   * batches (pages are used only as they fill). It bounds how long a request waits behind other
   * runs' records on the same worker: at 8 MiB a quiet client's REQUEST waited 28 ms (p50) while
   * 10 clients flooded, at 1 MiB 14 ms, with the same publish throughput (BENCHMARKS.md).
   * @default 1048576 (1 MiB)
   */
  workerHighWaterBytes?: number;
  /**
   * Runs opened with `dedicated` (a worker thread each) that may exist at once; more are refused
   * with MUXVISOR_OVERLOADED.
   * @default 16
   */
  maxDedicatedWorkers?: number;
  /**
   * How often CPU and memory of every service's process tree are sampled; 0 turns sampling off.
   * @default 2000
   */
  serviceSampleMs?: number;
  /** pino level. @default 'info' */
  logLevel?: string;
}

export type ResolvedOptions = Readonly<Required<Omit<SupervisorOptions, 'parentPid'>>> & { readonly parentPid: number | null };

export function resolveOptions(options: SupervisorOptions): ResolvedOptions {
  if (typeof options.home !== 'string' || options.home.length === 0) {
    throw invalid('home', options.home, 'a non-empty path');
  }
  const int = (name: keyof SupervisorOptions, fallback: number, min: number, max = MAX_U32): number => {
    const value = options[name] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw invalid(name, value, `an integer in ${min}..${max}`);
    }
    return value;
  };
  const parentPid = options.parentPid === undefined ? null : int('parentPid', 0, 1);
  return Object.freeze({
    home: options.home,
    idleTimeoutMs: int('idleTimeoutMs', 600_000, 0),
    parentPid,
    workers: int('workers', 2, 1, 64),
    drainTimeoutMs: int('drainTimeoutMs', 10_000, 0),
    requestTimeoutMs: int('requestTimeoutMs', 60_000, 1),
    watchdogMs: int('watchdogMs', 5_000, 100),
    fsyncIntervalMs: int('fsyncIntervalMs', 1_000, 1),
    maxPayloadBytes: int('maxPayloadBytes', DEFAULT_MAX_PAYLOAD_BYTES, 1),
    maxInFlight: int('maxInFlight', 4096, 1),
    handshakeTimeoutMs: int('handshakeTimeoutMs', 5_000, 1),
    outputHighWaterBytes: int('outputHighWaterBytes', 4 * 1024 * 1024, 1),
    workerHighWaterBytes: int('workerHighWaterBytes', 1024 * 1024, 64 * 1024),
    maxDedicatedWorkers: int('maxDedicatedWorkers', 16, 0, 1024),
    serviceSampleMs: int('serviceSampleMs', 2_000, 0, 3_600_000),
    logLevel: options.logLevel ?? 'info',
  });
}

function invalid(name: string, value: unknown, expected: string): MuxvisorError {
  return new MuxvisorError(ErrorCode.InvalidArgument, `Expected \`${name}\` to be ${expected}, got \`${String(value)}\` (${typeof value})`, {
    data: { option: name },
  });
}
