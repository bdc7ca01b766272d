/**
 * Clients that must be refused at the door: a wrong token, an empty or missing one, no HELLO at
 * all. Each speaks raw frames (protocol/ encoders, no library) and, in the same write as its bad
 * opening, asks for everything it should not get: a run of its own (OPEN, PUBLISH, SYNC), a
 * service that would run a command (`services.add`), the supervisor's status, a PING, and into a
 * victim's live run (ATTACH, PUBLISH, FINISH). A second write follows a moment later.
 *
 * A refusal is: exactly one message back, an ERROR with id 0, `fatal: true` and the expected
 * code, then the connection closed by the supervisor; and no effect at all (checked by the
 * caller: no run directory, no service, no marker file, the victim's records untouched).
 *
 * A positive control speaks the same script with the right token: it must get its answers and
 * leave every one of those effects, or the checks of the refused cases prove nothing.
 */
import { connect } from 'node:net';
import {
  decodeMessage, encodeFrameWithValue, encodeMessage, type ErrorMessage, type Frame, FrameDecoder, Kind, type Message,
  PROTOCOL_VERSIONS,
} from '../../../protocol/index.js';

export interface Intrusion {
  /** The run the intruder tries to open: `runs/<evilRun>/` must not appear. */
  evilRun: string;
  /** The service it tries to add; running it would create `marker`. */
  evilService: string;
  marker: string;
  /** A live run of a well-behaved client the intruder attaches to and publishes into. */
  victimRun: string;
  /** Records it publishes into the victim (and into its own run). */
  records: number;
  /** Also FINISH the victim (left out of the positive control, which must not end its victim). */
  finishVictim: boolean;
}

/** The frames that would have effects if the supervisor took them. OPEN gets channel 1, ATTACH 2. */
export function intrusionFrames(i: Intrusion): Buffer {
  const frames: Buffer[] = [
    encodeMessage({ kind: Kind.Open, id: 101, run: i.evilRun }),
    ...Array.from({ length: i.records }, (_, n) => encodeMessage({ kind: Kind.Publish, channel: 1, record: { intruder: n } })),
    encodeMessage({ kind: Kind.Sync, id: 102, channel: 1 }),
    encodeMessage({
      kind: Kind.Request, id: 103, channel: 0, op: 'services.add',
      args: {
        definition: {
          name: i.evilService, command: process.execPath,
          args: ['-e', `require('node:fs').writeFileSync(${JSON.stringify(i.marker)}, 'intruder')`],
          readiness: { type: 'none' }, restart: { policy: 'never' },
        },
      },
    }),
    encodeMessage({ kind: Kind.Request, id: 104, channel: 0, op: 'status' }),
    encodeMessage({ kind: Kind.Ping, id: 105 }),
    encodeMessage({ kind: Kind.Attach, id: 106, run: i.victimRun }),
    ...Array.from({ length: i.records }, (_, n) => encodeMessage({ kind: Kind.Publish, channel: 2, record: { intruder: n } })),
  ];
  if (i.finishVictim) frames.push(encodeMessage({ kind: Kind.Finish, id: 107, channel: 2, status: 'failed', reason: 'intruder' }));
  return Buffer.concat(frames);
}

/** A HELLO presenting `token`. */
export function hello(token: string): Buffer {
  return encodeMessage({ kind: Kind.Hello, versions: PROTOCOL_VERSIONS, token, pid: process.pid, name: 'chaos-intruder', caps: [] });
}

/** A HELLO whose map has no `token` field at all (hand-built: the encoder would not allow it). */
export function helloWithoutToken(): Buffer {
  return encodeFrameWithValue({ kind: Kind.Hello, flags: 0, id: 0, channel: 0 }, { versions: [...PROTOCOL_VERSIONS], pid: process.pid, name: 'chaos-intruder', caps: [] });
}

export interface Conversation {
  messages: Message[];
  /** True when the supervisor closed the connection within the wait. */
  closed: boolean;
  /** From the first write to the close (or the end of the wait). */
  ms: number;
  /** A frame we could not decode, or a socket error other than the peer going away. */
  problem: string | null;
}

/**
 * Connects to `socketPath`, writes `first`, then `second` after `gapMs` (if the socket is still
 * writable), and collects what comes back until the supervisor closes the connection or `waitMs`
 * pass, or (`until`) once what came back is enough. The socket is destroyed before this resolves.
 */
export function converse(
  socketPath: string, first: Buffer, second: Buffer | null,
  options: { gapMs?: number; waitMs?: number; until?: (messages: Message[]) => boolean } = {},
): Promise<Conversation> {
  const gapMs = options.gapMs ?? 100;
  const waitMs = options.waitMs ?? 5_000;
  return new Promise((resolve) => {
    const messages: Message[] = [];
    let problem: string | null = null;
    let started = 0;
    const socket = connect(socketPath);
    const decoder = new FrameDecoder((f: Frame) => {
      try {
        messages.push(decodeMessage(f));
      } catch (error) {
        problem ??= `undecodable frame from the supervisor: ${(error as Error).message}`;
      }
    });
    const finish = (closed: boolean) => {
      clearTimeout(waitTimer);
      clearTimeout(gapTimer);
      socket.destroy();
      resolve({ messages, closed, ms: started === 0 ? 0 : Date.now() - started, problem });
    };
    const waitTimer = setTimeout(() => finish(false), waitMs);
    let gapTimer: NodeJS.Timeout | undefined;
    socket.on('data', (chunk) => {
      try {
        decoder.push(chunk);
        if (options.until?.(messages)) finish(false);
      } catch (error) {
        problem ??= `bad framing from the supervisor: ${(error as Error).message}`;
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // The supervisor closing on us while we still write is expected: EPIPE, ECONNRESET.
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') problem ??= `socket error: ${error.code ?? error.message}`;
    });
    socket.once('close', () => finish(true));
    socket.once('connect', () => {
      started = Date.now();
      socket.write(first);
      if (second !== null) {
        gapTimer = setTimeout(() => {
          if (socket.writable) socket.write(second);
        }, gapMs);
      }
    });
  });
}

/** Describes a refusal that went wrong, or returns null when `c` is exactly one fatal `code`. */
export function refusalProblem(c: Conversation, code: string): string | null {
  if (c.problem !== null) return c.problem;
  const summary = c.messages.map((m) => (m.kind === Kind.Error ? `ERROR ${(m as ErrorMessage).error.code}` : `kind 0x${m.kind.toString(16)}`)).join(', ');
  if (c.messages.length !== 1) return `expected exactly one ERROR ${code}, got ${c.messages.length} messages: ${summary || 'none'}`;
  const m = c.messages[0] as Message;
  if (m.kind !== Kind.Error) return `expected ERROR ${code}, got ${summary}`;
  if (m.error.code !== code) return `expected ERROR ${code}, got ERROR ${m.error.code}: ${m.error.message}`;
  if (m.id !== 0 || !m.fatal) return `the ERROR ${code} had id ${m.id} and fatal ${m.fatal}, expected id 0 and fatal true`;
  if (!c.closed) return `the supervisor sent ERROR ${code} but did not close the connection`;
  return null;
}
