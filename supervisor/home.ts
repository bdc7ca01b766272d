/**
 * Getting a home ready for a supervisor: directories with private modes, the token, the pid
 * file, a stale socket removed (only ever under the home lock), and runs a dead supervisor left
 * open finished as crashed.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkPrivateDir, decodeValue, encodeValue, type HomeLayout, newToken } from '../protocol/index.js';
import { writeFileAtomic } from './fs-atomic.js';
import type { Logger } from './log.js';
import { EntryType } from './recorder/log-format.js';
import { scanRunLog } from './recorder/log-reader.js';
import { RunLogWriter } from './recorder/log-writer.js';

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
 * Runs whose meta.json still says `open` belonged to a supervisor that died: cut off any torn tail
 * of their logs, write a FINISH entry saying so, and mark them finished as crashed.
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
    let meta: Record<string, unknown>;
    try {
      meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (meta.state !== 'open' || !existsSync(join(dir, 'run.mvlog'))) continue;
    let reason = `the supervisor (pid ${String(meta.supervisorPid)}) stopped while the run was open`;
    let status = 'crashed';
    try {
      const logPath = join(dir, 'run.mvlog');
      const { writer, recovery } = RunLogWriter.reopen(logPath);
      if (!recovery.finished) {
        writer.appendEntry(EntryType.Recovered, encodeValue({ time: Date.now(), reason, truncatedBytes: recovery.truncatedBytes, tornAt: recovery.torn?.offset ?? null }));
        writer.appendEntry(EntryType.Finish, encodeValue({ status, reason, time: Date.now(), records: writer.records }));
      } else {
        // The log was complete (its FINISH written) when the supervisor died, before meta.json
        // said so: the run ended as its FINISH entry says, not as crashed.
        const finish = decodeValue(scanRunLog(logPath).finish as Uint8Array) as { status?: unknown; reason?: unknown };
        status = String(finish.status);
        reason = typeof finish.reason === 'string' ? finish.reason : reason;
      }
      await writer.close();
      writeFileAtomic(metaPath, `${JSON.stringify({ ...meta, state: 'finished', status, reason, records: writer.records, bytes: writer.bytes, updatedAt: Date.now(), truncatedBytes: recovery.truncatedBytes }, null, 2)}\n`);
      log.warn({ run, records: writer.records, truncatedBytes: recovery.truncatedBytes }, 'finished a run left open by a stopped supervisor');
      recovered++;
    } catch (error) {
      log.error({ run, err: (error as Error).message }, 'could not recover a run left open');
    }
  }
  return recovered;
}
