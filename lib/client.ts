/**
 * The public client: `connect()` finds or starts the supervisor and returns a Client, from which
 * runs are opened or attached, and supervisor operations asked.
 *
 * Contracts: `close()` waits for requests in flight (each has a deadline), flushes, says goodbye
 * and closes; `destroy()` closes now. Both are idempotent; `await using` calls `close()`. When
 * the supervisor goes away, every waiting request rejects with MUXVISOR_CONNECTION_CLOSED at
 * once and the client emits 'disconnect'; a later `connect()` starts a new supervisor.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  ErrorCode, formatServiceEnv, homeLayout, isMuxvisorError, Kind, MuxvisorError, parseServiceEnv, SERVICE_ENV,
} from '../protocol/index.js';
import { type CallOptions, ClientConnection } from './connection.js';
import { type ExitParticipant, registerExit, unregisterExit } from './exit.js';
import { type ConnectOptions, type ResolvedConnectOptions, resolveConnectOptions } from './options.js';
import { type EventsOptions, type EventsSubscription, subscribeEvents, type SupervisorEvent } from './events.js';
import { Run } from './run.js';
import { RunQueries } from './runs.js';
import { Services } from './services.js';
import { findOrStart } from './start.js';

/** Environment variable naming the run a parent opened, for children to attach to. */
export const RUN_ENV = 'MUXVISOR_RUN';

export interface OpenRunOptions extends CallOptions {
  /**
   * A handler module (absolute path or file: URL; a relative path is resolved against this
   * process's working directory) to use instead of the default recorder.
   */
  handler?: string;
  /** Passed to the handler when the run starts. */
  config?: unknown;
  /** Host the handler on a worker thread of its own. @default false */
  dedicated?: boolean;
}

/** Events: 'disconnect' (error: MuxvisorError | null), 'warning' (error: MuxvisorError). */
export class Client extends EventEmitter implements ExitParticipant {
  /** The home this client's supervisor serves. */
  readonly home: string;
  /** True when connect() had to start the supervisor. */
  readonly started: boolean;
  /** Companion processes the supervisor runs: add, start, stop, get, subscribe, ... */
  readonly services: Services;
  /** Questions about runs, open or recorded: list, get (with summary), read, verify. */
  readonly runs: RunQueries;
  readonly #conn: ClientConnection;
  readonly #options: ResolvedConnectOptions;
  readonly #runs = new Set<Run>();
  readonly #socketPath: string;
  #closing: Promise<void> | null = null;

  constructor(conn: ClientConnection, options: ResolvedConnectOptions, home: string, socketPath: string, started: boolean) {
    super();
    this.#conn = conn;
    this.#options = options;
    this.home = home;
    this.#socketPath = socketPath;
    this.started = started;
    this.services = new Services(conn);
    this.runs = new RunQueries(conn);
    conn.on('warning', (error: MuxvisorError) => this.emit('warning', error));
    conn.on('close', (error: MuxvisorError | null) => {
      unregisterExit(this);
      this.#runs.clear();
      this.emit('disconnect', error);
    });
    if (options.handleExit) registerExit(this);
  }

  /** What the supervisor said of itself in its WELCOME. */
  get server(): { name: string; version: string; pid: number } {
    return this.#conn.welcome.server;
  }

  get connected(): boolean {
    return !this.#conn.closed;
  }

