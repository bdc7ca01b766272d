/**
 * How a client finds its supervisor: the home directory and its layout, the socket path (with a
 * fallback when the home's path is too long for a Unix socket), and the `MUXVISOR_SERVICE`
 * environment variable that children inherit. Pure path logic plus the one ownership check both
 * sides make before trusting a directory; PROTOCOL.md section 14 documents the same rules.
 */
import { createHash } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { homedir, platform } from 'node:os';
import { join, resolve } from 'node:path';
import { ErrorCode, MuxvisorError } from './errors.js';

/** Environment variable naming the home: `MUXVISOR_HOME=/data/me/muxvisor`. */
export const HOME_ENV = 'MUXVISOR_HOME';
/** Environment variable a connected process sets so its children reach the same supervisor. */
export const SERVICE_ENV = 'MUXVISOR_SERVICE';
/** Version of the MUXVISOR_SERVICE format. */
export const SERVICE_ENV_VERSION = 1;

/** The longest socket path the OS takes, in bytes (sun_path minus its terminating NUL). */
export const MAX_SOCKET_PATH_BYTES = platform() === 'linux' ? 107 : 103;

/** The home: `$MUXVISOR_HOME`, else `$XDG_STATE_HOME/muxvisor`, else `~/.local/state/muxvisor`. */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env[HOME_ENV]) return resolve(env[HOME_ENV]);
  const state = env.XDG_STATE_HOME ? resolve(env.XDG_STATE_HOME) : join(homedir(), '.local', 'state');
  return join(state, 'muxvisor');
}

/** Where everything lives in a home. Every path is absolute. */
export interface HomeLayout {
  home: string;
  /** 0700: the socket (unless it falls back to /tmp), the token, the pid file. */
  runtimeDir: string;
  socketPath: string;
  /** True when the home's own socket path was too long and `socketPath` is the /tmp fallback. */
  socketFallback: boolean;
  /** 0600: the secret token a client presents in HELLO. */
  tokenPath: string;
  /** The supervisor's pid while it runs. */
  pidPath: string;
  /** One directory per run: `runs/<run id>/`. */
  runsDir: string;
  logsDir: string;
  /** The supervisor's own structured log (pino, JSON lines). */
  supervisorLog: string;
  /** stdout and stderr of a daemon started by a client: read when it fails to start. */
  daemonOut: string;
}

export function homeLayout(home: string): HomeLayout {
  const abs = resolve(home);
  const runtimeDir = join(abs, 'run');
  const own = join(runtimeDir, 'muxvisor.sock');
  const fits = Buffer.byteLength(own) <= MAX_SOCKET_PATH_BYTES;
  return {
    home: abs,
    runtimeDir,
    socketPath: fits ? own : fallbackSocketPath(abs),
    socketFallback: !fits,
    tokenPath: join(runtimeDir, 'token'),
    pidPath: join(runtimeDir, 'muxvisor.pid'),
    runsDir: join(abs, 'runs'),
    logsDir: join(abs, 'logs'),
    supervisorLog: join(abs, 'logs', 'supervisor.log'),
    daemonOut: join(abs, 'logs', 'daemon.out'),
  };
}

/** `/tmp/muxvisor-<uid>/<hash of the home>.sock`: short, per user, the same for every process. */
export function fallbackSocketPath(home: string): string {
  const hash = createHash('sha256').update(resolve(home)).digest('hex').slice(0, 16);
  return join(fallbackDir(), `${hash}.sock`);
}

export function fallbackDir(): string {
  return join('/tmp', `muxvisor-${process.getuid?.() ?? 'user'}`);
}

/**
 * Throws MUXVISOR_INVALID_ARGUMENT unless `dir` is a real directory (not a symlink) owned by this
 * user with no access for anyone else. Both sides check the /tmp fallback with it: anyone can
 * create directories in /tmp, and a client must not hand its token to somebody else's socket.
 */
export function checkPrivateDir(dir: string): void {
  const stat = lstatSync(dir);
  const uid = process.getuid?.();
  const problem = !stat.isDirectory()
    ? 'is not a directory (or is a symlink)'
    : uid !== undefined && stat.uid !== uid
      ? `is owned by uid ${stat.uid}, not ${uid}`
      : (stat.mode & 0o077) !== 0
        ? `has mode ${(stat.mode & 0o777).toString(8)}, not 700`
        : null;
  if (problem !== null) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, `refusing to use ${dir}: it ${problem}`, { data: { path: dir } });
  }
}

/** What MUXVISOR_SERVICE carries. */
export interface ServiceInfo {
  socketPath: string;
  token: string;
}

/** `1:<token>:<socket path>`. The token is hex, so the path (which may hold colons) comes last. */
export function formatServiceEnv(info: ServiceInfo): string {
  return `${SERVICE_ENV_VERSION}:${info.token}:${info.socketPath}`;
}

export function parseServiceEnv(value: string): ServiceInfo {
  const match = /^(\d+):([0-9a-f]+):(\/.+)$/.exec(value);
  if (match === null || Number(match[1]) !== SERVICE_ENV_VERSION) {
    throw new MuxvisorError(
      ErrorCode.InvalidArgument,
      `${SERVICE_ENV} is not \`${SERVICE_ENV_VERSION}:<hex token>:<absolute socket path>\`: got \`${value.length > 80 ? `${value.slice(0, 80)}...` : value}\``,
      { data: { variable: SERVICE_ENV } },
    );
  }
  return { token: match[2] as string, socketPath: match[3] as string };
}
