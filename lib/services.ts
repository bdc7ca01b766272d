/**
 * Services through the supervisor: `client.services.add(definition)` starts a companion process
 * (TensorBoard, a web server, Redis, ...) that the supervisor probes, restarts, measures and
 * stops with its whole process tree; `get(name)` says how to reach it.
 *
 * ```ts
 * const web = await client.services.add(templates.httpServer({ dir: 'out' }));
 * console.log(web.url); // http://127.0.0.1:38147/ : ready, since add() waits for readiness
 * ```
 * Contracts: calls that start something (add, start, restart) wait for readiness unless given
 * `wait: false`, and reject MUXVISOR_SERVICE_FAILED with the reason (exit code, last lines,
 * probe result) when the service fails instead; every call has a deadline and takes a signal.
 */
import {
  ErrorCode, type Event, Kind, MuxvisorError, type ServiceDefinition, type ServiceEvent, type ServiceStatus,
} from '../protocol/index.js';
import type { CallOptions, ClientConnection } from './connection.js';

export type { ReadinessProbe, RestartPolicy, ServiceDefinition, ServiceEvent, ServiceExit, ServiceState, ServiceStatus } from '../protocol/index.js';

export interface StartOptions extends CallOptions {
  /** Wait until the service is ready (its probe passed). @default true */
  wait?: boolean;
}

export interface AddOptions extends StartOptions {
  /** Replace a service of the same name (stopping it first). @default false */
  replace?: boolean;
  /** Start it now. @default true */
  start?: boolean;
}

export interface StopOptions extends CallOptions {
  /** Time between the stop signal and SIGKILL, instead of the definition's `stopTimeoutMs`. */
  stopTimeoutMs?: number;
}

export interface ServiceLogLine {
  time: number;
  stream: 'stdout' | 'stderr';
  line: string;
}

/** A live subscription to service state changes. */
export interface ServiceEvents {
  /** The seq of the last event before the subscription began. */
  readonly seq: number;
  /** Every service as it was when the subscription began. */
  readonly services: ServiceStatus[];
  /** Events after `since` that the supervisor still had (null when some were lost). */
  readonly replay: Array<{ seq: number; time: number; data: ServiceEvent }> | null;
  /** Ends the subscription. */
  close(): void;
}

export class Services {
  readonly #conn: ClientConnection;

  constructor(conn: ClientConnection) {
    this.#conn = conn;
  }

