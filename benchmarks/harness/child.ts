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
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`${program} ${JSON.stringify(spec)} exited with ${signal ?? code}: ${err.trim() || out.trim()}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${program} printed no JSON result: ${out}${err}`));
      }
    });
  });
}
