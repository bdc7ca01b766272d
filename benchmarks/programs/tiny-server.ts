/**
 * The trivial service of the start-up benchmark: a TCP server on $PORT that accepts and closes.
 * What it costs to start (Node's own start-up) is the floor any supervisor's start-to-ready sits on.
 */
import { createServer } from 'node:net';

createServer((socket) => socket.end()).listen(Number(process.env.PORT), '127.0.0.1');
