/**
 * The cold-start baseline's server: the least a server process can be. It listens on a Unix
 * socket, echoes what it reads, and nothing else (no framing, no modules of ours).
 * `node echo-server.js <socket path>` prints `ready` once it listens, and exits when its stdin
 * ends (so it never outlives the process that started it).
 */
import { createServer } from 'node:net';

const server = createServer((socket) => {
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('error', () => {});
});
server.listen(process.argv[2] as string, () => process.stdout.write('ready\n'));
process.stdin.resume();
process.stdin.once('end', () => process.exit(0));
