/**
 * What every command gets: the home, the output mode (`--json`, colour), a deadline, a way to
 * reach the supervisor, and one wrapper (`action`) that turns what a command returns or throws
 * into output and an exit code. The CLI reaches the supervisor through lib/ like any client.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Command } from 'commander';
import { defaultHome, ErrorCode, type HomeLayout, homeLayout, isMuxvisorError, MuxvisorError } from '../../protocol/index.js';
import { type Client, connect } from '../client.js';
import type { ConnectOptions } from '../options.js';
import { CliError, ExitCode, exitCodeFor, wholeNumber } from './exit-codes.js';
import { type Colors, colors, wantColor } from './format.js';

/** Options every command takes (on the program, before or after the command's name). */
export interface GlobalOptions {
  home?: string;
  json?: boolean;
  color?: boolean;
  timeout?: string;
}

export interface Ctx {
  readonly home: string;
  readonly layout: HomeLayout;
  /** Print JSON (one document, or JSON lines for streams) instead of text. */
  readonly json: boolean;
  readonly c: Colors;
  /** Deadline of each request and of connecting. */
  readonly timeoutMs: number;
  /** Aborts on SIGINT or SIGTERM, for a command that called `handleInterrupts()`. */
  readonly signal: AbortSignal;
  /**
   * Says this command ends cleanly by itself on SIGINT/SIGTERM (a follow stops, the monitor
   * restores the terminal): the signal then aborts `signal` instead of ending the process at once
   * with exit code 130. A second signal always ends the process.
   */
  handleInterrupts(): AbortSignal;
  out(text: string): void;
  /** Prints `value` as JSON (one line, so streams are JSON lines). */
  outJson(value: unknown): void;
  warn(text: string): void;
  /**
   * The supervisor's client. Reporting commands pass `start: false` (the default): when none runs
   * they fail with exit code 3 instead of starting one.
   */
  connect(options?: { start?: boolean; supervisor?: ConnectOptions['supervisor'] }): Promise<Client>;
}

/** The name this CLI gives itself in the supervisor's connection list. */
export const CLIENT_NAME = 'muxvisor-cli';

export function makeContext(globals: GlobalOptions): Ctx {
  const home = globals.home !== undefined ? globals.home : defaultHome();
  const layout = homeLayout(home);
  const timeoutMs = globals.timeout === undefined ? 10_000 : wholeNumber(globals.timeout, '--timeout', { min: 1, expected: 'a positive number of milliseconds' });
  const abort = new AbortController();
  let handled = false;
  const stop = (signal: NodeJS.Signals) => {
    if (!handled) process.exit(ExitCode.Interrupted);
    abort.abort(new MuxvisorError(ErrorCode.Cancelled, `interrupted by ${signal}`));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A reader that went away (`muxvisor runs export x | head`) is not a crash: a command that
  // follows something stops as on ctrl+c; any other ends at once. Either way exit code 0.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    if (!handled) process.exit(ExitCode.Ok);
    abort.abort(new MuxvisorError(ErrorCode.Cancelled, 'stdout was closed by its reader'));
  });
  const clients: Client[] = [];
  const stderrColor = globals.json !== true && wantColor(process.stderr, globals.color !== false);
  const ctx: Ctx & { clients: Client[] } = {
    home: layout.home,
    layout,
    json: globals.json === true,
    c: colors(globals.json !== true && wantColor(process.stdout, globals.color !== false)),
    timeoutMs,
    signal: abort.signal,
    handleInterrupts() {
      handled = true;
      return abort.signal;
    },
    clients,
    out: (text) => void process.stdout.write(`${text}\n`),
    outJson: (value) => void process.stdout.write(`${JSON.stringify(value, jsonReplacer)}\n`),
    // Callers colour with `c` (decided for stdout); stderr gets colour only when it may have it.
    warn: (text) => void process.stderr.write(`${stderrColor ? text : stripAnsi(text)}\n`),
    async connect(options = {}) {
      const start = options.start ?? false;
      try {
        const client = await connect({
          home: layout.home, name: CLIENT_NAME, start, timeoutMs: start ? Math.max(timeoutMs, 15_000) : timeoutMs,
          requestTimeoutMs: timeoutMs, handleExit: false, exportEnv: false,
          ...(options.supervisor === undefined ? {} : { supervisor: options.supervisor }),
        });
        clients.push(client);
        return client;
      } catch (error) {
        if (!start && isMuxvisorError(error) && error.code === ErrorCode.Unavailable) throw notRunning(layout);
        throw error;
      }
    },
  };
  return ctx;
}

/** Waits `ms`, or less when `signal` aborts (ctrl+c must not wait out a poll); never rejects. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => undefined);
}

/** `text` without ANSI SGR sequences (colour and style). */
export function stripAnsi(text: string): string {
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

export function notRunning(layout: HomeLayout): CliError {
  return new CliError(ExitCode.NotRunning, 'MUXVISOR_NOT_RUNNING', `no supervisor is running for home ${layout.home} (nothing answers at ${layout.socketPath}); start one with \`muxvisor start${homeFlag(layout)}\``);
}

/** ` --home <dir>` (shell-quoted) when the home is not the default one, for commands we suggest. */
export function homeFlag(layout: HomeLayout): string {
  return layout.home === defaultHome() ? '' : ` --home ${shellQuote(layout.home)}`;
}

/** `text` as one shell word: as it is when that is safe, else in single quotes. */
export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Wraps a command's body: builds its context from the global options, runs it, closes its
 * clients, and sets the exit code. A thrown error is printed once: as text on stderr, or with
 * `--json` as `{"error": {code, message, exitCode, data}}` on stdout.
 */
export function action<A extends unknown[]>(body: (ctx: Ctx, ...args: A) => Promise<ExitCode | void>): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args.at(-1) as Command;
    const globals = command.optsWithGlobals<GlobalOptions>();
    let ctx: (Ctx & { clients?: Client[] }) | null = null;
    let code: ExitCode = ExitCode.Ok;
    try {
      ctx = makeContext(globals);
      code = (await body(ctx, ...(args.slice(0, -1) as A))) ?? ExitCode.Ok;
    } catch (error) {
      code = exitCodeFor(error);
      report(error, code, globals.json === true);
    } finally {
      for (const client of ctx?.clients ?? []) await client.close().catch(() => client.destroy());
    }
    process.exitCode = code;
  };
}

function report(error: unknown, exitCode: ExitCode, json: boolean): void {
  const e = error as { code?: string; message?: string; data?: unknown };
  const code = error instanceof CliError || isMuxvisorError(error) ? (e.code as string) : 'MUXVISOR_CLI_FAILURE';
  if (json) {
    process.stdout.write(`${JSON.stringify({ error: { code, message: e.message ?? String(error), exitCode, data: e.data ?? null } }, jsonReplacer)}\n`);
  } else {
    process.stderr.write(`muxvisor: ${e.message ?? String(error)}\n`);
    if (code === 'MUXVISOR_CLI_FAILURE' && process.env.MUXVISOR_DEBUG) process.stderr.write(`${(error as Error).stack}\n`);
  }
}

/**
 * JSON for values msgpack can carry and JSON cannot: bytes as `{"$base64": "..."}`, big integers
 * as decimal strings, Maps as objects, non-finite numbers as strings ("NaN", "Infinity").
 */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value).toString('base64') };
  if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return { $base64: Buffer.from((value as { data: number[] }).data).toString('base64') };
  }
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}
