/**
 * One monitor session: takes the terminal, refreshes every `intervalMs` and at once when an event
 * arrives, acts on keys, and gives the terminal back on every way out.
 *
 * Contracts: `runMonitor` resolves with the exit code once the terminal is restored and every
 * timer, listener and subscription it made is gone (the caller closes the client). Ways out:
 * q / Esc / ctrl+c, `signal` (SIGINT, SIGTERM: see `ctx.handleInterrupts()`) and SIGHUP resolve
 * 0; the supervisor going away (the client's 'disconnect') prints one line to stderr and resolves
 * 3. An uncaught error restores the terminal, prints the error and exits the process with code 1
 * (its state cannot be trusted). Refreshes never overlap: one asked for while another is in
 * flight runs right after it. Leaving aborts the requests in flight (a start waiting for
 * readiness goes on in the supervisor; the monitor just stops waiting for it).
 */
import { ErrorCode } from '../../../protocol/index.js';
import type { Client } from '../../client.js';
import type { EventsSubscription, SupervisorEvent } from '../../events.js';
import type { Colors } from '../format.js';
import { ExitCode } from '../exit-codes.js';
import { commandFor, type Key, moveSelection, type ServiceVerb } from './keys.js';
import { describeEvent, renderFrame, type View } from './render.js';
import { takeSnapshot } from './snapshot.js';
import { Terminal } from './terminal.js';

export interface MonitorOptions {
  /** Time between refreshes when no event comes. @default 1000 */
  intervalMs: number;
  /** Deadline of each refresh's requests. */
  timeoutMs: number;
  c: Colors;
  /** Aborting it ends the session (exit code 0). */
  signal: AbortSignal;
  /** @default the process's stdin and stdout */
  terminal?: Terminal;
}

const DOING: Record<ServiceVerb, [string, string]> = { start: ['starting', 'started'], stop: ['stopping', 'stopped'], restart: ['restarting', 'restarted'] };

export function runMonitor(client: Client, options: MonitorOptions): Promise<ExitCode> {
  const { c, intervalMs, timeoutMs, signal } = options;
  const terminal = options.terminal ?? new Terminal();
  const view: View = { snapshot: null, selected: null, feedback: null, lastEvent: null, refreshError: null };
  let finished = false;
  let subscription: EventsSubscription | null = null;
  let inFlight = false;
  let again = false;
  let timer: NodeJS.Timeout | null = null;
  // Aborted on the way out, so no request in flight holds the process (see above).
  const calls = new AbortController();
  let resolveExit: (code: ExitCode) => void = () => undefined;
  const exited = new Promise<ExitCode>((resolve) => { resolveExit = resolve; });

  const draw = () => {
    if (!finished) terminal.draw(renderFrame(view, terminal.size, c));
  };

  const refresh = async (): Promise<void> => {
    if (finished) return;
    if (inFlight) return void (again = true);
    inFlight = true;
    try {
      view.snapshot = await takeSnapshot(client, { timeoutMs, signal: calls.signal });
      view.refreshError = null;
      const names = view.snapshot.services.map((s) => s.name);
      if (view.selected === null || !names.includes(view.selected)) view.selected = moveSelection(names, null, 0);
    } catch (error) {
      if (finished) return;
      // The connection closing is the 'disconnect' handler's to report.
      if (!isClosed(error)) view.refreshError = (error as Error).message;
    } finally {
      inFlight = false;
    }
    draw();
    if (again) {
      again = false;
      void refresh();
    }
  };

  const act = async (verb: ServiceVerb) => {
    const name = view.selected;
    if (name === null) {
      view.feedback = { text: 'no service to act on', tone: 'error' };
      return draw();
    }
    const [doing, done] = DOING[verb];
    const mine = { text: `${doing} ${name}…`, tone: 'busy' as const };
    view.feedback = mine;
    draw();
    try {
      const call = { signal: calls.signal };
      if (verb === 'start') await client.services.start(name, call);
      else if (verb === 'stop') await client.services.stop(name, call);
      else await client.services.restart(name, call);
      if (view.feedback === mine) view.feedback = { text: `${name} ${done}`, tone: 'ok' };
    } catch (error) {
      if (finished || isClosed(error)) return;
      view.feedback = { text: `${verb} ${name} failed: ${(error as Error).message}`, tone: 'error' };
    }
    void refresh();
  };

  const onKey = (key: Key | undefined) => {
    const command = commandFor(key);
    if (command === null) return;
    switch (command.kind) {
      case 'quit': return finish(ExitCode.Ok);
      case 'move':
        view.selected = moveSelection(view.snapshot?.services.map((s) => s.name) ?? [], view.selected, command.by);
        return draw();
      case 'service': return void act(command.verb);
      case 'redraw':
        terminal.clear();
        return draw();
    }
  };

  const onEvent = (event: SupervisorEvent) => {
    view.lastEvent = describeEvent(event);
    void refresh();
  };

  const onDisconnect = (error: { message?: string } | null) => {
    finish(ExitCode.NotRunning, `muxvisor: the supervisor went away (${error?.message ?? 'the connection closed'}); the monitor stopped`);
  };
  const onAbort = () => finish(ExitCode.Ok);
  const onHangup = () => finish(ExitCode.Ok);
  const onCrash = (error: unknown) => {
    terminal.restore();
    process.stderr.write(`muxvisor: the monitor failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(ExitCode.Failure);
  };
  const onExit = () => terminal.restore();

  function finish(code: ExitCode, message?: string): void {
    if (finished) return;
    finished = true;
    if (timer !== null) clearInterval(timer);
    calls.abort();
    client.off('disconnect', onDisconnect);
    signal.removeEventListener('abort', onAbort);
    process.off('SIGHUP', onHangup);
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    process.off('exit', onExit);
    if (client.connected) subscription?.close();
    terminal.restore();
    if (message !== undefined) process.stderr.write(`${message}\n`);
    resolveExit(code);
  }

  client.on('disconnect', onDisconnect);
  signal.addEventListener('abort', onAbort, { once: true });
  process.on('SIGHUP', onHangup);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  process.on('exit', onExit);
  terminal.open(onKey, draw);
  draw();
  if (signal.aborted) onAbort();
  else if (!client.connected) onDisconnect(null);
  else {
    timer = setInterval(() => void refresh(), intervalMs);
    void refresh();
    // Without events the monitor still refreshes on its interval; the footer says so.
    const eventless = (error: unknown) => {
      if (!finished && client.connected) view.lastEvent = `no events (${(error as Error).message}); refreshing every ${intervalMs} ms`;
    };
    client.events(onEvent, { onEnd: eventless })
      .then((s) => {
        if (!finished) subscription = s;
        else if (client.connected) s.close();
      })
      .catch((error: unknown) => {
        if (!isClosed(error)) eventless(error);
      });
  }
  return exited;
}

function isClosed(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === ErrorCode.ConnectionClosed;
}
