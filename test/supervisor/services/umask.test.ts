/**
 * The supervisor daemon keeps its own files private (umask 0077), but the services it starts are
 * the user's programs: they get the umask the supervisor was started with, so the files they
 * write are what the user's shell would have made, not silently private.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, connect } from '../../../lib/index.js';
import { eventually, tempHome } from '../../helpers/home.js';

const home = tempHome('muxvisor-umask-');
const scratch = mkdtempSync(join(tmpdir(), 'muxvisor-umask-files-'));
let client: Client;
let previous: number;

beforeAll(async () => {
  // The daemon is started by this process and inherits its umask: make it a known one.
  previous = process.umask(0o022);
  client = await connect({ home: home.home, name: 'umask-test', supervisor: { idleTimeoutMs: 0 } });
});

afterAll(async () => {
  await client?.close();
  await home.cleanup();
  rmSync(scratch, { recursive: true, force: true });
  process.umask(previous);
});

describe('the umask of services', () => {
  it('starts a service with the umask the supervisor was started with, and keeps the home private', async () => {
    const file = join(scratch, 'written-by-the-service');
    const status = await client.services.add({
      name: 'umask',
      command: 'sh',
      args: ['-c', `umask; touch ${file}; echo done; sleep 60`],
      readiness: { type: 'log', pattern: 'done' },
      restart: { policy: 'never' },
      stopTimeoutMs: 1_000,
    });
    await eventually(() => existsSync(status.logs.stdout) && readFileSync(status.logs.stdout, 'utf8').includes('done'), 'the service output');
    const lines = readFileSync(status.logs.stdout, 'utf8').split('\n').filter((l) => !l.startsWith('===='));
    expect(lines[0]).toBe('0022');
    expect(statSync(file).mode & 0o777).toBe(0o644);
    // The supervisor's own files stay private all the same.
    expect(statSync(status.logs.stdout).mode & 0o777).toBe(0o600);
    expect(statSync(home.layout.tokenPath).mode & 0o777).toBe(0o600);
    expect(statSync(join(home.home, 'services', '_state.json')).mode & 0o777).toBe(0o600);
    await client.services.remove('umask');
  });
});
