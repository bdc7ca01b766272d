/**
 * The home's directories and its token: do they exist, are they this user's, and can nobody else
 * get in. The supervisor creates all of them private (700, token 600); anything else was changed
 * behind its back, or made by hand before it first ran.
 */
import { readFileSync } from 'node:fs';
import type { HomeLayout } from '../../../protocol/index.js';
import { type Check, check, chownFix, homeOption, me, nearestExisting, octal, ownedByMe, sh, statOrNull, writableDir } from './check.js';
import type { Facts } from './facts.js';

const TOKEN_PATTERN = /^[0-9a-f]{64}$/;

/**
 * The home: missing is fine when it can be created. Others being able to write in it is a
 * problem (they could swap `run/` for their own, with their token and socket); others reading or
 * listing it only a warning (what matters inside is private).
 */
export function homeCheck(layout: HomeLayout): Check {
  const title = 'home directory';
  const home = layout.home;
  const stats = statOrNull(home);
  if (stats === null) {
    const parent = nearestExisting(home);
    if (writableDir(parent)) return check('home', title, 'ok', `${home} does not exist yet: it is created (mode 700) on first use`);
    return check('home', title, 'fail', `${home} does not exist and cannot be created: ${parent} is not writable by you`, `sudo install -d -m 700 -o ${sh(me().user)} ${sh(home)}`);
  }
  if (!stats.isDirectory()) return check('home', title, 'fail', `${home} is not a directory`, `mv ${sh(home)} ${sh(`${home}.bak`)}`);
  if (!ownedByMe(stats)) return check('home', title, 'fail', `${home} is owned by uid ${stats.uid}, not by you (uid ${process.getuid?.()})`, chownFix(home));
  if ((stats.mode & 0o022) !== 0) {
    return check('home', title, 'fail', `${home} has mode ${octal(stats)}: others can write in it, so they could replace run/ (the socket and token clients trust)`, `chmod 700 ${sh(home)}`);
  }
  if ((stats.mode & 0o077) !== 0) {
    return check('home', title, 'warn', `${home} has mode ${octal(stats)}, not 700: others can list it (what matters inside is private)`, `chmod 700 ${sh(home)}`);
  }
  return check('home', title, 'ok', `${home}: yours, mode ${octal(stats)}`);
}

/** `run/`: holds the socket, the token and the pid file; any access for others is a problem. */
export function runtimeDirCheck(layout: HomeLayout): Check {
  const title = 'runtime directory';
  const dir = layout.runtimeDir;
  const stats = statOrNull(dir);
  if (stats === null) return check('runtime-dir', title, 'ok', `${dir} does not exist yet: the supervisor creates it (mode 700)`);
  if (!stats.isDirectory()) return check('runtime-dir', title, 'fail', `${dir} is not a directory: no supervisor can start`, `rm ${sh(dir)}`);
  if (!ownedByMe(stats)) return check('runtime-dir', title, 'fail', `${dir} is owned by uid ${stats.uid}, not by you (uid ${process.getuid?.()})`, chownFix(dir));
  if ((stats.mode & 0o077) !== 0) {
    return check('runtime-dir', title, 'fail', `${dir} has mode ${octal(stats)}, not 700: it guards the socket and the token`, `chmod 700 ${sh(dir)}`);
  }
  return check('runtime-dir', title, 'ok', `${dir}: yours, mode ${octal(stats)}`);
}

/** `runs/` and `logs/`: the data of every run and the logs. Readable by others: a warning. */
export function dataDirsCheck(layout: HomeLayout): Check {
  const title = 'runs and logs directories';
  const present: string[] = [];
  const loose: string[] = [];
  for (const dir of [layout.runsDir, layout.logsDir]) {
    const stats = statOrNull(dir);
    if (stats === null) continue;
    present.push(dir);
    if (!stats.isDirectory()) return check('data-dirs', title, 'fail', `${dir} is not a directory`, `mv ${sh(dir)} ${sh(`${dir}.bak`)}`);
    if (!ownedByMe(stats)) return check('data-dirs', title, 'fail', `${dir} is owned by uid ${stats.uid}, not by you (uid ${process.getuid?.()})`, chownFix(dir));
    if ((stats.mode & 0o077) !== 0) loose.push(`${dir} (mode ${octal(stats)})`);
  }
  if (loose.length > 0) {
    const paths = loose.map((l) => sh(l.slice(0, l.lastIndexOf(' ('))));
    return check('data-dirs', title, 'warn', `others can read ${loose.join(' and ')}: run data and logs`, `chmod 700 ${paths.join(' ')}`);
  }
  if (present.length === 0) return check('data-dirs', title, 'ok', 'none yet: the supervisor creates them (mode 700)');
  return check('data-dirs', title, 'ok', `${present.join(' and ')}: yours, private`);
}

/**
 * The token every client presents. A wrong one (not 64 hex characters, or not the running
 * supervisor's) makes every client fail with MUXVISOR_BAD_TOKEN; a missing one while a
 * supervisor runs leaves every client unable to connect.
 */
export function tokenCheck(facts: Facts): Check {
  const title = 'token';
  const { layout, probe } = facts;
  const path = layout.tokenPath;
  const running = facts.liveSupervisor ?? (probe.kind === 'answered' ? probe.pid : null);
  const restart = `muxvisor stop --force${homeOption(layout)} && rm -f ${sh(path)} && muxvisor start${homeOption(layout)}`;
  const stats = statOrNull(path);
  if (stats === null) {
    if (running !== null) return check('token', title, 'fail', `${path} is missing while supervisor pid ${running} runs: no client can connect to it`, restart);
    return check('token', title, 'ok', `${path} does not exist yet: the supervisor creates it (mode 600)`);
  }
  if (!stats.isFile()) return check('token', title, 'fail', `${path} is not a file`, `rm -r ${sh(path)}`);
  if (!ownedByMe(stats)) return check('token', title, 'fail', `${path} is owned by uid ${stats.uid}, not by you (uid ${process.getuid?.()})`, chownFix(path));
  let token = '';
  try {
    token = readFileSync(path, 'utf8').trim();
  } catch (error) {
    return check('token', title, 'fail', `${path} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, `chmod 600 ${sh(path)}`);
  }
  if (!TOKEN_PATTERN.test(token)) {
    const what = `${path} holds ${token.length} characters, not 64 lowercase hex characters`;
    if (running !== null) return check('token', title, 'fail', `${what}: supervisor pid ${running} refuses every client (MUXVISOR_BAD_TOKEN)`, restart);
    return check('token', title, 'warn', `${what}; no supervisor runs, and the next one replaces it`, `rm ${sh(path)}`);
  }
  if (probe.kind === 'refused' && probe.code === 'MUXVISOR_BAD_TOKEN') {
    return check('token', title, 'fail', `${path} is not the token of the running supervisor${running === null ? '' : ` (pid ${running})`}: it refuses every client (MUXVISOR_BAD_TOKEN)`, restart);
  }
  if ((stats.mode & 0o077) !== 0) return check('token', title, 'fail', `${path} has mode ${octal(stats)}, not 600: it is the secret every client presents`, `chmod 600 ${sh(path)}`);
  return check('token', title, 'ok', `${path}: yours, mode ${octal(stats)}, 64 hex characters${probe.kind === 'answered' ? ', accepted by the supervisor' : ''}`);
}
