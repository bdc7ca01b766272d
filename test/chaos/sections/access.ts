/**
 * Access (issue 7): who may reach a supervisor, and what its home lets others see.
 *
 * - Another user (uid 65534, when the suite runs as root; skipped with the reason otherwise)
 *   cannot connect to the socket, read the token or any run data or log, through the home or the
 *   /tmp fallback socket, each barrier tested on its own (access/other-user.ts).
 * - A client with a wrong, empty or missing token, or with no HELLO at all (also one that says
 *   nothing), is refused before it can do anything: one fatal ERROR with the right code, the
 *   connection closed, and nothing it sent after has any effect (access/refusal.ts), checked
 *   against a positive control that sends the same with the right token.
 * - Every file and directory of a home after a realistic session has its documented mode and
 *   owner (access/modes.ts); an undocumented file is a violation.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { waitForExit } from '../../../lib/daemon.js';
import { encodeMessage, ErrorCode, homeLayout, Kind, MAX_SOCKET_PATH_BYTES, type Message, newToken } from '../../../protocol/index.js';
import { eventually } from '../../helpers/home.js';
import { checkOtherUser } from '../access/other-user.js';
import { HOME_RULES, modeProblem, octal, walk } from '../access/modes.js';
import { converse, hello, helloWithoutToken, intrusionFrames, refusalProblem } from '../access/refusal.js';
import { realisticSession, SERVICE_NAME } from '../access/session.js';
import type { SectionContext } from '../context.js';
import type { Section } from '../section.js';

/** The supervisor's default: how long a connection has to say HELLO (supervisor/options.ts). */
const HANDSHAKE_TIMEOUT_MS = 5_000;

export const access: Section = {
  name: 'access',
  title: 'access: other users, tokens, file modes',
  async run(ctx) {
    // The supervisor creates the home itself (its mode is one of the checks): remove the empty dir.
    const home = ctx.home();
    rmSync(home.home, { recursive: true, force: true });
    // A home whose socket path is too long: its socket falls back to /tmp/muxvisor-<uid>/.
    const longBase = ctx.home().home;
    const longHome = join(longBase, 'l'.repeat(Math.max(1, MAX_SOCKET_PATH_BYTES - longBase.length - 10)));
    const long = homeLayout(longHome);
    if (!ctx.check(long.socketFallback, 'access long home falls back', () => `${longHome}: its socket path fits, no fallback to test`)) return;

    const started = await Promise.all([home.home, longHome].map((h) => ctx.cli(['start', '--home', h, '--idle-timeout-ms', '0'])));
    try {
      for (const [i, s] of started.entries()) {
        if (!ctx.check(s.code === 0, 'access supervisor started', () => `muxvisor start (home ${i}) exited ${s.code}: ${s.stderr.trim()}`)) return;
      }
      // Saying nothing takes the handshake timeout to be refused: start it first, judge it last.
      const silent = converse(home.layout.socketPath, Buffer.alloc(0), null, { waitMs: HANDSHAKE_TIMEOUT_MS + 5_000 });

      const session = await realisticSession(ctx, home.home);
      checkModes(ctx, home.home, long);
      await checkRefusals(ctx, home.home, session.client);

      const token = (path: string) => readFileSync(path, 'utf8').trim();
      const pid = (path: string) => Number(readFileSync(path, 'utf8').trim());
      if (process.getuid?.() !== 0) {
        ctx.skip(`the other-user check needs root to run a probe as uid 65534 (this runs as uid ${process.getuid?.() ?? 'unknown'})`);
      } else {
        const reason = await checkOtherUser(ctx,
          { layout: home.layout, token: token(home.layout.tokenPath), supervisorPid: pid(home.layout.pidPath), dataFiles: session.dataFiles, servicePids: [session.servicePid] },
          { layout: long, token: token(long.tokenPath), supervisorPid: pid(long.pidPath), dataFiles: [], servicePids: [] },
          [longBase]);
        if (reason !== null) ctx.skip(`the other-user check: ${reason}`);
      }

      const quiet = await silent;
      ctx.count('refused clients');
      ctx.check(refusalProblem(quiet, ErrorCode.Timeout) === null, 'access silent client refused', () => `a client that never sent HELLO: ${refusalProblem(quiet, ErrorCode.Timeout)}`);
      await session.openRun.finish();
      await session.client.services.remove(SERVICE_NAME);
      await session.client.close();
    } finally {
      await stopLongHome(long.pidPath);
    }
  },
};

