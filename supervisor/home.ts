/**
 * Getting a home ready for a supervisor: directories with private modes, the token, the pid
 * file, a stale socket removed (only ever under the home lock), and runs a dead supervisor left
 * open finished as crashed.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPrivateDir, decodeValue, encodeValue, type HomeLayout, newToken } from '../protocol/index.js';
import { TMP_SUFFIX, writeFileAtomic } from './fs-atomic.js';
import type { Logger } from './log.js';
import { EntryType, FILE_HEADER_BYTES } from './recorder/log-format.js';
import { scanRunLog } from './recorder/log-reader.js';
import { NEW_LOG_SUFFIX, RunLogWriter } from './recorder/log-writer.js';

const TOKEN_PATTERN = /^[0-9a-f]{64}$/;

/** Creates the home's directories (0700) and checks the ones it must trust. */
export function prepareDirs(layout: HomeLayout): void {
  for (const dir of [layout.home, layout.runtimeDir, layout.runsDir, layout.logsDir]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  chmodSync(layout.runtimeDir, 0o700);
  if (layout.socketFallback) {
    const dir = join(layout.socketPath, '..');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    checkPrivateDir(dir);
  }
}

/** The home's token: read it, or create it (0600) the first time. It lasts across restarts. */
export function ensureToken(tokenPath: string): string {
  try {
    const token = readFileSync(tokenPath, 'utf8').trim();
    if (TOKEN_PATTERN.test(token)) return token;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const token = newToken();
  writeFileAtomic(tokenPath, `${token}\n`, { mode: 0o600 });
  return token;
}

/** Removes a socket file left by a supervisor that died. Call only while holding the home lock. */
export function removeStaleSocket(socketPath: string): boolean {
  if (!existsSync(socketPath)) return false;
  rmSync(socketPath, { force: true });
  return true;
}

export function writePid(pidPath: string): void {
  writeFileSync(pidPath, `${process.pid}\n`, { mode: 0o600 });
}

/** Removes the socket and pid file, if they are still this process's. */
export function removeRuntimeFiles(layout: HomeLayout): void {
  try {
    if (readFileSync(layout.pidPath, 'utf8').trim() === String(process.pid)) rmSync(layout.pidPath, { force: true });
  } catch {
    // already gone
  }
  rmSync(layout.socketPath, { force: true });
}

/**
 * Runs a supervisor that died left open: those whose meta.json still says `open`, and those it
 * died opening (a run log, but no meta.json yet; an empty directory is removed). Cut off any torn tail of their logs, write a
 * FINISH entry saying so, and mark them finished as crashed. A run whose log is not even whole up
 * to its OPEN entry was never answered: it is marked failed, its file left for a look.
 */
export async function recoverAbandonedRuns(layout: HomeLayout, log: Logger): Promise<number> {
  let recovered = 0;
  let names: string[];
  try {
    names = readdirSync(layout.runsDir);
  } catch {
    return 0;
  }
  for (const run of names) {
    const dir = join(layout.runsDir, run);
    const metaPath = join(dir, 'meta.json');
    const logPath = join(dir, 'run.mvlog');
    let meta: Record<string, unknown> | null = null;
    try {
      meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Record<string, unknown>;
    } catch {
      // No meta.json: a supervisor died opening this run (or this is not a run's directory).
    }
    // A run the supervisor died with may hold what it was writing: a log not yet linked in as
    // run.mvlog (RunLogWriter.create), a meta.json not yet renamed into place (fs-atomic.ts).
    if (meta === null || meta.state === 'open') removeHalfWritten(dir);
    if (meta === null && !existsSync(logPath)) {
      // A supervisor died between making the run's directory and creating its log: the OPEN was
      // never answered and nothing was recorded. An empty directory would only hold the id.
      try {
        rmdirSync(dir);
        log.warn({ run }, 'removed the empty directory of a run a stopped supervisor never opened');
      } catch {
        // not empty, or not a directory: not ours to touch
      }
      continue;
    }
    if (meta === null && existsSync(logPath) && neverOpened(logPath)) {
      // A log cut off before its OPEN entry was whole (written by an older supervisor, which
      // created run.mvlog in place; a power loss can do it too): the OPEN was never answered.
      try {
        rmSync(logPath);
        rmdirSync(dir);
        log.warn({ run }, 'removed the unfinished log of a run a stopped supervisor never opened');
      } catch {
        // something else is in the directory: not ours to touch
      }
      continue;
    }
    if ((meta !== null && meta.state !== 'open') || !existsSync(logPath)) continue;
    const saved = meta ?? { run, state: 'open', supervisorPid: null };
    let reason = `the supervisor (pid ${String(saved.supervisorPid)}) stopped while the run was ${meta === null ? 'being opened' : 'open'}`;
    let status = 'crashed';
    try {
      const { writer, recovery } = RunLogWriter.reopen(logPath);
      const scan = scanRunLog(logPath);
      if (!recovery.finished) {
        writer.appendEntry(EntryType.Recovered, encodeValue({ time: Date.now(), reason, truncatedBytes: recovery.truncatedBytes, tornAt: recovery.torn?.offset ?? null }));
        writer.appendEntry(EntryType.Finish, encodeValue({ status, reason, time: Date.now(), records: writer.records }));
      } else {
        // The log was complete (its FINISH written) when the supervisor died, before meta.json
        // said so: the run ended as its FINISH entry says, not as crashed.
        const finish = decodeValue(scan.finish as Uint8Array) as { status?: unknown; reason?: unknown };
        status = String(finish.status);
        reason = typeof finish.reason === 'string' ? finish.reason : reason;
      }
      await writer.close();
      const opened = scan.open ? (decodeValue(scan.open) as { time?: unknown; handler?: unknown; client?: unknown }) : {};
      const fromLog = meta === null ? { openedAt: opened.time ?? null, handler: opened.handler ?? null, client: opened.client ?? null } : {};
      writeFileAtomic(metaPath, `${JSON.stringify({ ...saved, ...fromLog, state: 'finished', status, reason, records: writer.records, bytes: writer.bytes, updatedAt: Date.now(), truncatedBytes: recovery.truncatedBytes }, null, 2)}\n`);
      log.warn({ run, records: writer.records, truncatedBytes: recovery.truncatedBytes, hadMeta: meta !== null }, 'finished a run left open by a stopped supervisor');
      recovered++;
    } catch (error) {
      if (meta === null) {
        reason = `the supervisor stopped while the run was being opened, before its log was whole: ${(error as Error).message}`;
        writeFileAtomic(metaPath, `${JSON.stringify({ ...saved, state: 'finished', status: 'failed', reason, records: 0, bytes: 0, updatedAt: Date.now() }, null, 2)}\n`);
        log.warn({ run, reason }, 'marked a run that was never opened as failed');
        continue;
      }
      log.error({ run, err: (error as Error).message }, 'could not recover a run left open');
    }
  }
  return recovered;
}

/** True when the log holds no whole OPEN entry and no record: cut off while it was being created. */
function neverOpened(logPath: string): boolean {
  try {
    if (statSync(logPath).size < FILE_HEADER_BYTES) return true;
    const scan = scanRunLog(logPath);
    return scan.open === null && scan.records === 0;
  } catch {
    return false; // a bad header: not a log cut short, recovery reports it
  }
}

/** Removes the files a writer left half made in a run's directory: `run.mvlog.new-*`, `meta.json.tmp-*`. */
function removeHalfWritten(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(`run.mvlog${NEW_LOG_SUFFIX}`) || name.startsWith(`meta.json${TMP_SUFFIX}`)) rmSync(join(dir, name), { force: true });
  }
}
