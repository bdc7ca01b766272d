/**
 * Services: the definition a client sends in `services.add`, its validation, and the shapes the
 * supervisor answers with. Validation lists every problem at once ("ports.web: must be an integer
 * 0..65535, got 70000") so a user fixes a definition in one go.
 *
 * Contract: `resolveServiceDefinition` is the one place a definition is checked and its defaults
 * filled; everything downstream trusts a `ResolvedServiceDefinition`.
 */
import { ErrorCode, MuxvisorError } from './errors.js';
import { RUN_ID_PATTERN } from './messages.js';

/** A service name: letters, digits, `.`, `_`, `-`; starts with a letter or digit; at most 64. */
export const SERVICE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const SERVICE_STATES = ['stopped', 'starting', 'running', 'backoff', 'stopping', 'exited', 'failed'] as const;
export type ServiceState = (typeof SERVICE_STATES)[number];

/** How the supervisor decides that a started service is ready. */
export type ReadinessProbe =
  | { type: 'none' }
  /** A TCP connect to `host:port` succeeds. `port` names one of the service's ports (default: the first). */
  | { type: 'tcp'; port?: string; host?: string; timeoutMs?: number }
  /** An HTTP GET of `path` answers 2xx (or `status`). */
  | { type: 'http'; path?: string; port?: string; host?: string; status?: number; timeoutMs?: number }
  /** A line of output matches `pattern` (a JavaScript regular expression). */
  | { type: 'log'; pattern: string; stream?: 'stdout' | 'stderr' | 'any'; timeoutMs?: number };

export interface RestartPolicy {
  /** never: leave it ended; on-failure: restart after a failure; always: restart after any exit. */
  policy: 'never' | 'on-failure' | 'always';
  /** Backoff before the first restart; doubles (by `factor`) up to `maxDelayMs`. @default 500 */
  initialDelayMs?: number;
  /** @default 30000 */
  maxDelayMs?: number;
  /** @default 2 */
  factor?: number;
  /** Each delay is moved by up to this fraction either way, so restarts do not stampede. @default 0.1 */
  jitter?: number;
  /** Running (ready) this long resets the backoff to `initialDelayMs`. @default 30000 */
  resetAfterMs?: number;
  /** More than this many restarts within `periodMs` marks the service failed. @default 5 */
  maxRestarts?: number;
  /** @default 60000 */
  periodMs?: number;
  /** Exit codes that count as success. @default [0] */
  successExitCodes?: number[];
}

export interface ServiceDefinition {
  name: string;
  /** The program: a path, or a name looked up in PATH. */
  command: string;
  /** Placeholders `{port}`, `{port:NAME}`, `{name}`, `{home}`, `{run}` are substituted; `{{` is `{`. */
  args?: string[];
  /** Set in the service's environment (placeholders substituted). Persisted: put no secrets here. */
  env?: Record<string, string>;
  /** Names of variables the service takes from the requesting process. Only the names are persisted. */
  inheritEnv?: string[];
  /** Absolute working directory. @default the service's directory in the home */
  cwd?: string;
  /** Named ports: a number is fixed, 0 is allocated free by the supervisor. @example { http: 0 } */
  ports?: Record<string, number>;
  /** Where clients reach it, with placeholders. @example 'http://127.0.0.1:{port}/' */
  url?: string;
  /** @default tcp on the first port when there are ports, else none; 30000 ms */
  readiness?: ReadinessProbe;
  /** @default { policy: 'on-failure' } */
  restart?: RestartPolicy;
  /** @default 'SIGTERM' */
  stopSignal?: string;
  /** Time between the stop signal and SIGKILL of the whole tree. @default 10000 */
  stopTimeoutMs?: number;
  /** Tie the service to a run: it is stopped and removed when that run finishes. */
  run?: string;
  /** Size-based rotation of the captured stdout and stderr. @default { maxBytes: 10 MiB, keep: 3 } */
  logs?: { maxBytes?: number; keep?: number };
}

export interface ResolvedServiceDefinition {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  inheritEnv: string[];
  cwd: string | null;
  ports: Record<string, number>;
  url: string | null;
  readiness: Required<Exclude<ReadinessProbe, { type: 'none' }>> | { type: 'none' };
  restart: Required<RestartPolicy>;
  stopSignal: string;
  stopTimeoutMs: number;
  run: string | null;
  logs: { maxBytes: number; keep: number };
}

