/**
 * A small disk that can be filled on purpose: a tmpfs mounted over a directory (root only), a
 * filler file that leaves a chosen number of bytes free, and the unmount that must happen
 * whatever the test did (lazily when something still holds it open).
 *
 * Contract: `mountTmpfs` either mounts and returns null, or returns why it could not (not root,
 * mount refused) and changes nothing; the caller skips then. Whoever mounted calls `unmount`.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmdirSync, statfsSync, writeSync } from 'node:fs';

/** Mounts a tmpfs of `bytes` (mode 0700) over `dir`; null when mounted, else the reason it was not. */
export function mountTmpfs(dir: string, bytes: number): string | null {
  if (process.platform !== 'linux') return `tmpfs needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return `mounting a tmpfs needs root (uid ${process.getuid?.()})`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    return null;
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    return `mount -t tmpfs was refused: ${stderr || (error as Error).message}`;
  }
}

/** Unmounts `dir`; lazily (`umount -l`) when it is busy. Never throws. Returns false if both failed. */
export function unmount(dir: string): boolean {
  for (const args of [[dir], ['-l', dir]]) {
    try {
      execFileSync('umount', args, { stdio: 'ignore' });
      return true;
    } catch {
      // busy (a process still has a file open there): try lazily
    }
  }
  return false;
}

/** Bytes free for an ordinary file on the filesystem holding `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/**
 * Writes `path` until about `leaveBytes` are free on its filesystem (rounded down to whole
 * blocks), or as much as fits. Returns the bytes written.
 */
export function fill(path: string, leaveBytes: number): number {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  const fd = openSync(path, 'a', 0o600);
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let written = 0;
  try {
    for (;;) {
      const room = freeBytes(dir) - leaveBytes;
      if (room <= 0) break;
      const n = writeSync(fd, chunk, 0, Math.min(chunk.length, room));
      written += n;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  return written;
}

let probed: string | null | undefined;

/** Why tmpfs cannot be used here (a mount of a throwaway directory is tried once), or null. */
export function tmpfsUnavailable(): string | null {
  if (probed !== undefined) return probed;
  const dir = `/tmp/muxvisor-tmpfs-probe-${process.pid}`;
  probed = mountTmpfs(dir, 1024 * 1024);
  if (probed === null) unmount(dir);
  try {
    rmdirSync(dir);
  } catch {
    // never created, or still mounted (a lazy unmount finishes later)
  }
  return probed;
}
