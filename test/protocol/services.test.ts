import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isMuxvisorError, resolveServiceDefinition, substitute } from '../../protocol/index.js';
import { EventBus } from '../../supervisor/events.js';

function problems(input: unknown): string[] {
  try {
    resolveServiceDefinition(input);
  } catch (error) {
    if (isMuxvisorError(error, ErrorCode.InvalidArgument)) return (error.data as { problems: string[] }).problems;
    throw error;
  }
  return [];
}

describe('service definitions', () => {
  it('fills the defaults of a minimal definition', () => {
    const d = resolveServiceDefinition({ name: 'web', command: 'python3', ports: { http: 0 } });
    expect(d.readiness).toEqual({ type: 'tcp', port: 'http', host: '127.0.0.1', timeoutMs: 30_000 });
    expect(d.restart.policy).toBe('on-failure');
    expect(d.restart.maxRestarts).toBe(5);
    expect(d.stopSignal).toBe('SIGTERM');
    expect(d.stopTimeoutMs).toBe(10_000);
    expect(d.logs).toEqual({ maxBytes: 10 * 1024 * 1024, keep: 3 });
    expect(resolveServiceDefinition({ name: 'job', command: 'true' }).readiness).toEqual({ type: 'none' });
  });

  it('names every problem of a bad definition at once', () => {
    const found = problems({
      name: 'bad name!', command: '', args: [1], ports: { http: 70000 }, url: 'http://x:{port:nope}/', readiness: { type: 'tcp', port: 'nope' },
      restart: { policy: 'sometimes', initialDelayMs: -1 }, stopSignal: 'SIGFOO', stopTimeoutMs: 1.5, cwd: 'relative', extra: true, env: { 'A-B': 'x' },
    });
    for (const field of ['extra: unknown field', 'name:', 'command:', 'args:', 'ports.http:', 'url: {port:nope}', 'readiness.port:', 'restart.policy:', 'restart.initialDelayMs:', 'stopSignal:', 'stopTimeoutMs:', 'cwd:', 'env: `A-B`']) {
      expect(found.some((p) => p.startsWith(field)), `a problem starting with "${field}" in ${JSON.stringify(found)}`).toBe(true);
    }
    expect(found).toHaveLength(13);
  });

  it('refuses placeholders it cannot fill', () => {
    expect(problems({ name: 'a', command: 'x', args: ['{port}'] })).toEqual([expect.stringContaining('{port} names no declared port')]);
    expect(problems({ name: 'a', command: 'x', args: ['{run}'] })).toEqual([expect.stringContaining('{run} is only known')]);
    expect(problems({ name: 'a', command: 'x', args: ['{pwd}'] })).toEqual([expect.stringContaining('unknown placeholder {pwd}')]);
    expect(problems({ name: 'a', command: 'x', readiness: { type: 'log', pattern: '(' } })).toEqual([expect.stringContaining('readiness.pattern:')]);
    expect(problems({ name: 'a', command: 'x', readiness: { type: 'http' } })).toEqual([expect.stringContaining('needs a port')]);
  });

  it('substitutes ports, names and escapes', () => {
    const values = { ports: { http: 8000, metrics: 9000 }, name: 'web', home: '/h', run: 'r1' };
    expect(substitute('{port} {port:metrics} {name} {home} {run} {{port}', values)).toBe('8000 9000 web /h r1 {port}');
  });

  it('never throws anything but MUXVISOR_INVALID_ARGUMENT, whatever it is given', () => {
    fc.assert(fc.property(fc.anything(), (input) => {
      try {
        resolveServiceDefinition(input);
      } catch (error) {
        expect(isMuxvisorError(error, ErrorCode.InvalidArgument)).toBe(true);
      }
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.dictionary(fc.constantFrom('name', 'command', 'args', 'ports', 'readiness', 'restart', 'logs', 'env', 'url'), fc.anything()), (input) => {
      try {
        resolveServiceDefinition(input);
      } catch (error) {
        expect(isMuxvisorError(error, ErrorCode.InvalidArgument)).toBe(true);
      }
    }), { numRuns: 500 });
  });
});

describe('the event bus', () => {
  it('numbers events per topic with no gaps and replays what it still holds', () => {
    const bus = new EventBus(4);
    const seen: number[] = [];
    const stop = bus.subscribe('service', (e) => seen.push(e.seq));
    for (let i = 0; i < 10; i++) bus.publish('service', { i });
    bus.publish('other', {});
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(bus.current('other')).toBe(1);
    expect(bus.since('service', 10)).toEqual([]);
    expect(bus.since('service', 7)?.map((e) => e.seq)).toEqual([8, 9, 10]);
    expect(bus.since('service', 0)).toBeNull(); // the history no longer reaches back
    stop();
    bus.publish('service', {});
    expect(seen).toHaveLength(10);
  });

  it('drops a subscriber that throws and still delivers to the others', () => {
    const bus = new EventBus();
    const seen: number[] = [];
    bus.subscribe('t', () => {
      throw new Error('bad subscriber');
    });
    bus.subscribe('t', (e) => seen.push(e.seq));
    bus.publish('t', 1);
    bus.publish('t', 2);
    expect(seen).toEqual([1, 2]);
  });
});
