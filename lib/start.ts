/**
 * Finding the supervisor, or starting one: connect to the home's socket; if nobody listens, start
 * the daemon detached in its own session and connect once it says it is ready. Two processes that
 * race here start one supervisor between them: the daemon takes the home's lock, and the loser
 * exits with code 75, telling its starter to connect to the winner.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkPrivateDir, ErrorCode, type HomeLayout, isMuxvisorError, MuxvisorError,
} from '../protocol/index.js';
import { aborted } from './abort.js';
import { ClientConnection } from './connection.js';
import { spawnDaemon } from './daemon.js';

export interface StartOptions {
  layout: HomeLayout;
  name: string;
  /** Whole budget: connecting, starting, and the handshake. */
  timeoutMs: number;
  requestTimeoutMs: number;
  start: boolean;
  signal?: AbortSignal;
  /** Arguments for a daemon this call starts (`--idle-timeout-ms`, ...). */
  daemonArgs: string[];
}

export interface Found {
  connection: ClientConnection;
  /** True when this call started the supervisor. */
  started: boolean;
}

/** Errors that mean "nobody is listening there", as opposed to "somebody refused us". */
function nobodyHome(error: unknown): boolean {
  const errno = isMuxvisorError(error) ? (error.data as { errno?: string } | undefined)?.errno : undefined;
  // ECONNRESET: a supervisor killed this instant (its socket not yet torn down) refuses this way.
  return errno === 'ENOENT' || errno === 'ECONNREFUSED' || errno === 'ECONNRESET' || (isMuxvisorError(error) && error.code === ErrorCode.Unavailable);
}

/**
 * EAGAIN: the supervisor's queue of connections not yet accepted is full. It is there and busy
 * (1,000 clients connecting at once, a stalled machine): wait and try again, do not start another.
 */
function busy(error: unknown): boolean {
  return isMuxvisorError(error) && (error.data as { errno?: string } | undefined)?.errno === 'EAGAIN';
}

/** The first wait before connecting again to a busy supervisor; it doubles, up to the max. */
const BUSY_WAIT_MS = 5;
const BUSY_WAIT_MAX_MS = 100;

/**
 * Connects, starting the supervisor when nobody answers. A supervisor that is starting (the home
 * is locked, its socket not yet there), dying (its lock and socket not yet released) or too busy
 * to take the connection yet (EAGAIN) is waited for and tried again, until the deadline.
 */
export async function findOrStart(options: StartOptions): Promise<Found> {
  const deadline = Date.now() + options.timeoutMs;
  let started = false;
  /** When a daemon we started last said the home was locked: its holder is starting or dying. */
  let lockedAt = -Infinity;
  let busyWaits = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return { connection: await tryConnect(options, deadline), started };
    } catch (error) {
      const wait = Math.min(BUSY_WAIT_MAX_MS, BUSY_WAIT_MS * 2 ** busyWaits);
      if (busy(error) && Date.now() + wait < deadline && !options.signal?.aborted) {
        busyWaits++;
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      if (!nobodyHome(error) || !options.start || Date.now() + 10 > deadline) throw unavailable(options, error);
    }
    if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(50, 5 * attempt)));
    // The lock holder gets time to come up (or to go) before another daemon is tried.
    if (Date.now() - lockedAt < LOCKED_PATIENCE_MS) continue;
    const outcome = await startDaemon(options, deadline);
    started = outcome === 'ready';
    if (outcome === 'locked') lockedAt = Date.now();
  }
}

/** How long to wait for the holder of a locked home before trying to start a daemon again. */
const LOCKED_PATIENCE_MS = 2_000;

async function tryConnect(options: StartOptions, deadline: number): Promise<ClientConnection> {
  const { layout } = options;
  if (layout.socketFallback && existsSync(join(layout.socketPath, '..'))) checkPrivateDir(join(layout.socketPath, '..'));
  let token: string;
  try {
    token = readFileSync(layout.tokenPath, 'utf8').trim();
  } catch {
    throw new MuxvisorError(ErrorCode.Unavailable, `no supervisor token in ${layout.tokenPath}`);
  }
  try {
    return await ClientConnection.open({
      socketPath: layout.socketPath, token, name: options.name, signal: options.signal,
      timeoutMs: Math.max(1, deadline - Date.now()), requestTimeoutMs: options.requestTimeoutMs,
    });
  } catch (error) {
    // Connected, then closed before WELCOME: the process behind the socket is going away (killed,
    // draining). (Errors of the connect itself carry their errno and pass as they are.)
    if (isMuxvisorError(error) && error.code === ErrorCode.ConnectionClosed && (error.data as { errno?: string } | undefined)?.errno === undefined) {
      throw new MuxvisorError(ErrorCode.Unavailable, `the supervisor at ${layout.socketPath} closed the connection before its WELCOME (it is stopping, or it has no file descriptor left: see its log, and \`ulimit -n\`): ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** Starts the daemon and waits until it says `ready` or `locked`, exits, or the deadline passes. */
async function startDaemon(options: StartOptions, deadline: number): Promise<'ready' | 'locked'> {
  const { layout } = options;
  mkdirSync(layout.logsDir, { recursive: true, mode: 0o700 });
  const out = openSync(layout.daemonOut, 'a', 0o600);
  const outStart = statSync(layout.daemonOut).size;
  let daemon: ReturnType<typeof spawnDaemon>;
  try {
    daemon = spawnDaemon(layout, options.daemonArgs, { output: out, cwd: layout.home });
  } finally {
    closeSync(out);
  }
  let timer: NodeJS.Timeout | undefined;
  let onAbort = () => undefined as void;
  try {
    return await Promise.race([
      daemon.ready.catch((error: MuxvisorError) => {
        throw new MuxvisorError(error.code, `${error.message}${daemonOutput(layout, outStart)}`, { cause: error.cause ?? error, data: error.data });
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new MuxvisorError(ErrorCode.Timeout, `the supervisor did not start within ${options.timeoutMs} ms${daemonOutput(layout, outStart)}`)), Math.max(1, deadline - Date.now()));
        onAbort = () => reject(aborted(options.signal, 'starting the supervisor'));
        options.signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    daemon.child.unref();
  }
}

/** The daemon's own output since `from`, for an error message: its last 20 lines. */
function daemonOutput(layout: HomeLayout, from: number): string {
  try {
    const text = readFileSync(layout.daemonOut).subarray(from).toString().trim();
    if (text.length === 0) return ` (no output; see ${layout.daemonOut})`;
    return `; its output (${layout.daemonOut}):\n${text.split('\n').slice(-20).join('\n')}`;
  } catch {
    return '';
  }
}

function unavailable(options: StartOptions, cause: unknown): MuxvisorError {
  if (isMuxvisorError(cause) && cause.code !== ErrorCode.ConnectionClosed && !nobodyHome(cause)) return cause;
  return new MuxvisorError(ErrorCode.Unavailable, `no supervisor answers at ${options.layout.socketPath}: ${(cause as Error).message}`, { cause });
}
