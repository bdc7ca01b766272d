import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkPrivateDir, defaultHome, ErrorCode, fallbackSocketPath, formatServiceEnv, homeLayout, MAX_SOCKET_PATH_BYTES, parseServiceEnv,
} from '../../protocol/index.js';
import { expectMuxvisorError } from '../helpers/errors.js';

describe('discovery', () => {
  it('takes the home from MUXVISOR_HOME, then XDG_STATE_HOME, then ~/.local/state', () => {
    expect(defaultHome({ MUXVISOR_HOME: '/a/b', XDG_STATE_HOME: '/x' })).toBe('/a/b');
    expect(defaultHome({ XDG_STATE_HOME: '/x' })).toBe('/x/muxvisor');
    expect(defaultHome({})).toMatch(/\/\.local\/state\/muxvisor$/);
  });

  it('lays a home out as PROTOCOL.md section 12 says', () => {
    const l = homeLayout('/data/me');
    expect(l).toMatchObject({
      runtimeDir: '/data/me/run', socketPath: '/data/me/run/muxvisor.sock', socketFallback: false, tokenPath: '/data/me/run/token',
      pidPath: '/data/me/run/muxvisor.pid', runsDir: '/data/me/runs', supervisorLog: '/data/me/logs/supervisor.log', daemonOut: '/data/me/logs/daemon.out',
    });
  });

  it('falls back to a short per-user path in /tmp when the home socket path would be too long', () => {
    const long = `/${'d'.repeat(MAX_SOCKET_PATH_BYTES)}`;
    const l = homeLayout(long);
    expect(l.socketFallback).toBe(true);
    expect(l.socketPath).toBe(fallbackSocketPath(long));
    expect(l.socketPath).toMatch(/^\/tmp\/muxvisor-\d+\/[0-9a-f]{16}\.sock$/);
    expect(fallbackSocketPath(long)).not.toBe(fallbackSocketPath(`${long}x`));
  });

  it('round-trips MUXVISOR_SERVICE, socket paths with colons included', () => {
    const info = { token: 'ab'.repeat(32), socketPath: '/weird:dir/with:colons.sock' };
    expect(formatServiceEnv(info)).toBe(`1:${'ab'.repeat(32)}:/weird:dir/with:colons.sock`);
    expect(parseServiceEnv(formatServiceEnv(info))).toEqual(info);
  });

  it('refuses a MUXVISOR_SERVICE it cannot read, saying what it expected', () => {
    for (const bad of ['', 'garbage', '2:abcd:/x.sock', '1:not-hex:/x.sock', '1:abcd:relative.sock']) {
      const error = expectMuxvisorError(() => parseServiceEnv(bad), ErrorCode.InvalidArgument);
      expect(error.message).toContain('1:<hex token>:<absolute socket path>');
    }
  });

  it('trusts only a private directory of its own', () => {
    const dir = mkdtempSync(join(tmpdir(), 'muxvisor-private-'));
    try {
      chmodSync(dir, 0o700);
      expect(() => checkPrivateDir(dir)).not.toThrow();
      chmodSync(dir, 0o755);
      expect(expectMuxvisorError(() => checkPrivateDir(dir), ErrorCode.InvalidArgument).message).toContain('has mode 755, not 700');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
