/**
 * The running side of the home: the socket file, the pid file, the supervisor process behind
 * them, and its version. Each root cause is reported by one check; the others point to it.
 */
import { lstatSync, type Stats } from 'node:fs';
import { basename } from 'node:path';
import { VERSION } from '../../../protocol/version.js';
import { clip } from '../format.js';
import { type Check, check, homeOption, octal, ownedByMe, sh } from './check.js';
import type { Facts } from './facts.js';

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw error;
  }
}

/**
 * The socket file. A socket nobody listens on while no supervisor runs is stale: left by a
 * supervisor that was killed (the next one to start removes it, too).
 */
export function socketCheck(facts: Facts): Check {
  const title = 'socket';
  const { layout, probe } = facts;
  const path = layout.socketPath;
  const stats = lstatOrNull(path);
  if (stats === null) {
    if (facts.liveSupervisor !== null) return check('socket', title, 'skip', `${path} is missing (see the supervisor check)`);
    return check('socket', title, 'ok', `${path} does not exist: no supervisor runs (the next one creates it, mode 600)`);
  }
  if (!stats.isSocket()) return check('socket', title, 'fail', `${path} is not a socket: no supervisor can listen there until it is removed`, `rm ${stats.isDirectory() ? '-r ' : ''}${sh(path)}`);
  if (!ownedByMe(stats)) return check('socket', title, 'fail', `${path} is owned by uid ${stats.uid}, not by you (uid ${process.getuid?.()}): clients would hand it their token`, `rm ${sh(path)}`);
  if (probe.kind === 'nobody' && facts.noToken && facts.liveSupervisor === null) {
    return check('socket', title, 'warn', `${path} is probably stale: no supervisor runs (with no token, the doctor cannot ask whether anything listens); the next supervisor removes it when it starts`, `rm ${sh(path)}`);
  }
  if (probe.kind === 'nobody' && probe.errno !== 'ENOENT' && facts.liveSupervisor === null) {
    return check('socket', title, 'fail', `${path} is stale: nothing answers on it (${probe.errno ?? clip(probe.message, 80)}) and no supervisor runs; left by a supervisor that was killed (the next supervisor also removes it when it starts)`, `rm ${sh(path)}`);
  }
  if ((stats.mode & 0o077) !== 0) {
    return check('socket', title, 'warn', `${path} has mode ${octal(stats)}, not 600: others may connect to it (the token still keeps them out)`, `chmod 600 ${sh(path)}`);
  }
  return check('socket', title, 'ok', `${path}: yours, mode ${octal(stats)}${probe.kind === 'answered' ? ', a supervisor answers' : ''}`);
}

/**
 * The pid file, which `muxvisor stop` trusts: it must name this home's supervisor. One naming
 * another process (the pid was reused) is dangerous: `stop --force` would signal that process.
 */
export function pidFileCheck(facts: Facts): Check {
  const title = 'pid file';
  const { layout, probe, pidFile: p } = facts;
  const path = layout.pidPath;
  const answered = probe.kind === 'answered' ? probe.pid : null;
  const repair = answered === null ? `rm ${sh(path)}` : `echo ${answered} > ${sh(path)}`;
  if (!p.present) {
    if (answered !== null) return check('pid-file', title, 'warn', `${path} is missing, but supervisor pid ${answered} answers: \`muxvisor stop\` cannot find it`, repair);
    return check('pid-file', title, 'ok', `${path} does not exist: no supervisor runs`);
  }
  if (p.pid === null) return check('pid-file', title, 'warn', `${path} holds \`${p.garbage}\`, not a pid`, repair);
  if (!p.alive) {
    return check('pid-file', title, 'warn', `${path} is stale: it names pid ${p.pid}, which is not running (left by a supervisor that was killed; the next supervisor overwrites it)`, repair);
  }
  if (p.supervisor === null) return check('pid-file', title, 'warn', `${path} names live pid ${p.pid}, but /proc/${p.pid}/cmdline cannot be read to tell whether it is a supervisor`);
  if (!p.supervisor) {
    const what = clip((p.argv ?? []).map((a, i) => (i === 0 ? basename(a) : a)).join(' '), 60);
    return check('pid-file', title, 'fail', `${path} names pid ${p.pid}, which is \`${what}\`, not a muxvisor supervisor: the pid was reused, and \`muxvisor stop --force\` would signal that process`, repair);
  }
  if (facts.liveSupervisor === null) {
    return check('pid-file', title, 'fail', `${path} names pid ${p.pid}, the supervisor of another home (${p.servesHome})`, repair);
  }
  if (answered !== null && answered !== p.pid) {
    return check('pid-file', title, 'fail', `${path} names supervisor pid ${p.pid}, but pid ${answered} answers on the socket`, repair);
  }
  return check('pid-file', title, 'ok', `${path}: pid ${p.pid}, this home's supervisor`);
}