/** Walks both homes (and the fallback socket's directory) and checks every entry's mode and owner. */
function checkModes(ctx: SectionContext, home: string, long: ReturnType<typeof homeLayout>): void {
  const uid = process.getuid?.() ?? -1;
  for (const root of [home, long.home]) {
    const entries = walk(root);
    ctx.check(entries.some((e) => e.rel === 'runs/access-done/run.mvlog') || root !== home, 'access walk saw the session', () => `the walk of ${root} found no run log: it checked nothing`);
    for (const entry of entries) {
      ctx.count('paths checked');
      const problem = modeProblem(entry, HOME_RULES, uid);
      ctx.check(problem === null, 'access file mode', () => `${root}: ${problem}`);
    }
  }
  const dir = dirname(long.socketPath);
  for (const [path, type, mode] of [[dir, 'dir', 0o700], [long.socketPath, 'socket', 0o600]] as const) {
    ctx.count('paths checked');
    let s;
    try {
      s = lstatSync(path);
    } catch (error) {
      ctx.violation('access file mode', `${path}: ${(error as Error).message}`);
      continue;
    }
    const actual = s.isDirectory() ? 'dir' : s.isSocket() ? 'socket' : 'other';
    ctx.check(actual === type && (s.mode & 0o7777) === mode && s.uid === uid, 'access file mode',
      () => `${path} is a ${actual} with mode ${octal(s.mode & 0o7777)}, owner ${s.uid}; expected a ${type} with mode ${octal(mode)}, owner ${uid} (PROTOCOL.md §12)`);
  }
}

/**
 * The refused clients, all at once, then a positive control with the right token; then what
 * none of them may have left: a run directory, a service, a marker file, a record in the victim.
 */