  /** The value of MUXVISOR_SERVICE that leads a child process to this supervisor. */
  get serviceEnv(): string {
    return formatServiceEnv({ socketPath: this.#socketPath, token: this.#conn.token });
  }

  /** Opens a new run. Without an id, one is made up: `<name>-<yyyymmdd-hhmmss>-<6 hex>`. */
  async openRun(id: string = newRunId(this.#options.name), options: OpenRunOptions = {}): Promise<Run> {
    const { handler, config, dedicated, ...call } = options;
    const body: Record<string, unknown> = { run: id };
    if (handler !== undefined) body.handler = handler.startsWith('file:') || handler.startsWith('/') ? handler : new URL(handler, `file://${process.cwd()}/`).pathname;
    if (config !== undefined) body.config = config;
    if (dedicated) body.dedicated = true;
    const result = (await this.#conn.call(Kind.Open, 0, body, `open of run ${id}`, call)) as { channel: number };
    const run = this.#track(id, result.channel);
    if (this.#options.exportEnv) process.env[RUN_ENV] = id;
    return run;
  }

  /** Joins a run another process opened (by default the one named by MUXVISOR_RUN). */
  async attachRun(id: string | undefined = process.env[RUN_ENV], options: CallOptions = {}): Promise<Run> {
    if (id === undefined) {
      throw new MuxvisorError(ErrorCode.InvalidArgument, `attachRun needs a run id, and ${RUN_ENV} is not set`);
    }
    const result = (await this.#conn.call(Kind.Attach, 0, { run: id }, `attach to run ${id}`, options)) as { channel: number };
    return this.#track(id, result.channel, true);
  }

  /** Runs supervisor operation `op` (status, runs.list, connections.list, shutdown, ...). */
  request(op: string, args?: unknown, options: CallOptions = {}): Promise<unknown> {
    const body = args === undefined ? { op } : { op, args };
    return this.#conn.call(Kind.Request, 0, options.timeoutMs === undefined ? body : { ...body, timeoutMs: options.timeoutMs }, `request \`${op}\``, options);
  }

  status(options?: CallOptions): Promise<Record<string, unknown>> {
    return this.request('status', undefined, options) as Promise<Record<string, unknown>>;
  }

  /** Every client connected to the supervisor: pid, name, runs, pending requests, bytes, age. */
  connections(options?: CallOptions): Promise<Array<Record<string, unknown>>> {
    return this.request('connections.list', undefined, options) as Promise<Array<Record<string, unknown>>>;
  }

  /** Every state change (services, runs, the supervisor itself) in order, replay first. */
  events(onEvent: (event: SupervisorEvent) => void, options?: EventsOptions): Promise<EventsSubscription> {
    return subscribeEvents(this.#conn, onEvent, options);
  }

  /**
   * Asks the supervisor to drain and stop (open runs end `interrupted`, services stop). Resolves
   * with its pid once it has agreed; it is gone when that pid is.
   */
  async shutdown(options?: CallOptions): Promise<{ pid: number }> {
    const answer = (await this.request('shutdown', undefined, options)) as { pid: number };
    return { pid: answer.pid };
  }

  /** One round trip to the supervisor; resolves with its duration in milliseconds. */
  async ping(options: CallOptions = {}): Promise<number> {
    const start = process.hrtime.bigint();
    await this.#conn.call(Kind.Ping, 0, undefined, 'ping', options);
    return Number(process.hrtime.bigint() - start) / 1e6;
  }

  close(): Promise<void> {
    this.#closing ??= this.#conn.close().finally(() => unregisterExit(this));
    return this.#closing;
  }

  destroy(error?: MuxvisorError): void {
    unregisterExit(this);
    this.#conn.destroy(error ?? null);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal exit path: write everything accepted, synchronously. */
  flushSync(): void {
    this.#conn.transport.flushSync();
  }

  /** @internal exit path: the process dies of `signal`; its runs end interrupted. */
  interrupted(signal: NodeJS.Signals): void {
    for (const run of this.#runs) run.interrupted(`the process (pid ${process.pid}) received ${signal}`);
  }

  #track(id: string, channel: number, attached = false): Run {
    const run = new Run(id, channel, this.#conn, attached, {
      highWaterBytes: this.#options.highWaterBytes,
      maxBufferedBytes: this.#options.maxBufferedBytes,
      forget: (r) => this.#runs.delete(r),
    });
    this.#runs.add(run);
    return run;
  }
}

/**
 * Finds the supervisor (through MUXVISOR_SERVICE when this process inherited one and named no
 * home, else through the home), starts it if none runs, and connects.
 */
export async function connect(options: ConnectOptions = {}): Promise<Client> {
  const resolved = resolveConnectOptions(options);
  const inherited = !resolved.homeGiven ? process.env[SERVICE_ENV] : undefined;
  if (inherited !== undefined) {
    const service = parseServiceEnv(inherited);
    try {
      const conn = await ClientConnection.open({
        socketPath: service.socketPath, token: service.token, name: resolved.name, signal: resolved.signal,
        timeoutMs: resolved.timeoutMs, requestTimeoutMs: resolved.requestTimeoutMs,
      });
      return new Client(conn, resolved, resolved.home, service.socketPath, false);
    } catch (error) {
      // The parent's supervisor is gone: fall through to the home's (starting one if needed).
      if (!isMuxvisorError(error) || (error.code !== ErrorCode.ConnectionClosed && error.code !== ErrorCode.BadToken)) throw error;
    }
  }
  const layout = homeLayout(resolved.home);
  const { connection, started } = await findOrStart({
    layout, name: resolved.name, timeoutMs: resolved.timeoutMs, requestTimeoutMs: resolved.requestTimeoutMs,
    start: resolved.start, signal: resolved.signal, daemonArgs: [...resolved.daemonArgs],
  });
  const client = new Client(connection, resolved, layout.home, layout.socketPath, started);
  if (resolved.exportEnv) process.env[SERVICE_ENV] = client.serviceEnv;
  return client;
}

function newRunId(name: string): string {
  const stem = name.replace(/\.[cm]?[jt]s$/, '').replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 80) || 'run';
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stem}-${t}-${randomBytes(3).toString('hex')}`;
}
