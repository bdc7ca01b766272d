/**
 * What the doctor learns about the home's supervisor before judging anything: one handshake
 * through the library (never starting a supervisor), and the pid file checked against /proc.
 * Gathered once, then every check is a plain function of these facts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ErrorCode, type HomeLayout, isMuxvisorError } from '../../../protocol/index.js';
import { connect } from '../../client.js';
import { daemonCommand, processAlive, processState } from '../../daemon.js';
import { CLIENT_NAME } from '../context.js';

/** What one connection attempt to the home's socket found. */
export type Probe =
  /** A supervisor completed the handshake. */
  | { kind: 'answered'; pid: number; version: string; ms: number }
  /** Nothing to talk to: no token, no socket file (ENOENT), or nothing listening (ECONNREFUSED). */
  | { kind: 'nobody'; errno: string | null; message: string }
  /** Something accepted the connection but sent no WELCOME within `ms`. */
  | { kind: 'silent'; ms: number; message: string }
  /** An answer that was a refusal (MUXVISOR_BAD_TOKEN, ...) or a connect error such as EACCES. */
  | { kind: 'refused'; code: string; errno: string | null; message: string };

/** The pid file and the process it names. */
export interface PidFacts {
  /** False when there is no pid file. */
  present: boolean;
  /** The pid it names; null when absent or not a pid. */
  pid: number | null;
  /** Its content when it is not a pid (clipped), for the report. */
  garbage: string | null;
  alive: boolean;
  /** The live process's argv from /proc; null when it cannot be read. */
  argv: string[] | null;
  /** Whether the live process is a muxvisor supervisor (argv names `supervisor/main.js`); null: cannot tell. */
  supervisor: boolean | null;
  /** The `--home` it was started with, resolved; null when it has none or is not a supervisor. */
  servesHome: string | null;
  /** The process state letter from /proc (`T`: stopped by a signal), when readable. */
  state: string | null;
}

export interface Facts {
  layout: HomeLayout;
  probe: Probe;
  pidFile: PidFacts;
  /** The pid file names a live supervisor of this home (whether or not it answers). */
  liveSupervisor: number | null;
  /** There was no token file to connect with: the probe never reached the socket. */
  noToken: boolean;
  probeTimeoutMs: number;
}

const NOBODY_ERRNO = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET']);

/** The errno of the first error in the cause chain that carries one in `data.errno`. */
function errnoOf(error: unknown): string | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const errno = isMuxvisorError(e) ? (e.data as { errno?: unknown } | undefined)?.errno : (e as NodeJS.ErrnoException).code;
    if (typeof errno === 'string') return errno;
  }
  return null;
}

/**
 * One handshake with the home's supervisor, within `timeoutMs`, with `start: false`: the doctor
 * must never start one. The connection is closed before this returns.
 */
export async function probe(layout: HomeLayout, timeoutMs: number): Promise<Probe> {
  const started = performance.now();
  try {
    const client = await connect({
      home: layout.home, name: CLIENT_NAME, start: false, timeoutMs, requestTimeoutMs: timeoutMs, handleExit: false, exportEnv: false,
    });
    const ms = performance.now() - started;
    const { pid, version } = client.server;
    await client.close().catch(() => client.destroy());
    return { kind: 'answered', pid, version, ms };
  } catch (error) {
    const errno = errnoOf(error);
    const message = error instanceof Error ? error.message : String(error);
    const code = isMuxvisorError(error) ? error.code : 'MUXVISOR_CLI_FAILURE';
    if (code === ErrorCode.Timeout) return { kind: 'silent', ms: timeoutMs, message };
    if (errno !== null && NOBODY_ERRNO.has(errno)) return { kind: 'nobody', errno, message };
    if (errno === null && code === ErrorCode.Unavailable) return { kind: 'nobody', errno: null, message };
    return { kind: 'refused', code, errno, message };
  }
}

export function readPidFacts(layout: HomeLayout): PidFacts {
  const facts: PidFacts = { present: false, pid: null, garbage: null, alive: false, argv: null, supervisor: null, servesHome: null, state: null };
  let text: string;
  try {
    text = readFileSync(layout.pidPath, 'utf8');
  } catch {
    return facts;
  }
  facts.present = true;
  const pid = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(pid) || pid < 1) {
    facts.garbage = text.trim().slice(0, 40);
    return facts;
  }
  facts.pid = pid;
  facts.alive = processAlive(pid);
  if (!facts.alive) return facts;
  const command = daemonCommand(pid);
  if (command === null) return facts; // no /proc, or hidden from us: cannot tell
  facts.argv = command.argv;
  facts.supervisor = command.supervisor;
  facts.servesHome = command.home;
  facts.state = processState(pid);
  return facts;
}

/** Gathers the facts: the pid file first, then one handshake. Nothing is changed or started. */
export async function gatherFacts(layout: HomeLayout, probeTimeoutMs: number): Promise<Facts> {
  const pidFile = readPidFacts(layout);
  const noToken = !existsSync(layout.tokenPath);
  const probed = await probe(layout, probeTimeoutMs);
  const ours = pidFile.alive && pidFile.supervisor === true && (pidFile.servesHome === null || pidFile.servesHome === layout.home);
  return { layout, probe: probed, pidFile, liveSupervisor: ours ? pidFile.pid : null, noToken, probeTimeoutMs };
}
