/**
 * The built `muxvisor` command (dist/lib/cli/main.js) as a child process: run it to the end and
 * read what it printed, or start a `--follow` command, read its lines as they come, and stop it
 * with SIGINT. Children are spawned asynchronously so that this process keeps serving the other
 * children a test talks to (its own client, services it made) meanwhile.
 *
 * Contract: every child gets `NO_COLOR=1` unless the caller's env overrides it; an env value of
 * `undefined` removes that variable. A child still running at its deadline is SIGKILLed and the
 * promise rejects with what it printed so far.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI_MAIN = fileURLToPath(new URL('../../dist/lib/cli/main.js', import.meta.url));

/** Matches any ANSI escape sequence (colour, bold, ...). */
export const ANSI = /\x1b\[/;

export interface CliOptions {
  /** Added to (or, with `undefined`, removed from) this process's environment. */
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin, which is then closed (default: no stdin at all). */
  input?: string;
  /** @default 30000 */
  timeoutMs?: number;
  cwd?: string;
}

export interface CliResult {
  /** The child's pid (it shows in the supervisor's connection list while it runs). */
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout as one JSON document. */
  json<T = any>(): T;
  /** stdout as JSON lines. */
  jsonLines<T = any>(): T[];
}

/** `muxvisor --home <home> ...args` (no `--home` when `home` is null: the env decides). */
export function runCli(home: string | null, args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const { child, out, err, exited } = spawnCli(home, args, options);
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`muxvisor ${args.join(' ')} did not end within ${timeoutMs} ms; stdout: ${out()}; stderr: ${err()}`));
    }, timeoutMs);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      resolve(result(child.pid ?? 0, code, signal, out(), err(), args));
    });
  });
}

/** A command that keeps running (`--follow`, `start --foreground`): lines as they come. */
export interface FollowingCli {
  process: ChildProcess;
  /** Whole stdout lines so far, in order. */
  lines: string[];
  /** Whole stderr lines so far, in order. */
  errLines: string[];
  /** Resolves with the first stdout line (seen or to come) satisfying `match`; rejects at the deadline. */
  waitFor(match: (line: string) => boolean, ms?: number): Promise<string>;
  /** The same for stderr. */
  waitForErr(match: (line: string) => boolean, ms?: number): Promise<string>;
  /** Resolves when the child has ended on its own (or been stopped). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (SIGINT: what ctrl+c does) and waits for the end; SIGKILL after `ms`. */
  stop(signal?: NodeJS.Signals, ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function followCli(home: string | null, args: readonly string[], options: CliOptions = {}): FollowingCli {
  const { child, out, err, exited } = spawnCli(home, args, options);
  const lines: string[] = [];
  const errLines: string[] = [];
  type Waiter = { match: (line: string) => boolean; resolve: (line: string) => void };
  const waiters: { out: Waiter[]; err: Waiter[] } = { out: [], err: [] };
  const splitter = (into: string[], which: Waiter[]) => {
    let partial = '';
    return (chunk: Buffer) => {
      partial += chunk.toString();
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        into.push(line);
        for (const w of [...which]) {
          if (w.match(line)) {
            which.splice(which.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    };
  };
  child.stdout?.on('data', splitter(lines, waiters.out));
  child.stderr?.on('data', splitter(errLines, waiters.err));
  const waiter = (seen: string[], which: Waiter[], stream: string) => (match: (line: string) => boolean, ms = 15_000) => {
    const found = seen.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<string>((resolve, reject) => {
      const w: Waiter = {
        match,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        which.splice(which.indexOf(w), 1);
        reject(new Error(`muxvisor ${args.join(' ')}: no matching ${stream} line within ${ms} ms; stdout: ${out()}; stderr: ${err()}`));
      }, ms);
      which.push(w);
    });
  };
  return {
    process: child,
    lines,
    errLines,
    waitFor: waiter(lines, waiters.out, 'stdout'),
    waitForErr: waiter(errLines, waiters.err, 'stderr'),
    exited,
    async stop(signal = 'SIGINT', ms = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function spawnCli(home: string | null, args: readonly string[], options: CliOptions) {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  // A test run from inside a supervised service must not look like that service to the CLI.
  delete env.MUXVISOR_SERVICE;
  delete env.MUXVISOR_SUPERVISED;
  delete env.MUXVISOR_RUN;
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const argv = [CLI_MAIN, ...(home === null ? [] : ['--home', home]), ...args];
  const child = spawn(process.execPath, argv, {
    env, cwd: options.cwd, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  // Decoded as a stream: a character whose bytes arrive in two chunks stays whole.
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // 'close', not 'exit': everything the child printed has been read by then.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return { child, out: () => stdout, err: () => stderr, exited };
}

function result(pid: number, code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, args: readonly string[]): CliResult {
  const what = () => `muxvisor ${args.join(' ')} (exit ${code ?? signal}); stdout: ${stdout}; stderr: ${stderr}`;
  return {
    pid, code, signal, stdout, stderr,
    json() {
      try {
        return JSON.parse(stdout);
      } catch (error) {
        throw new Error(`stdout is not one JSON document: ${(error as Error).message}; ${what()}`);
      }
    },
    jsonLines() {
      return stdout.split('\n').filter((l) => l.length > 0).map((l, i) => {
        try {
          return JSON.parse(l);
        } catch (error) {
          throw new Error(`stdout line ${i + 1} is not JSON: ${(error as Error).message}; ${what()}`);
        }
      });
    },
  };
}

/** `{"error": {...}}` as the CLI prints it with `--json`. */
export interface CliErrorJson {
  error: { code: string; message: string; exitCode: number; data: any };
}
