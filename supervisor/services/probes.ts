/**
 * Readiness probes: TCP connect, HTTP GET, a line of output matching a pattern. A probe polls
 * every 5 ms for its first 2 seconds (a refused connect costs microseconds), so a fast service is
 * seen ready within a few milliseconds of being ready, then backs off to every 250 ms, and gives
 * up at its deadline.
 *
 * Contract: `probeReady` resolves with a description of the passing check, or rejects with a
 * ProbeFailure naming the last thing it saw once the deadline passes; it rejects with the
 * signal's reason as soon as `signal` aborts (the process exited, or a stop came). It leaves no
 * socket, timer or listener behind either way.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import type { ResolvedServiceDefinition } from '../../protocol/index.js';

export type OutputStream = 'stdout' | 'stderr';

export interface ProbeTarget {
  ports: Record<string, number>;
  /** Lines written since the current start. */
  linesSinceStart(): Array<{ stream: OutputStream; line: string }>;
  /** Calls `listener` for each new line; returns the unsubscribe function. */
  onLine(listener: (stream: OutputStream, line: string) => void): () => void;
}

export class ProbeFailure extends Error {
  override name = 'ProbeFailure';
}

type Probe = ResolvedServiceDefinition['readiness'];

export async function probeReady(probe: Probe, target: ProbeTarget, signal: AbortSignal): Promise<string> {
  signal.throwIfAborted();
  if (probe.type === 'none') return 'no readiness probe: ready once started';
  if (probe.type === 'log') return waitForLine(probe, target, signal);
  const port = target.ports[probe.port] as number;
  const began = Date.now();
  const deadline = began + probe.timeoutMs;
  let attempts = 0;
  let last = 'no attempt yet';
  let pause = 5;
  for (;;) {
    attempts++;
    const remaining = deadline - Date.now();
    const result = probe.type === 'tcp'
      ? await tryConnect(probe.host, port, Math.min(remaining, 1_000), signal)
      : await tryGet(probe.host, port, probe.path, probe.status, Math.min(remaining, 2_000), signal);
    signal.throwIfAborted();
    const where = probe.type === 'tcp' ? `tcp ${probe.host}:${port}` : `http GET http://${probe.host}:${port}${probe.path}`;
    if (result === null) return `${where} passed after ${Date.now() - began} ms (${attempts} attempt(s))`;
    last = result;
    if (Date.now() + pause >= deadline) {
      throw new ProbeFailure(`readiness probe ${where} did not pass within ${probe.timeoutMs} ms (${attempts} attempts; last: ${last})`);
    }
    await sleep(pause, signal);
    if (Date.now() - began > 2_000) pause = Math.min(250, Math.ceil(pause * 1.5));
  }
}

/** null when the connect succeeded, else why not. */
function tryConnect(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: string | null) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    const onAbort = () => done('aborted');
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), Math.max(1, timeoutMs));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => done(null));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}

/** null when the GET answered as expected, else why not. */
function tryGet(host: string, port: number, path: string, status: number, timeoutMs: number, signal: AbortSignal): Promise<string | null> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (result: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      req.destroy();
      resolve(result);
    };
    const req = request({ host, port, path, method: 'GET', agent: false, headers: { 'user-agent': 'muxvisor-probe' } }, (res) => {
      const code = res.statusCode ?? 0;
      res.resume();
      const ok = status === 0 ? code >= 200 && code < 300 : code === status;
      done(ok ? null : `HTTP ${code}`);
    });
    const onAbort = () => done('aborted');
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), Math.max(1, timeoutMs));
    signal.addEventListener('abort', onAbort, { once: true });
    req.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
    req.end();
  });
}

function waitForLine(probe: Extract<Probe, { type: 'log' }>, target: ProbeTarget, signal: AbortSignal): Promise<string> {
  const pattern = new RegExp(probe.pattern);
  const began = Date.now();
  const matches = (stream: OutputStream, line: string) => (probe.stream === 'any' || probe.stream === stream) && pattern.test(line);
  for (const { stream, line } of target.linesSinceStart()) if (matches(stream, line)) return Promise.resolve(`${stream} line matched /${probe.pattern}/: ${line.slice(0, 200)}`);
  return new Promise((resolve, reject) => {
    const finish = (fn: () => void) => {
      clearTimeout(timer);
      unsubscribe();
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    const unsubscribe = target.onLine((stream, line) => {
      if (matches(stream, line)) finish(() => resolve(`${stream} line matched /${probe.pattern}/ after ${Date.now() - began} ms: ${line.slice(0, 200)}`));
    });
    const onAbort = () => finish(() => reject(signal.reason));
    const timer = setTimeout(() => finish(() => reject(new ProbeFailure(`readiness probe: no ${probe.stream === 'any' ? '' : `${probe.stream} `}line matched /${probe.pattern}/ within ${probe.timeoutMs} ms`))), probe.timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
