/**
 * What breaks a home from the outside: a path too long for a Unix socket, a full disk, logs that
 * grow without bound, environment variables that send programs elsewhere, a missing build.
 */
import { accessSync, constants, existsSync, lstatSync, statfsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import {
  checkPrivateDir, defaultHome, type HomeLayout, HOME_ENV, MAX_SOCKET_PATH_BYTES, parseServiceEnv, SERVICE_ENV,
} from '../../../protocol/index.js';
import { PACKAGE_ROOT } from '../../../protocol/version.js';
import { DAEMON_ENTRY } from '../../daemon.js';
import { bytes, percent } from '../format.js';
import { type Check, check, chownFix, defaultHomeWithoutEnv, nearestExisting, ownedByMe, sh, statOrNull, writableDir } from './check.js';

/** The supervisor's own log is never rotated: past this size the doctor says so. */
export const LOG_WARN_BYTES = 1024 ** 3;
/** The free space under which the disk check warns, as a multiple of `--min-free`. */
export const LOW_SPACE_FACTOR = 5;
/** Free inodes under which the disk check fails: every run is a directory and a few files. */
const MIN_FREE_INODES = 1000;

const ownSocketPath = (layout: HomeLayout) => join(layout.runtimeDir, 'muxvisor.sock');
const fits = (home: string) => Buffer.byteLength(join(home, 'run', 'muxvisor.sock')) <= MAX_SOCKET_PATH_BYTES;

/** A home whose socket path fits: the default one if it does, else `~/muxvisor`. */
function shorterHome(layout: HomeLayout): string {
  const candidate = defaultHomeWithoutEnv();
  return candidate !== layout.home && fits(candidate) ? candidate : join(homedir(), 'muxvisor');
}

/**
 * A home whose socket path is over the OS limit gets a socket in `/tmp/muxvisor-<uid>/`: it
 * works, but /tmp cleaners may delete a long-lived socket, and that directory must be this
 * user's alone (both sides refuse it otherwise).
 */
export function socketPathCheck(layout: HomeLayout): Check {
  const title = 'socket path length';
  const own = ownSocketPath(layout);
  const ownBytes = Buffer.byteLength(own);
  if (!layout.socketFallback) return check('socket-path', title, 'ok', `${ownBytes} bytes, within the limit of ${MAX_SOCKET_PATH_BYTES}`);
  const useShorter = `export ${HOME_ENV}=${sh(shorterHome(layout))}`;
  const dir = dirname(layout.socketPath);
  let dirStats = null;
  try {
    dirStats = lstatSync(dir);
  } catch {
    // not there yet: the supervisor creates it (700)
  }
  if (dirStats !== null) {
    try {
      checkPrivateDir(dir);
    } catch (error) {
      const fix = !ownedByMe(dirStats) ? useShorter : dirStats.isSymbolicLink() || !dirStats.isDirectory() ? `rm ${sh(dir)}` : `chmod 700 ${sh(dir)}`;
      return check('socket-path', title, 'fail', `the home's own socket path would be ${ownBytes} bytes (limit ${MAX_SOCKET_PATH_BYTES}), and its fallback directory cannot be trusted: ${(error as Error).message}; no client will connect`, fix);
    }
  }
  return check('socket-path', title, 'warn', `the home's own socket path would be ${ownBytes} bytes, over the limit of ${MAX_SOCKET_PATH_BYTES}: the socket is ${layout.socketPath} instead (in /tmp, whose cleaners may delete a long-lived socket); use a shorter home (or --home)`, useShorter);
}

/**
 * Free space where run logs are written: under `minFree` bytes is a problem, under
 * LOW_SPACE_FACTOR times that a warning.
 */
export function diskCheck(layout: HomeLayout, minFree: number): Check {
  const title = 'disk space';
  const at = nearestExisting(layout.runsDir);
  const s = statfsSync(at);
  const free = s.bavail * s.bsize;
  const total = s.blocks * s.bsize;
  const seen = `${bytes(free)} free of ${bytes(total)} (${percent(total > 0 ? (free / total) * 100 : 0)}) at ${at}`;
  const fix = `du -sh ${sh(layout.runsDir)}/* | sort -h | tail -20`;
  if (free < minFree) return check('disk', title, 'fail', `${seen}: under the minimum of ${bytes(minFree)} (--min-free); run logs stop growing when it fills; delete runs you no longer need (the fix lists the largest)`, fix);
  if (s.files > 0 && s.ffree < MIN_FREE_INODES) return check('disk', title, 'fail', `${seen}, but only ${s.ffree} of ${s.files} inodes free: new runs cannot be created; delete runs you no longer need (the fix lists the largest)`, fix);
  if (free < minFree * LOW_SPACE_FACTOR) return check('disk', title, 'warn', `${seen}: under ${bytes(minFree * LOW_SPACE_FACTOR)} (${LOW_SPACE_FACTOR} x --min-free); the fix lists the largest runs`, fix);
  return check('disk', title, 'ok', seen);
}

/** The logs directory must be writable (the supervisor cannot start otherwise); its logs are never rotated. */
export function logsCheck(layout: HomeLayout): Check {
  const title = 'logs';
  const dir = layout.logsDir;
  const stats = statOrNull(dir);
  if (stats === null) return check('logs', title, 'ok', `${dir} does not exist yet: the supervisor creates it`);
  if (!stats.isDirectory() || !writableDir(dir)) {
    return check('logs', title, 'fail', `${dir} is not a directory you can write in: the supervisor cannot log, so it cannot start`, ownedByMe(stats) ? `chmod 700 ${sh(dir)}` : chownFix(dir));
  }
  const sizes: string[] = [];
  const big: string[] = [];
  for (const file of [layout.supervisorLog, layout.daemonOut]) {
    const f = statOrNull(file);
    if (f === null) continue;
    try {
      accessSync(file, constants.W_OK);
    } catch {
      return check('logs', title, 'fail', `${file} is not writable by you (owner uid ${f.uid}, mode ${(f.mode & 0o777).toString(8)}): a supervisor started by you cannot log`, ownedByMe(f) ? `chmod 600 ${sh(file)}` : chownFix(file));
    }
    sizes.push(`${file.slice(dir.length + 1)} ${bytes(f.size)}`);
    if (f.size > LOG_WARN_BYTES) big.push(file);
  }
  if (big.length > 0) {
    return check('logs', title, 'warn', `${sizes.join(', ')}: over ${bytes(LOG_WARN_BYTES)}, and never rotated (truncating is safe while the supervisor runs: it appends)`, `truncate -s 0 ${big.map(sh).join(' ')}`);
  }
  return check('logs', title, 'ok', sizes.length === 0 ? `${dir}: writable, no logs yet` : `${dir}: writable; ${sizes.join(', ')}`);
}

/** MUXVISOR_HOME: a relative one resolves against each program's working directory. */
export function homeEnvCheck(layout: HomeLayout): Check {
  const title = HOME_ENV;
  const value = process.env[HOME_ENV];
  if (value === undefined || value === '') return check('home-env', title, 'ok', `not set: programs use ${defaultHome()}`);
  if (!isAbsolute(value)) {
    return check('home-env', title, 'warn', `\`${value}\` is relative: each program resolves it against its own working directory, so programs started in different directories use different homes`, `export ${HOME_ENV}=${sh(resolve(value))}`);
  }
  const other = resolve(value) === layout.home ? '' : ` (not the home checked here: programs without --home use it)`;
  return check('home-env', title, 'ok', `${value}${other}`);
}

/**
 * MUXVISOR_SERVICE, which the supervisor gives its services' processes: exported into a shell,
 * it sends every program that calls connect() without a home to that supervisor first.
 */
export function serviceEnvCheck(layout: HomeLayout): Check {
  const title = SERVICE_ENV;
  const value = process.env[SERVICE_ENV];
  if (value === undefined || value === '') return check('service-env', title, 'ok', 'not set');
  let socketPath: string;
  try {
    socketPath = parseServiceEnv(value).socketPath;
  } catch (error) {
    return check('service-env', title, 'fail', `malformed: every connect() without a home throws MUXVISOR_INVALID_ARGUMENT (${(error as Error).message})`, `unset ${SERVICE_ENV}`);
  }
  if (socketPath === layout.socketPath) return check('service-env', title, 'ok', `points at this home's socket ${socketPath} (a service's environment)`);
  return check('service-env', title, 'warn', `points at ${socketPath}${existsSync(socketPath) ? '' : ' (gone)'}, not at this home's ${layout.socketPath}: programs started here that call connect() without a home try that supervisor first`, `unset ${SERVICE_ENV}`);
}

/** Clients start the supervisor from this file: without it, nothing starts. */
export function daemonEntryCheck(): Check {
  const title = 'supervisor program';
  if (existsSync(DAEMON_ENTRY)) return check('daemon-entry', title, 'ok', DAEMON_ENTRY);
  return check('daemon-entry', title, 'fail', `${DAEMON_ENTRY} is missing: clients cannot start a supervisor`, `cd ${sh(PACKAGE_ROOT)} && npm run build`);
}