  /**
   * Adds a service and (by default) starts it and waits until it is ready. A definition without
   * `cwd` runs in this process's working directory; `inheritEnv` variables are sent from this
   * process's environment (their values are never written to disk).
   */
  async add(definition: ServiceDefinition, options: AddOptions = {}): Promise<ServiceStatus> {
    const { replace, start, wait, ...call } = options;
    const sent: Record<string, unknown> = { ...definition };
    if (sent.cwd === undefined) sent.cwd = process.cwd();
    const args: Record<string, unknown> = { definition: sent, inherited: inheritedValues(definition.inheritEnv) };
    if (replace !== undefined) args.replace = replace;
    if (start !== undefined) args.start = start;
    const status = (await this.#request('services.add', args, call)) as ServiceStatus;
    if (start === false || wait === false) return status;
    return this.waitReady(definition.name, readyDeadline(status, call));
  }

  /** Starts a stopped, exited or failed service (a no-op when it runs) and waits for it to be ready. */
  async start(name: string, options: StartOptions = {}): Promise<ServiceStatus> {
    const { wait, ...call } = options;
    const status = (await this.#request('services.start', { name }, call)) as ServiceStatus;
    return wait === false ? status : this.waitReady(name, readyDeadline(status, call));
  }

  /**
   * Stops it and resolves when no process of its tree is left. Without `timeoutMs`, the deadline
   * covers the stop timeout and SIGKILL's grace (asking the definition's first when needed).
   */
  async stop(name: string, options: StopOptions = {}): Promise<ServiceStatus> {
    const { stopTimeoutMs, ...call } = options;
    if (call.timeoutMs === undefined) {
      const stopMs = stopTimeoutMs ?? (await this.get(name, call)).definition.stopTimeoutMs;
      call.timeoutMs = Math.max(MIN_WAIT_MS, stopMs + MARGIN_MS);
    }
    return this.#request('services.stop', stopTimeoutMs === undefined ? { name } : { name, timeoutMs: stopTimeoutMs }, call) as Promise<ServiceStatus>;
  }

  async restart(name: string, options: StartOptions = {}): Promise<ServiceStatus> {
    const { wait, ...call } = options;
    const status = (await this.#request('services.restart', { name }, call)) as ServiceStatus;
    return wait === false ? status : this.waitReady(name, readyDeadline(status, call, status.definition.stopTimeoutMs));
  }

  /** Stops it and forgets it. */
  async remove(name: string, options: CallOptions = {}): Promise<void> {
    await this.#request('services.remove', { name }, options);
  }

  /** State, pid, ports, URL, health, restarts, last exit and resource use. */
  get(name: string, options: CallOptions = {}): Promise<ServiceStatus> {
    return this.#request('services.get', { name }, options) as Promise<ServiceStatus>;
  }

  list(options: CallOptions = {}): Promise<ServiceStatus[]> {
    return this.#request('services.list', undefined, options) as Promise<ServiceStatus[]>;
  }

  /**
   * Resolves when the service is ready. Rejects MUXVISOR_SERVICE_FAILED when it fails, exits or
   * is stopped first, MUXVISOR_TIMEOUT at the deadline, MUXVISOR_CANCELLED on the signal.
   */
  waitReady(name: string, options: CallOptions = {}): Promise<ServiceStatus> {
    return this.#request('services.wait', { name }, options) as Promise<ServiceStatus>;
  }

  /** The last lines it wrote (stdout and stderr in order), and where its log files are. */
  logs(name: string, options: CallOptions & { lines?: number } = {}): Promise<{ lines: ServiceLogLine[]; files: { stdout: string; stderr: string } }> {
    const { lines, ...call } = options;
    return this.#request('services.logs', lines === undefined ? { name } : { name, lines }, call) as Promise<{ lines: ServiceLogLine[]; files: { stdout: string; stderr: string } }>;
  }

  /**
   * The last `lines` lines, then every new line as the service writes it, until `close()`.
   * `onEnd` hears why it ended on its own: the service was removed (MUXVISOR_UNKNOWN_SERVICE), the
   * connection closed, or the process read too slowly (MUXVISOR_OVERLOADED).
   */
  async followLogs(
    name: string,
    onLine: (line: ServiceLogLine) => void,
    options: CallOptions & { lines?: number; onEnd?: (error: MuxvisorError) => void } = {},
  ): Promise<{ files: { stdout: string; stderr: string }; close: () => void }> {
    const { lines, onEnd, ...call } = options;
    // A removal ends the subscription; one that came with the answer is ended once `end` exists.
    let end: (() => void) | null = null;
    let removed = false;
    const deliver = (e: Event) => {
      const data = e.data as { removed?: boolean; stream: 'stdout' | 'stderr'; line: string };
      if (!data.removed) return onLine({ time: e.time, stream: data.stream, line: data.line });
      removed = true;
      end?.();
      onEnd?.(new MuxvisorError(ErrorCode.UnknownService, `service ${name} was removed`, { data: { name } }));
    };
    const args: Record<string, unknown> = { name, follow: true };
    if (lines !== undefined) args.lines = lines;
    const sub = await this.#conn.subscribe('services.logs', args, deliver, onEnd ?? (() => undefined), call, (answer) => {
      for (const line of (answer as { lines: ServiceLogLine[] }).lines) onLine(line);
    });
    end = sub.end;
    if (removed) end();
    return { files: (sub.result as { files: { stdout: string; stderr: string } }).files, close: sub.end };
  }

  /**
   * Calls `onEvent` for every state change of every service, in order (`seq` counts up by one).
   * With `since`, `onEvent` first gets the events after that seq that the supervisor still has
   * (`replay` is null when it no longer has them all: rely on `services` then).
   * `onEnd` hears why the subscription ended if it ends on its own (connection closed, or the
   * process did not read its events and fell too far behind).
   */
  async subscribe(
    onEvent: (event: ServiceEvent, meta: { seq: number; time: number }) => void,
    options: CallOptions & { since?: number; onEnd?: (error: MuxvisorError) => void } = {},
  ): Promise<ServiceEvents> {
    const { since, onEnd, ...call } = options;
    let last = -1;
    const deliver = (e: { seq: number; time: number; data?: unknown }) => {
      if (e.seq <= last) return;
      last = e.seq;
      onEvent(e.data as ServiceEvent, { seq: e.seq, time: e.time });
    };
    const { result, end } = await this.#conn.subscribe('services.events', since === undefined ? undefined : { since }, deliver, onEnd ?? (() => undefined), call, (answer) => {
      for (const e of (answer as { replay: Array<{ seq: number; time: number; data: ServiceEvent }> | null }).replay ?? []) deliver(e);
    });
    const answer = result as { seq: number; services: ServiceStatus[]; replay: Array<{ seq: number; time: number; data: ServiceEvent }> | null };
    return { seq: answer.seq, services: answer.services, replay: answer.replay, close: end };
  }

  #request(op: string, args: unknown, options: CallOptions): Promise<unknown> {
    const body: Record<string, unknown> = args === undefined ? { op } : { op, args };
    if (options.timeoutMs !== undefined) body.timeoutMs = options.timeoutMs;
    return this.#conn.call(Kind.Request, 0, body, `request \`${op}\`${args !== undefined && typeof (args as { name?: unknown }).name === 'string' ? ` for service ${(args as { name: string }).name}` : ''}`, options);
  }
}

const MIN_WAIT_MS = 60_000;
const MARGIN_MS = 15_000;

/** A wait for readiness lasts at least the probe's own deadline (plus a stop first, for a restart). */
function readyDeadline(status: ServiceStatus, call: CallOptions, stopMs = 0): CallOptions {
  if (call.timeoutMs !== undefined) return call;
  const probeMs = status.definition.readiness.type === 'none' ? 0 : status.definition.readiness.timeoutMs;
  return { ...call, timeoutMs: Math.max(MIN_WAIT_MS, probeMs + stopMs + MARGIN_MS) };
}

function inheritedValues(names: string[] | undefined): Record<string, string> {
  const values: Record<string, string> = {};
  if (names === undefined) return values;
  if (!Array.isArray(names)) throw new MuxvisorError(ErrorCode.InvalidArgument, '`inheritEnv` must be a list of variable names');
  for (const n of names) {
    const v = typeof n === 'string' ? process.env[n] : undefined;
    if (v !== undefined) values[n] = v;
  }
  return values;
}
