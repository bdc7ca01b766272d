/**
 * Running a probe as another user. The probe is a tiny standalone script (node builtins only,
 * no import of this repository, which may sit where that user cannot read) written into a
 * world-readable directory and run with this node as uid/gid 65534 ("nobody"). It tries each
 * target in turn (connect to a socket, read a file, list a directory) and prints one JSON line
 * with what happened to each: `connected`, `ok`, or the errno code (`EACCES`, `ENOENT`...).
 *
 * The caller owns the directory; the probe writes nothing and keeps no connection open.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SectionContext } from '../context.js';

/** The other user the probe runs as: "nobody" on Linux distributions. */
export const OTHER_UID = 65534;
export const OTHER_GID = 65534;

export interface ProbeTarget {
  name: string;
  op: 'connect' | 'read' | 'list';
  path: string;
}

export interface ProbeOutcome {
  name: string;
  /** `connected` (connect), `ok` (read, list), or the error's code. */
  outcome: string;
  /** What a successful read returned (at most 4096 characters). */
  text?: string;
}

export interface ProbeReport {
  uid: number;
  gid: number;
  results: ProbeOutcome[];
}

/** The probe's source: plain CommonJS, so it runs from any directory without a package.json. */
const PROBE_SOURCE = `'use strict';
// A muxvisor chaos probe: run as another user, it tries each target and prints what happened.
const net = require('node:net');
const fs = require('node:fs');
const targets = JSON.parse(process.argv[2]);
const code = (error) => (error && error.code) || String(error);
function attempt(target) {
  if (target.op === 'read') {
    try {
      return Promise.resolve({ outcome: 'ok', text: fs.readFileSync(target.path, 'latin1').slice(0, 4096) });
    } catch (error) {
      return Promise.resolve({ outcome: code(error) });
    }
  }
  if (target.op === 'list') {
    try {
      fs.readdirSync(target.path);
      return Promise.resolve({ outcome: 'ok' });
    } catch (error) {
      return Promise.resolve({ outcome: code(error) });
    }
  }
  return new Promise((resolve) => {
    const socket = net.connect(target.path);
    const timer = setTimeout(() => { socket.destroy(); resolve({ outcome: 'timeout' }); }, 3000);
    socket.once('connect', () => { clearTimeout(timer); socket.destroy(); resolve({ outcome: 'connected' }); });
    socket.once('error', (error) => { clearTimeout(timer); resolve({ outcome: code(error) }); });
  });
}
(async () => {
  const results = [];
  for (const target of targets) results.push({ name: target.name, ...(await attempt(target)) });
  process.stdout.write(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), results }) + '\\n');
})();
`;

/** Writes the probe into `dir` (made world-readable and traversable) and returns its path. */
export function writeProbe(dir: string): string {
  chmodSync(dir, 0o755);
  const path = join(dir, 'probe.cjs');
  writeFileSync(path, PROBE_SOURCE, { mode: 0o644 });
  chmodSync(path, 0o644);
  return path;
}

/**
 * Runs the probe at `probePath` as the other user against `targets`. Resolves with its report,
 * or with a string saying why it did not run (spawn failed, it exited without a report).
 * Its environment is empty but for PATH: nothing of ours (no MUXVISOR_SERVICE) reaches it.
 */
export async function runProbe(ctx: SectionContext, probePath: string, targets: readonly ProbeTarget[]): Promise<ProbeReport | string> {
  const child = ctx.spawn(process.execPath, [probePath, JSON.stringify(targets)], {
    uid: OTHER_UID,
    gid: OTHER_GID,
    cwd: join(probePath, '..'),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const timer = setTimeout(() => child.process.kill('SIGKILL'), 20_000);
  const { code, signal } = await child.exited;
  clearTimeout(timer);
  const line = child.stdout().trim().split('\n').at(-1) ?? '';
  try {
    const report = JSON.parse(line) as ProbeReport;
    if (Array.isArray(report.results)) return report;
  } catch {
    // no report: said below
  }
  return `the probe (${process.execPath} as uid ${OTHER_UID}) ended with code ${code}, signal ${signal}, and printed no report: ${child.stderr().trim().slice(0, 400) || '(no stderr)'}`;
}
