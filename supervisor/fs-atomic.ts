/**
 * Replacing a small file so that a crash at any moment leaves either the old content or the new,
 * never an empty or half-written file: write a temporary file, fsync it, rename it over the old
 * one, fsync the directory. `replaceFile` can keep the previous version as `<path>.bak`.
 *
 * `writeFileAtomic` blocks its thread for the two fsyncs (tens of ms on a busy disk): for start-up.
 * `replaceFile` does the same through libuv's thread pool, for a thread that serves others
 * meanwhile (a run worker's meta.json, the main thread's services state). Neither orders
 * concurrent calls for one path: the caller does (the temporary names differ, so they never tear
 * each other, but the last rename wins).
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { link, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { threadId } from 'node:worker_threads';

/** What a file is named until it is renamed into place (`<path>.tmp-<pid>-<thread>-<time>-<n>`): recovery removes leftovers. */
export const TMP_SUFFIX = '.tmp-';
let unique = 0;
const tmpName = (path: string) => `${path}${TMP_SUFFIX}${process.pid}-${threadId}-${Date.now()}-${unique++}`;

export function writeFileAtomic(path: string, data: string | Uint8Array, options: { mode?: number } = {}): void {
  const tmp = tmpName(path);
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const fd = openSync(tmp, 'w', options.mode ?? 0o600);
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** fsync a directory, so that a rename or a new file in it survives a power loss. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `writeFileAtomic` without blocking the calling thread; mode 0600; `keepPrevious` keeps the old content as `<path>.bak`. */
export async function replaceFile(path: string, data: string | Uint8Array, options: { keepPrevious?: boolean } = {}): Promise<void> {
  const tmp = tmpName(path);
  const file = await open(tmp, 'w', 0o600);
  try {
    await file.writeFile(data);
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(tmp, { force: true });
    throw error;
  }
  await file.close();
  if (options.keepPrevious) {
    await rm(`${path}.bak`, { force: true });
    try {
      await link(path, `${path}.bak`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
