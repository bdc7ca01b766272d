/**
 * Definitions of common companions, with probes that mean "ready" for each. Each returns a plain
 * ServiceDefinition: adjust any field before passing it to `client.services.add`.
 *
 * A template whose program is not installed throws MUXVISOR_INVALID_ARGUMENT naming the program
 * and how to install it, before anything is sent.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { ErrorCode, MuxvisorError, type ServiceDefinition } from '../protocol/index.js';

interface Common {
  /** @default the template's name */
  name?: string;
  /** 0 lets the supervisor pick a free port. @default 0 */
  port?: number;
  /** Tie it to a run: stopped and removed when the run finishes. */
  run?: string;
}

/** `python3 -m http.server` serving `dir`; ready when GET / answers. */
export function httpServer(options: Common & { dir?: string } = {}): ServiceDefinition {
  const dir = resolve(options.dir ?? '.');
  return withRun({
    name: options.name ?? 'http',
    command: requireProgram('python3', 'install Python 3 (apt-get install python3)'),
    args: ['-m', 'http.server', '{port}', '--bind', '127.0.0.1', '--directory', dir],
    env: { PYTHONUNBUFFERED: '1' },
    ports: { http: options.port ?? 0 },
    url: 'http://127.0.0.1:{port}/',
    readiness: { type: 'http', path: '/', timeoutMs: 15_000 },
    restart: { policy: 'on-failure' },
  }, options.run);
}

/** `redis-server` on 127.0.0.1 without persistence; ready when it accepts connections. */
export function redis(options: Common & { dir?: string } = {}): ServiceDefinition {
  const args = ['--port', '{port}', '--bind', '127.0.0.1', '--daemonize', 'no', '--save', '', '--appendonly', 'no'];
  if (options.dir !== undefined) args.push('--dir', resolve(options.dir));
  return withRun({
    name: options.name ?? 'redis',
    command: requireProgram('redis-server', 'install it from the OS packages (apt-get install redis-server)'),
    args,
    ports: { redis: options.port ?? 0 },
    url: 'redis://127.0.0.1:{port}',
    readiness: { type: 'log', pattern: 'Ready to accept connections', timeoutMs: 15_000 },
    restart: { policy: 'on-failure' },
    stopSignal: 'SIGTERM',
  }, options.run);
}

/** TensorBoard reading `logdir`; ready when its web UI answers. */
export function tensorboard(options: Common & { logdir: string }): ServiceDefinition {
  return withRun({
    name: options.name ?? 'tensorboard',
    command: requireProgram('tensorboard', 'install it with `pip install tensorboard`'),
    args: ['--logdir', resolve(options.logdir), '--host', '127.0.0.1', '--port', '{port}'],
    ports: { http: options.port ?? 0 },
    url: 'http://127.0.0.1:{port}/',
    readiness: { type: 'http', path: '/', timeoutMs: 60_000 },
    restart: { policy: 'on-failure' },
  }, options.run);
}

/** A Streamlit app; ready when its health endpoint answers. */
export function streamlit(options: Common & { script: string }): ServiceDefinition {
  return withRun({
    name: options.name ?? 'streamlit',
    command: requireProgram('streamlit', 'install it with `pip install streamlit`'),
    args: ['run', resolve(options.script), '--server.port', '{port}', '--server.address', '127.0.0.1', '--server.headless', 'true'],
    ports: { http: options.port ?? 0 },
    url: 'http://127.0.0.1:{port}/',
    readiness: { type: 'http', path: '/_stcore/health', timeoutMs: 60_000 },
    restart: { policy: 'on-failure' },
  }, options.run);
}

function withRun(definition: ServiceDefinition, run: string | undefined): ServiceDefinition {
  return run === undefined ? definition : { ...definition, run };
}

/** The program's absolute path in PATH, or a typed error saying how to install it. */
export function requireProgram(program: string, fix: string): string {
  const found = findInPath(program);
  if (found === null) {
    throw new MuxvisorError(ErrorCode.InvalidArgument, `\`${program}\` is not installed (not found in PATH): ${fix}`, { data: { program } });
  }
  return found;
}

export function findInPath(program: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}
