/**
 * Samples a process's resident memory and open file descriptors once a second (and, less often,
 * the bytes under a directory), and the few statistics the load section judges them by.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fdCount, rssBytes } from '../context.js';

export interface Sample {
  /** ms since the sampler started. */
  atMs: number;
  rss: number;
  fds: number;
}

export interface Sampler {
  samples: Sample[];
  /** The most bytes seen under the watched directory. */
  peakDiskBytes(): number;
  stop(): void;
}

/** Samples `pid` every `everyMs`, and the size of `dir` every `diskEveryMs`. */
export function sample(pid: number, dir: string, everyMs = 1000, diskEveryMs = 2000): Sampler {
  const t0 = Date.now();
  const samples: Sample[] = [];
  let peak = 0;
  const take = () => {
    const rss = rssBytes(pid);
    const fds = fdCount(pid);
    if (rss !== null && fds !== null) samples.push({ atMs: Date.now() - t0, rss, fds });
  };
  take();
  const timer = setInterval(take, everyMs);
  const disk = setInterval(() => (peak = Math.max(peak, bytesUnder(dir))), diskEveryMs);
  return {
    samples,
    peakDiskBytes: () => Math.max(peak, bytesUnder(dir)),
    stop() {
      clearInterval(timer);
      clearInterval(disk);
    },
  };
}

/** Bytes of the regular files under `dir` (what they hold, not blocks); files vanishing are skipped. */
export function bytesUnder(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const path = join(dir, name);
    try {
      const s = lstatSync(path);
      if (s.isDirectory()) total += bytesUnder(path);
      else if (s.isFile()) total += s.size;
    } catch {
      // removed meanwhile
    }
  }
  return total;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export const MB = 1024 * 1024;

/** Rounds to `digits` decimals, for figures. */
export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