async function checkRefusals(ctx: SectionContext, home: string, client: Awaited<ReturnType<typeof realisticSession>>['client']): Promise<void> {
  const layout = homeLayout(home);
  const token = readFileSync(layout.tokenPath, 'utf8').trim();
  const markers = ctx.home().home;
  const victim = await client.openRun('access-victim');
  const controlVictim = await client.openRun('access-victim-control');
  for (const run of [victim, controlVictim]) for (let i = 0; i < 20; i++) run.publish({ owner: i });
  await Promise.all([victim.sync(), controlVictim.sync()]);

  const wrong = newToken();
  const flipped = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
  const cases: Array<{ name: string; opening: Buffer; code: string }> = [
    { name: 'a random token', opening: hello(wrong), code: ErrorCode.BadToken },
    { name: 'the token with its last character changed', opening: hello(flipped), code: ErrorCode.BadToken },
    { name: 'the token with one more character', opening: hello(`${token}0`), code: ErrorCode.BadToken },
    { name: 'the token cut short', opening: hello(token.slice(0, 32)), code: ErrorCode.BadToken },
    { name: 'an empty token', opening: hello(''), code: ErrorCode.BadToken },
    { name: 'a HELLO without a token field', opening: helloWithoutToken(), code: ErrorCode.BadMessage },
    { name: 'a wrong token, then the right one', opening: Buffer.concat([hello(wrong), hello(token)]), code: ErrorCode.BadToken },
    { name: 'no HELLO (OPEN first)', opening: Buffer.alloc(0), code: ErrorCode.HandshakeRequired },
    { name: 'no HELLO (PING first)', opening: encodeMessage({ kind: Kind.Ping, id: 9 }), code: ErrorCode.HandshakeRequired },
  ];
  const intrusion = (tag: string, finishVictim: boolean, victimRun: string) =>
    intrusionFrames({ evilRun: `evil-${tag}`, evilService: `evil-${tag}`, marker: join(markers, `evil-${tag}`), victimRun, records: 5, finishVictim });
  const talks = await Promise.all(cases.map((c, i) =>
    converse(layout.socketPath, Buffer.concat([c.opening, intrusion(`${i}`, true, victim.id)]), intrusion(`${i}-late`, true, victim.id), { waitMs: 5_000 })));
  for (const [i, c] of cases.entries()) {
    ctx.count('refused clients');
    const problem = refusalProblem(talks[i] as Awaited<ReturnType<typeof converse>>, c.code);
    ctx.check(problem === null, 'access bad client refused', () => `a client with ${c.name}: ${problem}`);
  }

  // The positive control: the same script with the right token must have every effect.
  const answered = new Set([101, 102, 103, 104, 105, 106]);
  const control = await converse(layout.socketPath, Buffer.concat([hello(token), intrusion('control', false, controlVictim.id)]), null, {
    waitMs: 15_000,
    until: (ms: Message[]) => [...answered].every((id) => ms.some((m) => 'id' in m && m.id === id && m.kind !== Kind.Error)),
  });
  const markerOf = (tag: string) => join(markers, `evil-${tag}`);
  const controlMarker = await eventually(() => existsSync(markerOf('control')), 'the control service to write its marker', 10_000).catch(() => false);
  const controlRecords = (await controlVictim.finish()).records;
  const controlOk = control.messages[0]?.kind === Kind.Welcome && controlMarker && existsSync(join(layout.runsDir, 'evil-control'))
    && (await client.services.list()).some((s) => s.name === 'evil-control') && controlRecords === 25;
  ctx.check(controlOk, 'access positive control', () =>
    `with the right token the same script should open evil-control, add and run its service and add 5 records to its victim; got ${control.messages.map((m) => m.kind).join(',')}, marker ${controlMarker}, victim ${controlRecords} records: the refusal checks prove nothing`);
  // A refused client's service would have run by now too: the control's did.
  const evilRuns = readdirSync(layout.runsDir).filter((name) => name.startsWith('evil-') && name !== 'evil-control');
  ctx.check(evilRuns.length === 0, 'access refused client had an effect', () => `refused clients created run directories: ${evilRuns.join(', ')}`);
  const evilServices = (await client.services.list()).map((s) => s.name).filter((name) => name.startsWith('evil-') && name !== 'evil-control');
  ctx.check(evilServices.length === 0, 'access refused client had an effect', () => `refused clients added services: ${evilServices.join(', ')}`);
  const evilMarkers = readdirSync(markers).filter((name) => name !== 'evil-control');
  ctx.check(evilMarkers.length === 0, 'access refused client had an effect', () => `commands of refused clients ran: ${evilMarkers.join(', ')}`);
  try {
    for (let i = 0; i < 20; i++) victim.publish({ owner: 20 + i });
    const kept = await victim.finish();
    ctx.check(kept.records === 40 && kept.status === 'ok', 'access refused client had an effect', () => `the victim run holds ${kept.records} records (status ${kept.status}), its owner published 40 and finished it ok`);
  } catch (error) {
    ctx.violation('access refused client had an effect', `the victim run's owner could not publish to it and finish it: ${(error as Error).message}`);
  }
  await client.services.remove('evil-control').catch(() => {});
}

/** Stops the long home's supervisor (the context does not know that home). */
async function stopLongHome(pidPath: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidPath, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  if (!(await waitForExit(pid, 10_000))) {
    process.kill(pid, 'SIGKILL');
    await waitForExit(pid, 5_000);
  }
}
