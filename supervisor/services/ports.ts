/**
 * Ports for services: a free one chosen by the kernel, and whether a given one is free.
 *
 * Contract: a port reported free was bindable on 127.0.0.1 a moment ago; nothing reserves it,
 * so the service that gets it should bind it at once (the usual race of every port allocator).
 */
import { createServer } from 'node:net';

/** A port the kernel says is free on `host`. */
export function allocatePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when `port` can be bound on `host` right now. */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
