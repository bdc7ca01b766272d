/**
 * The baseline server: a plain Node Unix socket server with muxvisor's framing and batching
 * (FrameDecoder in, one coalesced write per turn out) and none of its logic: no handshake, no
 * msgpack check, no worker thread, no log. It counts PUBLISHes, echoes PINGs, answers a REQUEST
 * with the same one-byte result the contender's `echo` request gets, and a FINISH with the count.
 * `node raw-server.js <socket path>` prints `ready` when it listens.
 */
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { encodeFrame, encodeFrameWithValue, FrameDecoder, Kind } from '../../protocol/index.js';
import { FrameWriter } from '../../supervisor/writer.js';

const path = process.argv[2] as string;
rmSync(path, { force: true });

const server = createServer((socket) => {
  const writer = new FrameWriter(socket);
  let published = 0;
  const decoder = new FrameDecoder((f) => {
    switch (f.kind) {
      case Kind.Publish:
        published++;
        return;
      case Kind.Ping:
        writer.write(encodeFrame({ kind: Kind.Pong, flags: 0, id: f.id, channel: 0 }, f.payload));
        return;
      case Kind.Request:
        writer.write(encodeFrameWithValue({ kind: Kind.Response, flags: 0, id: f.id, channel: 0 }, 1));
        return;
      case Kind.Finish:
        writer.write(encodeFrameWithValue({ kind: Kind.Response, flags: 0, id: f.id, channel: 0 }, { records: published }));
        published = 0;
        return;
    }
  });
  socket.on('data', (chunk) => decoder.push(chunk));
  socket.on('error', () => {});
});
server.listen(path, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
