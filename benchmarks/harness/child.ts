/** Runs a benchmark program in its own process and returns the JSON it prints last. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const programsDir = fileURLToPath(new URL('../programs/', import.meta.url));

export function runProgram<T>(program: string, spec: unknown, timeoutMs = 300_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${programsDir}${program}`, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // 'exit' can come before stdout is drained: read on until it ends (a grandchild holding the
      // pipe open gets a second, then what arrived is used).
      if (child.stdout.readableEnded) settle(code, signal);
      else {
        const late = setTimeout(() => settle(code, signal), 1_000);
        child.stdout.once('end', () => {
          clearTimeout(late);
          settle(code, signal);
        });
      }
    });
    const settle = (code: number | null, signal: NodeJS.Signals | null) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`${program} ${JSON.stringify(spec)} exited with ${signal ?? code}: ${err.trim() || out.trim()}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${program} printed no JSON result: ${out}${err}`));
      }
    };
  });
}