/**
 * The supervisor process: not running is fine (a client starts one); running but not answering
 * on its socket is not (every client hangs or fails).
 */
export function supervisorCheck(facts: Facts): Check {
  const title = 'supervisor';
  const { layout, probe } = facts;
  const pid = facts.liveSupervisor;
  const h = homeOption(layout);
  if (probe.kind === 'answered') return check('supervisor', title, 'ok', `pid ${probe.pid} answers at ${layout.socketPath} (handshake in ${probe.ms.toFixed(0)} ms)`);
  if (probe.kind === 'refused') {
    const seeAlso = probe.code === 'MUXVISOR_BAD_TOKEN' ? 'token' : probe.code === 'MUXVISOR_VERSION_MISMATCH' || probe.code === 'MUXVISOR_UNSUPPORTED_VERSION' ? 'version'
      : probe.code === 'MUXVISOR_INVALID_ARGUMENT' && layout.socketFallback ? 'socket path' : probe.errno === 'EACCES' ? 'socket' : null;
    if (seeAlso !== null) return check('supervisor', title, 'skip', `${pid === null ? 'it' : `pid ${pid}`} could not be asked: ${probe.code} (see the ${seeAlso} check)`);
    if (probe.code === 'MUXVISOR_SHUTTING_DOWN') return check('supervisor', title, 'warn', `${pid === null ? 'it' : `pid ${pid}`} is shutting down; run the doctor again once it is gone`);
    return check('supervisor', title, 'fail', `${pid === null ? 'the process at the socket' : `pid ${pid}`} refused this client: ${probe.code}: ${probe.message}`, `muxvisor stop --force${h} && muxvisor start${h}`);
  }
  if (pid === null) {
    if (probe.kind === 'silent') {
      return check('supervisor', title, 'fail', `something at ${layout.socketPath} accepts connections but sent no WELCOME within ${probe.ms} ms, and the pid file names no live supervisor`, `rm ${sh(layout.socketPath)}`);
    }
    return check('supervisor', title, 'ok', 'not running (the next client starts one; the doctor does not)');
  }
  if (probe.kind === 'silent') {
    if (facts.pidFile.state === 'T') {
      return check('supervisor', title, 'fail', `pid ${pid} is stopped (SIGSTOP or ctrl+z): every client waits, and none gets a WELCOME (none within ${probe.ms} ms); if it still does not answer once resumed, \`muxvisor stop --force${h}\``, `kill -CONT ${pid}`);
    }
    return check('supervisor', title, 'fail', `pid ${pid} runs but sent no WELCOME within ${probe.ms} ms: it hangs, and so does every client`, `muxvisor stop --force${h}`);
  }
  if (facts.noToken) return check('supervisor', title, 'skip', `pid ${pid} runs, but there is no token to ask it with (see the token check)`);
  const why = probe.errno === 'ENOENT' ? `its socket ${layout.socketPath} is gone` : probe.errno !== null ? `nothing listens at ${layout.socketPath} (${probe.errno})` : clip(probe.message, 120);
  return check('supervisor', title, 'fail', `pid ${pid} runs, but ${why}: no client can reach it (if it is just starting, run the doctor again)`, `muxvisor stop --force${h} && muxvisor start${h}`);
}

/** The supervisor's version against this CLI's: an old supervisor keeps running old code. */
export function versionCheck(facts: Facts): Check {
  const title = 'version';
  const { layout, probe } = facts;
  const h = homeOption(layout);
  if (probe.kind === 'answered') {
    if (probe.version === VERSION) return check('version', title, 'ok', `supervisor pid ${probe.pid} runs muxvisor ${probe.version}, like this CLI`);
    return check('version', title, 'fail', `supervisor pid ${probe.pid} runs muxvisor ${probe.version}, this CLI is ${VERSION}: restart it (clients then start the new one)`, `muxvisor stop${h} && muxvisor start${h}`);
  }
  if (probe.kind === 'refused' && (probe.code === 'MUXVISOR_VERSION_MISMATCH' || probe.code === 'MUXVISOR_UNSUPPORTED_VERSION')) {
    return check('version', title, 'fail', `the supervisor speaks another protocol than this CLI (muxvisor ${VERSION}): ${probe.message}`, `muxvisor stop --force${h} && muxvisor start${h}`);
  }
  return check('version', title, 'skip', `no supervisor answered; this CLI is muxvisor ${VERSION}`);
}
