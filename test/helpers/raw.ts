/**
 * A raw socket client for tests that speak the protocol by hand (bad input): sends bytes, and
 * collects every frame the supervisor sends until it closes the connection.
 */
import { connect, type Socket } from 'node:net';
import {
  decodeMessage, encodeMessage, type Frame, FrameDecoder, Kind, type Message, PROTOCOL_VERSIONS,
} from '../../protocol/index.js';

export interface RawClient {
  socket: Socket;
  /** Every message received, in order. */
  messages: Message[];
  send(bytes: Uint8Array): void;
  /** Sends HELLO and waits for the answer (WELCOME or ERROR). */
  hello(token: string, versions?: readonly [number, number]): Promise<Message>;
  /** Resolves with the first message not yet returned by `next` that satisfies `match`. */
  next(match?: (m: Message) => boolean, ms?: number): Promise<Message>;
  /** Resolves when the supervisor has closed the connection. */
  closed: Promise<void>;
  close(): void;
}

export async function rawClient(socketPath: string): Promise<RawClient> {
  const socket = connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const messages: Message[] = [];
  const consumed = new Set<Message>();
  const waiters: Array<{ match: (m: Message) => boolean; resolve: (m: Message) => void }> = [];
  const decoder = new FrameDecoder((f: Frame) => {
    const m = decodeMessage(f);
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.match(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  socket.on('data', (chunk) => decoder.push(chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const client: RawClient = {
    socket,
    messages,
    closed,
    send: (bytes) => socket.write(bytes),
    next(match = () => true, ms = 5_000) {
      const seen = messages.find((m) => !consumed.has(m) && match(m));
      if (seen) {
        consumed.add(seen);
        return Promise.resolve(seen);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching message within ${ms} ms (got ${JSON.stringify(messages)})`)), ms);
        waiters.push({ match: (m) => !consumed.has(m) && match(m), resolve: (m) => { consumed.add(m); clearTimeout(timer); resolve(m); } });
      });
    },
    hello(token, versions = PROTOCOL_VERSIONS) {
      const answer = client.next((m) => m.kind === Kind.Welcome || m.kind === Kind.Error);
      socket.write(encodeMessage({ kind: Kind.Hello, versions, token, pid: process.pid, name: 'raw-test', caps: [] }));
      return answer;
    },
    close: () => socket.destroy(),
  };
  return client;
}
