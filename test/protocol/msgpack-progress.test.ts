/**
 * The msgpack check made while a payload arrives (MsgpackCheckInProgress) gives the verdict and
 * the error of the one-shot check (checkMsgpack) over the whole payload, however the payload is
 * cut, and refuses bad bytes as soon as they have arrived.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkMsgpack, encodeValue, MsgpackCheckInProgress } from '../../protocol/index.js';
import { msgpackValue } from '../helpers/arbitraries.js';

/** The one-shot verdict: null, or the error message. */
function oneShot(bytes: Buffer): string | null {
  try {
    checkMsgpack(bytes);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * The verdict of checking `bytes` as it arrives in pieces ending at `cuts`, into a buffer whose
 * part that has not arrived yet holds garbage (a walk that reads it gives another verdict).
 */
function progressive(bytes: Buffer, cuts: readonly number[], garbage = 0xc1): string | null {
  const check = new MsgpackCheckInProgress();
  const arriving = Buffer.alloc(bytes.length, garbage);
  check.start(0, bytes.length);
  try {
    for (const cut of cuts) {
      bytes.copy(arriving, 0, 0, cut);
      check.feed(arriving, cut);
    }
    bytes.copy(arriving);
    check.finish(arriving);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Bytes of a value, sometimes with a few bytes changed or cut off: valid and invalid payloads alike. */
const payload = fc.tuple(msgpackValue, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.option(fc.nat(), { nil: undefined })).map(([value, edits, cut]) => {
  const bytes = Buffer.from(encodeValue(value ?? null));
  for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
  return cut === undefined || bytes.length < 2 ? bytes : bytes.subarray(0, 1 + (cut % (bytes.length - 1)));
});

describe('checking msgpack while it arrives', () => {
  it('gives the one-shot verdict and error, however the payload is cut', () => {
    fc.assert(
      fc.property(payload, fc.array(fc.nat(), { maxLength: 12 }), (bytes, raw) => {
        const cuts = raw.map((n) => n % (bytes.length + 1)).sort((a, b) => a - b);
        expect(progressive(bytes, cuts)).toBe(oneShot(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('gives the one-shot verdict fed one byte at a time, for every header width and every cut of it', () => {
    const cases = [
      'c403616263', 'c50003616263', 'c600000003616263', 'd903616263', 'da0003616263', 'db00000003616263', // bin, str
      'dc0002c0c0', 'dd00000002c0c0', 'de0001a161c0', 'df00000001a161c0', '92a3616263c7', // containers
      'c704ff00000001', 'c80004ff00000001', 'c900000004ff00000001', 'd6ff00000001', 'd7ff0000000000000001', // timestamps
      'c70cff000000010000000000000001', 'c8000cff000000010000000000000001', 'c90000000cff000000010000000000000001', 'c708ff0000000000000001',
      'c70cff3b9aca000000000000000000', 'd4ff00', 'cb3ff0000000000000', 'cf0000000000000001', // bad ext, numbers
      '81a161c1', '0102', `${'91'.repeat(101)}01`, 'de0001a16bd7ff00000000ffffffff',
    ];
    for (const hex of cases) {
      const whole = Buffer.from(hex, 'hex');
      for (let length = 1; length <= whole.length; length++) {
        const bytes = whole.subarray(0, length);
        const oneByteAtATime = Array.from({ length: bytes.length }, (_, i) => i);
        for (const garbage of [0xc1, 0xff]) expect(progressive(bytes, oneByteAtATime, garbage), `${hex} cut to ${length}`).toBe(oneShot(bytes));
      }
    }
  });

  it('refuses bad bytes as soon as they arrive, long before the end', () => {
    // A 16 MiB array whose second value is the reserved byte: refused after 7 bytes of it.
    const bytes = Buffer.alloc(16 * 1024 * 1024, 0xc0);
    bytes.set([0xdd, 0x00, 0xff, 0xff, 0xfa, 0xc0, 0xc1]);
    const check = new MsgpackCheckInProgress();
    check.start(0, bytes.length);
    expect(() => check.feed(bytes, 7)).toThrow(/at byte 6: byte 0xc1 is reserved/);
  });

  it('waits, without judging, for a value whose header has not arrived', () => {
    const bytes = Buffer.from(encodeValue({ text: 'x'.repeat(300), n: 2 ** 40 }));
    const check = new MsgpackCheckInProgress();
    check.start(0, bytes.length);
    const arriving = Buffer.alloc(bytes.length, 0xc1);
    for (let arrived = 0; arrived < bytes.length; arrived++) {
      bytes.copy(arriving, 0, 0, arrived);
      expect(() => check.feed(arriving, arrived)).not.toThrow();
    }
    bytes.copy(arriving);
    expect(() => check.finish(arriving)).not.toThrow();
  });
});