/** The answer to `services.get`, and each entry of `services.list`. */
export interface ServiceStatus {
  name: string;
  state: ServiceState;
  /** What the user asked for last: start (running) or stop (stopped). */
  desired: 'running' | 'stopped';
  pid: number | null;
  ports: Record<string, number>;
  url: string | null;
  /** Readiness: whether the last probe passed, and what it saw. */
  health: { ready: boolean; probe: string; detail: string | null; at: number | null };
  /** Restarts the supervisor made since the service was added or last started by hand. */
  restarts: number;
  startedAt: number | null;
  readyAt: number | null;
  lastExit: ServiceExit | null;
  /** Summed over every process of the service's tree at the last sample; null before one. */
  usage: { cpuPercent: number; memoryBytes: number; processes: number; at: number } | null;
  /** Why the service is in its state (the reason of its last transition). */
  reason: string;
  /** Variables of `inheritEnv` that had no value when it last started. */
  missingEnv: string[];
  logs: { stdout: string; stderr: string };
  definition: ResolvedServiceDefinition;
}

export interface ServiceExit {
  code: number | null;
  signal: string | null;
  at: number;
  /** The last lines the service wrote before it ended (stdout and stderr, in order). */
  lastLines: string[];
}

/** The `data` of an EVENT on topic `service`. */
export interface ServiceEvent {
  service: string;
  state: ServiceState | 'removed';
  previous: ServiceState | null;
  reason: string;
  pid: number | null;
  restarts: number;
  exit?: ServiceExit;
  /** The probe result when a start failed or passed. */
  probe?: string;
}

