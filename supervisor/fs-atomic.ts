/**
 * Replacing a small file so that a crash at any moment leaves either the old content or the new,
 * never an empty or half-written file: write a temporary file, fsync it, rename it over the old
 * one, fsync the directory. Optionally keeps the previous version as `<path>.bak`.
 */
import { closeSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeFileAtomic(path: string, data: string | Uint8Array, options: { mode?: number; keepPrevious?: boolean } = {}): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
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
  if (options.keepPrevious) {
    rmSync(`${path}.bak`, { force: true });
    try {
      linkSync(path, `${path}.bak`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
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
