/**
 * One supervisor per home, by a lock rather than by luck: an abstract Unix socket whose name is
 * derived from the home. Binding it is atomic; the kernel releases it the moment the holder dies,
 * so a crashed supervisor never leaves a stale lock behind. (Linux only: abstract sockets are a
 * Linux feature, and they are per network namespace.)
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

export interface HomeLock {
  readonly name: string;
  release(): Promise<void>;
}

export function lockName(home: string): string {
  return `\0muxvisor-${createHash('sha256').update(realpathSync(home)).digest('hex').slice(0, 32)}`;
}

/** The lock, or null when another process holds it. */
export function acquireHomeLock(home: string): Promise<HomeLock | null> {
  const name = lockName(home);
  return new Promise((resolve, reject) => {
    const server: Server = createServer((socket) => socket.destroy());
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(null) : reject(error)));
    server.listen(name, () => {
      server.unref();
      resolve({ name, release: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}
