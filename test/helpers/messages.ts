import { Kind, type Message } from '../../protocol/index.js';

/** One realistic message of every kind, with optional fields both present and absent. */
export const sampleMessages: Message[] = [
  { kind: Kind.Hello, versions: [1, 1], token: 'a'.repeat(64), pid: 4242, name: 'train.py', caps: [] },
  {
    kind: Kind.Welcome, version: 1, connection: 3, server: { name: 'muxvisor', version: '0.1.0', pid: 777 },
    caps: [], limits: { maxPayloadBytes: 16 * 1024 * 1024, maxInFlight: 4096 },
  },
  { kind: Kind.Goodbye, reason: 'supervisor shutting down' },
  { kind: Kind.Ping, id: 1 },
  { kind: Kind.Ping, id: 2, data: { sent: 123 } },
  { kind: Kind.Pong, id: 2, data: { sent: 123 } },
  { kind: Kind.Error, id: 0, error: { code: 'MUXVISOR_BAD_TOKEN', message: 'token refused' }, fatal: true },
  { kind: Kind.Error, id: 9, error: { code: 'MUXVISOR_UNKNOWN_RUN', message: 'no run r9', data: { run: 'r9' } }, fatal: false },
  { kind: Kind.Request, id: 5, channel: 0, op: 'status' },
  { kind: Kind.Request, id: 6, channel: 2, op: 'summary', args: { keys: ['loss'] }, timeoutMs: 5000 },
  { kind: Kind.Response, id: 5, result: { runs: 2 } },
  { kind: Kind.Response, id: 7 },
  { kind: Kind.Cancel, id: 6 },
  { kind: Kind.Cancel, id: 6, reason: 'aborted by caller' },
  { kind: Kind.Open, id: 10, run: 'r1' },
  { kind: Kind.Open, id: 11, run: 'r2', handler: '/opt/handlers/echo.js', config: { lr: 0.1 }, dedicated: true },
  { kind: Kind.Attach, id: 12, run: 'r1' },
  { kind: Kind.Publish, channel: 1, record: { step: 1, loss: 0.5 } },
  { kind: Kind.Sync, id: 13, channel: 1 },
  { kind: Kind.Finish, id: 14, channel: 1 },
  { kind: Kind.Finish, id: 15, channel: 1, status: 'failed', exitCode: 3, reason: 'diverged' },
  { kind: Kind.Detach, id: 16, channel: 1 },
  { kind: Kind.Event, id: 20, topic: 'service', seq: 1, time: 1_700_000_000_000, data: { name: 'tb', state: 'running' } },
];
