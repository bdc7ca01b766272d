/**
 * The handshake's rules as pure functions: which protocol version two sides share, which
 * capabilities, and whether a presented token is the right one. The supervisor's connection
 * applies them to HELLO; the library checks WELCOME with them.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCode, MuxvisorError } from './errors.js';

/** Inclusive range of protocol versions: [min, max]. */
export type VersionRange = readonly [min: number, max: number];

/**
 * The protocol versions this code speaks. The protocol version covers message kinds, their fields
 * and their meaning; the frame header's own version byte (frame.ts) changes only with its layout.
 */
export const PROTOCOL_VERSIONS: VersionRange = [1, 1];

/** Capabilities this code can use when both sides offer them. Version 1 defines none. */
export const CAPABILITIES: readonly string[] = [];

/**
 * The highest version in both ranges. Throws MUXVISOR_VERSION_MISMATCH naming both ranges when
 * they do not overlap.
 */
export function negotiateVersion(offered: VersionRange, supported: VersionRange = PROTOCOL_VERSIONS): number {
  const high = Math.min(offered[1], supported[1]);
  const low = Math.max(offered[0], supported[0]);
  if (high < low) {
    throw new MuxvisorError(
      ErrorCode.VersionMismatch,
      `no common protocol version: client speaks ${offered[0]}..${offered[1]}, supervisor speaks ${supported[0]}..${supported[1]}`,
      { data: { client: [offered[0], offered[1]], supervisor: [supported[0], supported[1]] } },
    );
  }
  return high;
}

/** The capabilities both sides offered, in the supervisor's order; unknown ones are dropped. */
export function negotiateCaps(offered: readonly string[], supported: readonly string[] = CAPABILITIES): string[] {
  const wanted = new Set(offered);
  return supported.filter((cap) => wanted.has(cap));
}

/** A new secret token: 32 random bytes as 64 lowercase hex characters. */
export function newToken(): string {
  return randomBytes(32).toString('hex');
}

/** Compares in time that depends only on the expected token's length. */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = Buffer.from(presented, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  // Compare against itself when lengths differ, so the time does not reveal where they differ.
  return timingSafeEqual(a.length === b.length ? a : b, b) && a.length === b.length;
}
