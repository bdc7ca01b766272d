/**
 * The second baseline's server: what a Node user would hand-roll with msgpackr alone. A plain
 * Unix socket server; each connection is read through msgpackr's UnpackrStream and answered
 * through its PackrStream (msgpack values are self-delimiting: no length prefix, no header),
 * with msgpackr's defaults (records on). No muxvisor code at all.
 *
 * Messages are tuples: `[op, id, value]` in, `[id, value]` out. It counts `publish`es (no
 * reply), echoes a `ping` as `[id]`, answers a `request` with the same one-value result the
 * contender's `echo` request gets, and a `finish` with the count.
 * `node msgpackr-server.js <socket path>` prints `ready` when it listens.
 */
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { PackrStream, UnpackrStream } from 'msgpackr';

/** What msgpackr-client sends. */
export type PointToPointMessage =
  | ['publish', number, unknown]
  | ['ping', number]
  | ['request', number, unknown]
  | ['finish', number];

const path = process.argv[2] as string;
rmSync(path, { force: true });

const server = createServer((socket) => {
  const out = new PackrStream();
  const input = new UnpackrStream();
  let published = 0;
  out.pipe(socket);
  socket.pipe(input).on('data', (message: PointToPointMessage) => {
    switch (message[0]) {
      case 'publish':
        published++;
        return;
      case 'ping':
        out.write([message[1]]);
        return;
      case 'request':
        out.write([message[1], 1]);
        return;
      case 'finish':
        out.write([message[1], { records: published }]);
        published = 0;
        return;
    }
  });
  for (const stream of [socket, out, input]) {
    stream.on('error', (error: Error) => {
      process.stderr.write(`msgpackr-server: ${error.stack ?? error.message}\n`);
      socket.destroy();
    });
  }
});
server.listen(path, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
