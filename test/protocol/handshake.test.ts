import { describe, expect, it } from 'vitest';
import { ErrorCode, negotiateCaps, negotiateVersion, newToken, PROTOCOL_VERSIONS, tokenMatches } from '../../protocol/index.js';
import { expectMuxvisorError } from '../helpers/errors.js';

describe('handshake rules', () => {
  it('picks the highest protocol version both sides speak', () => {
    expect(negotiateVersion([1, 5], [2, 3])).toBe(3);
    expect(negotiateVersion([1, 2], [2, 9])).toBe(2);
    expect(negotiateVersion([1, 1])).toBe(PROTOCOL_VERSIONS[1]);
  });

  it('refuses ranges that do not overlap, naming both', () => {
    const error = expectMuxvisorError(() => negotiateVersion([4, 6], [1, 3]), ErrorCode.VersionMismatch);
    expect(error.message).toBe('no common protocol version: client speaks 4..6, supervisor speaks 1..3');
    expect(error.data).toEqual({ client: [4, 6], supervisor: [1, 3] });
  });

  it('keeps only the capabilities both sides offer, in the supervisor order', () => {
    expect(negotiateCaps(['b', 'zz', 'a'], ['a', 'b', 'c'])).toEqual(['a', 'b']);
    expect(negotiateCaps(['anything'])).toEqual([]);
  });

  it('makes tokens of 64 hex characters that differ every time', () => {
    const a = newToken();
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(newToken()).not.toBe(a);
  });

  it('matches the exact token only, whatever the length presented', () => {
    const token = newToken();
    expect(tokenMatches(token, token)).toBe(true);
    const lastCharWrong = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
    expect(tokenMatches(lastCharWrong, token)).toBe(false);
    expect(tokenMatches('', token)).toBe(false);
    expect(tokenMatches(`${token}00`, token)).toBe(false);
    expect(tokenMatches(token.toUpperCase(), token)).toBe(false);
  });
});
