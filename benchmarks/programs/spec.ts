/** What the harness asks a client program to do (passed as JSON in argv[2]). */
export type Task =
  | { task: 'publish'; n: number; recordBytes: number }
  | { task: 'roundtrip'; n: number; target: 'ping' | 'run' }
  | { task: 'pipelined'; n: number; window: number }
  | { task: 'open-finish'; n: number };

export type ProgramSpec = Task & {
  /** muxvisor client: the home; raw client: the socket path of the raw server. */
  home?: string;
  socket?: string;
};

/** A record of about `bytes` bytes as msgpack: a training-loop metrics record, padded. */
export function recordOf(bytes: number): Record<string, unknown> {
  const base = { run: 'bench', step: 12345, loss: 0.123456789, acc: 0.98125, lr: 0.0003, epoch: 12, phase: 'train', host: 'node-07' };
  const overhead = 86; // msgpack bytes of `base` plus the `pad` key and its str32 header
  return { ...base, pad: 'x'.repeat(Math.max(0, bytes - overhead)) };
}

export function printResult(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
