/**
 * Another user on the machine must not reach a supervisor: not connect to its socket, not read
 * its token, its run logs or its logs, not find the token in a process's environment or command
 * line. Needs root (to run the probe as uid 65534); the caller skips it otherwise.
 *
 * Each barrier is tested on its own, so that one of them being right cannot hide another being
 * wrong:
 * 1. the home as the supervisor created it (0700) keeps everything in it out;
 * 2. with the home opened to others (0755, as a user might have it on shared storage), run/,
 *    runs/, logs/ and services/ (0700) still do;
 * 3. hard links to the socket, the token and the data files, made in a directory anyone can
 *    traverse, test the files' own modes (0600) with every directory out of the way;
 * 4. the /tmp fallback socket of a home whose path is too long: its directory (0700) and, through
 *    a hard link, the socket's own mode.
 * A control socket (0666) and file (0644) in the probe's directory must be reachable in every
 * probe run: they prove the probe itself works as that user.
 */
import { chmodSync, linkSync, lstatSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { HomeLayout } from '../../../protocol/index.js';
import type { SectionContext } from '../context.js';
import { OTHER_UID, type ProbeReport, type ProbeTarget, runProbe, writeProbe } from './probe.js';

export interface Guarded {
  layout: HomeLayout;
  token: string;
  supervisorPid: number;
  /** Paths inside the home worth stealing: a run log, its meta.json, a service's output... */
  dataFiles: string[];
  /** Pids whose environment holds MUXVISOR_SERVICE (a service's process). */
  servicePids: number[];
}

/**
 * Runs the probes against `home` (a normal home, made by its supervisor) and `long` (a home whose
 * socket falls back to /tmp; `longParents` are the directories above it that this section made).
 * Returns a reason when the probe cannot run as the other user (the caller skips), else null.
 */
export async function checkOtherUser(ctx: SectionContext, home: Guarded, long: Guarded, longParents: string[]): Promise<string | null> {
  const probeDir = ctx.home().home;
  const probe = writeProbe(probeDir);
  const control = await controlSocket(join(probeDir, 'control.sock'));
  try {
    const controlFile = join(probeDir, 'control.txt');
    writeFileSync(controlFile, 'control\n', { mode: 0o644 });
    chmodSync(controlFile, 0o644);
    const controls: ProbeTarget[] = [
      { name: 'control socket', op: 'connect', path: join(probeDir, 'control.sock') },
      { name: 'control file', op: 'read', path: controlFile },
    ];
    const first = await runProbe(ctx, probe, controls);
    if (typeof first === 'string') return first;
    if (first.uid !== OTHER_UID) return `the probe ran as uid ${first.uid}, not ${OTHER_UID}`;
    const broken = first.results.find((r) => r.outcome !== 'connected' && r.outcome !== 'ok');
    if (broken) return `the probe cannot reach its own ${broken.name} as uid ${OTHER_UID} (${broken.outcome}): it would prove nothing`;

    // 1. The home as its supervisor made it.
    const l = home.layout;
    await probeAll(ctx, probe, controls, 'home 0700', [
      { name: 'socket through the home', op: 'connect', path: l.socketPath },
      { name: 'token through the home', op: 'read', path: l.tokenPath },
      { name: 'runs/ through the home', op: 'list', path: l.runsDir },
    ]);

    // 2. The home opened to others; so is every directory above the long home.
    chmodSync(l.home, 0o755);
    for (const dir of [...longParents, long.layout.home]) chmodSync(dir, 0o755);
    try {
      const inner: ProbeTarget[] = [
        { name: 'socket through run/', op: 'connect', path: l.socketPath },
        { name: 'token through run/', op: 'read', path: l.tokenPath },
        { name: 'list run/', op: 'list', path: l.runtimeDir },
        { name: 'list runs/', op: 'list', path: l.runsDir },
        { name: 'supervisor log through logs/', op: 'read', path: l.supervisorLog },
        ...home.dataFiles.map((path): ProbeTarget => ({ name: `${path.slice(l.home.length + 1)} through its directory`, op: 'read', path })),
        { name: 'fallback socket through its /tmp directory', op: 'connect', path: long.layout.socketPath },
        { name: 'long home token through run/', op: 'read', path: long.layout.tokenPath },
      ];
      // 3. and 4. The files' own modes, through hard links beside the probe.
      const linked: ProbeTarget[] = [];
      const link = (name: string, op: ProbeTarget['op'], path: string) => {
        const to = join(probeDir, `link-${linked.length}`);
        try {
          linkSync(path, to);
          linked.push({ name: `${name} (its own mode, through a hard link)`, op, path: to });
        } catch (error) {
          ctx.log(`cannot hard-link ${path} (${(error as NodeJS.ErrnoException).code}): its own mode is checked by the walk only`);
        }
      };
      link('socket', 'connect', l.socketPath);
      link('token', 'read', l.tokenPath);
      link('supervisor log', 'read', l.supervisorLog);
      link('daemon.out', 'read', l.daemonOut);
      for (const path of home.dataFiles) link(path.slice(l.home.length + 1), 'read', path);
      link('fallback socket', 'connect', long.layout.socketPath);
      link('long home token', 'read', long.layout.tokenPath);
      const procs: ProbeTarget[] = [
        { name: 'supervisor environment', op: 'read', path: `/proc/${home.supervisorPid}/environ` },
        ...home.servicePids.map((pid): ProbeTarget => ({ name: `service pid ${pid} environment (holds MUXVISOR_SERVICE)`, op: 'read', path: `/proc/${pid}/environ` })),
      ];
      await probeAll(ctx, probe, controls, 'home 0755', [...inner, ...linked, ...procs]);

      // Command lines are world-readable by design: the token must not be in any of them.
      const cmdlines = [home.supervisorPid, long.supervisorPid, ...home.servicePids].map((pid): ProbeTarget => ({ name: `pid ${pid} command line`, op: 'read', path: `/proc/${pid}/cmdline` }));
      const seen = await runProbe(ctx, probe, cmdlines);
      if (ctx.check(typeof seen !== 'string', 'access probe ran', () => String(seen))) {
        for (const r of (seen as ProbeReport).results) {
          if (!ctx.check(r.outcome === 'ok', 'access command line readable', () => `the probe could not read ${r.name} (${r.outcome}): the token check below proves nothing for it`)) continue;
          ctx.check(!(r.text ?? '').includes(home.token) && !(r.text ?? '').includes(long.token), 'access token in a command line', () => `${r.name}, readable by every user, holds the token`);
        }
      }
    } finally {
      chmodSync(l.home, 0o700);
    }
    return null;
  } finally {
    control.close();
  }
}

/**
 * Runs `targets` (each must exist: a barrier answers EACCES even for a path that does not, which
 * would make the check vacuous) with the controls, and checks every target is refused EACCES.
 */
async function probeAll(ctx: SectionContext, probe: string, controls: ProbeTarget[], stage: string, targets: ProbeTarget[]): Promise<void> {
  for (const t of targets) {
    let exists = true;
    try {
      lstatSync(t.path);
    } catch {
      exists = false;
    }
    ctx.check(exists, 'access probe target exists', () => `${stage}: ${t.name}: ${t.path} does not exist, so a refusal there proves nothing`);
  }
  const report = await runProbe(ctx, probe, [...controls, ...targets]);
  if (!ctx.check(typeof report !== 'string', 'access probe ran', () => `${stage}: ${String(report)}`)) return;
  const results = (report as ProbeReport).results;
  for (const c of results.slice(0, controls.length)) {
    ctx.check(c.outcome === 'connected' || c.outcome === 'ok', 'access probe control', () => `${stage}: the probe could not reach its own ${c.name} (${c.outcome})`);
  }
  for (const r of results.slice(controls.length)) {
    ctx.count('access probes');
    ctx.check(r.outcome === 'EACCES', 'access other user got in', () => `${stage}: uid ${OTHER_UID} trying the ${r.name}: expected EACCES, got ${r.outcome}`);
  }
}

function controlSocket(path: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.end());
    server.once('error', reject);
    server.listen(path, () => {
      chmodSync(path, 0o666);
      resolve(server);
    });
  });
}