const SIGNALS = new Set(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGKILL', 'SIGUSR1', 'SIGUSR2']);
const PLACEHOLDER = /\{\{|\{([a-z]+)(?::([A-Za-z0-9._-]+))?\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks `input` and fills the defaults; throws MUXVISOR_INVALID_ARGUMENT naming every problem. */
export function resolveServiceDefinition(input: unknown): ResolvedServiceDefinition {
  const problems: string[] = [];
  const d = (isObject(input) ? input : {}) as Record<string, unknown>;
  if (!isObject(input)) problems.push(`the definition must be a map, got ${typeOf(input)}`);
  const known = new Set(['name', 'command', 'args', 'env', 'inheritEnv', 'cwd', 'ports', 'url', 'readiness', 'restart', 'stopSignal', 'stopTimeoutMs', 'run', 'logs']);
  for (const key of Object.keys(d)) if (!known.has(key)) problems.push(`${key}: unknown field (known: ${[...known].join(', ')})`);

  const name = typeof d.name === 'string' && SERVICE_NAME_PATTERN.test(d.name) ? d.name : '';
  if (name === '') problems.push(`name: must match ${SERVICE_NAME_PATTERN}, got ${show(d.name)}`);
  const command = typeof d.command === 'string' && d.command.length > 0 && d.command.length <= 4096 ? d.command : '';
  if (command === '') problems.push(`command: must be a non-empty string, got ${show(d.command)}`);
  const args = stringList(d.args, 'args', problems);
  const inheritEnv = stringList(d.inheritEnv, 'inheritEnv', problems);
  for (const n of inheritEnv) if (!ENV_NAME.test(n)) problems.push(`inheritEnv: \`${n}\` is not a variable name`);
  const env: Record<string, string> = {};
  if (d.env !== undefined) {
    if (!isObject(d.env)) problems.push(`env: must be a map of strings, got ${typeOf(d.env)}`);
    else for (const [k, v] of Object.entries(d.env)) {
      if (!ENV_NAME.test(k)) problems.push(`env: \`${k}\` is not a variable name`);
      else if (typeof v !== 'string') problems.push(`env.${k}: must be a string, got ${typeOf(v)}`);
      else env[k] = v;
    }
  }
  let cwd: string | null = null;
  if (d.cwd !== undefined) {
    if (typeof d.cwd !== 'string' || !d.cwd.startsWith('/')) problems.push(`cwd: must be an absolute path, got ${show(d.cwd)}`);
    else cwd = d.cwd;
  }
  const ports: Record<string, number> = {};
  if (d.ports !== undefined) {
    if (!isObject(d.ports)) problems.push(`ports: must be a map of name to port, got ${typeOf(d.ports)}`);
    else for (const [k, v] of Object.entries(d.ports)) {
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(k)) problems.push(`ports: \`${k}\` is not a port name (letters, digits, . _ -)`);
      else if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) problems.push(`ports.${k}: must be an integer 0..65535 (0 = allocate a free one), got ${show(v)}`);
      else ports[k] = v as number;
    }
  }
  const portNames = Object.keys(ports);
  let url: string | null = null;
  if (d.url !== undefined) {
    if (typeof d.url !== 'string' || d.url.length > 4096) problems.push(`url: must be a string, got ${typeOf(d.url)}`);
    else url = d.url;
  }
  let run: string | null = null;
  if (d.run !== undefined) {
    if (typeof d.run !== 'string' || !RUN_ID_PATTERN.test(d.run)) problems.push(`run: must be a run id (${RUN_ID_PATTERN}), got ${show(d.run)}`);
    else run = d.run;
  }
  for (const [where, text] of [['args', args], ['url', url === null ? [] : [url]], ['env', Object.values(env)]] as const) {
    for (const t of text) checkPlaceholders(t, where, portNames, run !== null, problems);
  }
  const readiness = resolveProbe(d.readiness, portNames, problems);
  const restart = resolveRestart(d.restart, problems);
  const stopSignal = d.stopSignal === undefined ? 'SIGTERM' : typeof d.stopSignal === 'string' && SIGNALS.has(d.stopSignal) ? d.stopSignal : '';
  if (stopSignal === '') problems.push(`stopSignal: must be one of ${[...SIGNALS].join(', ')}, got ${show(d.stopSignal)}`);
  const stopTimeoutMs = int(d.stopTimeoutMs, 'stopTimeoutMs', 10_000, 0, 3_600_000, problems);
  const logsIn = d.logs === undefined ? {} : isObject(d.logs) ? d.logs : (problems.push(`logs: must be a map, got ${typeOf(d.logs)}`), {});
  const logs = {
    maxBytes: int(logsIn.maxBytes, 'logs.maxBytes', 10 * 1024 * 1024, 4096, 2 ** 40, problems),
    keep: int(logsIn.keep, 'logs.keep', 3, 1, 100, problems),
  };
  if (problems.length > 0) {
    const label = name === '' ? 'the service definition' : `the definition of service \`${name}\``;
    throw new MuxvisorError(ErrorCode.InvalidArgument, `${label} has ${problems.length} problem(s): ${problems.join('; ')}`, { data: { problems } });
  }
  return { name, command, args, env, inheritEnv, cwd, ports, url, readiness, restart, stopSignal, stopTimeoutMs, run, logs };
}

function resolveProbe(input: unknown, portNames: string[], problems: string[]): ResolvedServiceDefinition['readiness'] {
  if (input === undefined) {
    return portNames.length > 0 ? { type: 'tcp', port: portNames[0] as string, host: '127.0.0.1', timeoutMs: 30_000 } : { type: 'none' };
  }
  if (!isObject(input)) {
    problems.push(`readiness: must be a map with a \`type\` (none, tcp, http, log), got ${typeOf(input)}`);
    return { type: 'none' };
  }
  const timeoutMs = int(input.timeoutMs, 'readiness.timeoutMs', 30_000, 1, 3_600_000, problems);
  const port = (): string => {
    if (input.port === undefined) {
      if (portNames.length === 0) problems.push(`readiness: a ${String(input.type)} probe needs a port, and the service declares none`);
      return portNames[0] ?? '';
    }
    if (typeof input.port !== 'string' || !portNames.includes(input.port)) {
      problems.push(`readiness.port: must name one of the service's ports (${portNames.join(', ') || 'none declared'}), got ${show(input.port)}`);
    }
    return String(input.port);
  };
  const host = input.host === undefined ? '127.0.0.1' : typeof input.host === 'string' && input.host.length > 0 ? input.host : '';
  if (host === '') problems.push(`readiness.host: must be a host name or address, got ${show(input.host)}`);
  switch (input.type) {
    case 'none':
      return { type: 'none' };
    case 'tcp':
      return { type: 'tcp', port: port(), host, timeoutMs };
    case 'http': {
      const path = input.path === undefined ? '/' : typeof input.path === 'string' && input.path.startsWith('/') ? input.path : '';
      if (path === '') problems.push(`readiness.path: must start with /, got ${show(input.path)}`);
      const status = int(input.status, 'readiness.status', 0, 0, 599, problems);
      return { type: 'http', path, port: port(), host, status, timeoutMs };
    }
    case 'log': {
      const stream = input.stream === undefined ? 'any' : input.stream;
      if (stream !== 'stdout' && stream !== 'stderr' && stream !== 'any') problems.push(`readiness.stream: must be stdout, stderr or any, got ${show(input.stream)}`);
      let pattern = '';
      if (typeof input.pattern !== 'string' || input.pattern.length === 0 || input.pattern.length > 1024) {
        problems.push(`readiness.pattern: must be a regular expression (1..1024 characters), got ${show(input.pattern)}`);
      } else {
        try {
          new RegExp(input.pattern);
          pattern = input.pattern;
        } catch (error) {
          problems.push(`readiness.pattern: ${(error as Error).message}`);
        }
      }
      return { type: 'log', pattern, stream: stream as 'any', timeoutMs };
    }
    default:
      problems.push(`readiness.type: must be none, tcp, http or log, got ${show(input.type)}`);
      return { type: 'none' };
  }
}

function resolveRestart(input: unknown, problems: string[]): Required<RestartPolicy> {
  const r = input === undefined ? {} : isObject(input) ? input : (problems.push(`restart: must be a map, got ${typeOf(input)}`), {});
  const policy = r.policy === undefined ? 'on-failure' : r.policy;
  if (policy !== 'never' && policy !== 'on-failure' && policy !== 'always') problems.push(`restart.policy: must be never, on-failure or always, got ${show(r.policy)}`);
  const initialDelayMs = int(r.initialDelayMs, 'restart.initialDelayMs', 500, 0, 3_600_000, problems);
  const maxDelayMs = int(r.maxDelayMs, 'restart.maxDelayMs', 30_000, 0, 86_400_000, problems);
  if (maxDelayMs < initialDelayMs) problems.push(`restart.maxDelayMs (${maxDelayMs}) must be at least restart.initialDelayMs (${initialDelayMs})`);
  const factor = num(r.factor, 'restart.factor', 2, 1, 100, problems);
  const jitter = num(r.jitter, 'restart.jitter', 0.1, 0, 1, problems);
  const resetAfterMs = int(r.resetAfterMs, 'restart.resetAfterMs', 30_000, 0, 86_400_000, problems);
  const maxRestarts = int(r.maxRestarts, 'restart.maxRestarts', 5, 0, 1_000_000, problems);
  const periodMs = int(r.periodMs, 'restart.periodMs', 60_000, 1, 86_400_000, problems);
  let successExitCodes = [0];
  if (r.successExitCodes !== undefined) {
    if (!Array.isArray(r.successExitCodes) || !r.successExitCodes.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) {
      problems.push(`restart.successExitCodes: must be a list of exit codes 0..255, got ${show(r.successExitCodes)}`);
    } else successExitCodes = r.successExitCodes as number[];
  }
  return { policy: policy as RestartPolicy['policy'], initialDelayMs, maxDelayMs, factor, jitter, resetAfterMs, maxRestarts, periodMs, successExitCodes };
}

function checkPlaceholders(text: string, where: string, ports: string[], hasRun: boolean, problems: string[]): void {
  for (const m of text.matchAll(PLACEHOLDER)) {
    if (m[0] === '{{') continue;
    const [whole, key, arg] = m;
    if (key === 'port') {
      if (arg === undefined ? ports.length === 0 : !ports.includes(arg)) problems.push(`${where}: ${whole} names no declared port (declared: ${ports.join(', ') || 'none'})`);
    } else if (key === 'run') {
      if (!hasRun) problems.push(`${where}: {run} is only known for a service tied to a run`);
    } else if ((key !== 'name' && key !== 'home') || arg !== undefined) {
      problems.push(`${where}: unknown placeholder ${whole} (known: {port}, {port:NAME}, {name}, {home}, {run}; write {{ for a literal {)`);
    }
  }
}

/** Substitutes the placeholders of a validated text. */
export function substitute(text: string, values: { ports: Record<string, number>; name: string; home: string; run: string | null }): string {
  return text.replace(PLACEHOLDER, (whole, key: string | undefined, arg: string | undefined) => {
    if (whole === '{{') return '{';
    if (key === 'port') return String(arg === undefined ? Object.values(values.ports)[0] : values.ports[arg]);
    if (key === 'name') return values.name;
    if (key === 'home') return values.home;
    return values.run ?? '';
  });
}

function stringList(value: unknown, field: string, problems: string[]): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string') || value.length > 1024) {
    problems.push(`${field}: must be a list of strings, got ${show(value)}`);
    return [];
  }
  return value as string[];
}

function int(value: unknown, field: string, fallback: number, min: number, max: number, problems: string[]): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    problems.push(`${field}: must be an integer ${min}..${max}, got ${show(value)}`);
    return fallback;
  }
  return value as number;
}

function num(value: unknown, field: string, fallback: number, min: number, max: number, problems: string[]): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    problems.push(`${field}: must be a number ${min}..${max}, got ${show(value)}`);
    return fallback;
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array) && !(value instanceof Date);
}

function typeOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'a list' : value instanceof Uint8Array ? 'binary' : typeof value;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = typeof value === 'string' ? JSON.stringify(value) : (() => {
    try {
      return JSON.stringify(value) ?? typeOf(value);
    } catch {
      return typeOf(value);
    }
  })();
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
