import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase58, decodePublicKey, encodeBase58 } from './base58.js';
import { ErrorCode, RelaycastError } from './errors.js';
import { expectRelaycastError } from './testing/errors.js';

const expectFieldError = (fn: () => unknown): void => void expectRelaycastError(fn, ErrorCode.MESSAGE_FIELD);

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** Independent reference: base58 through BigInt arithmetic. */
function referenceEncode(bytes: Uint8Array): string {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let out = '';
  while (n > 0n) {
    out = ALPHABET[Number(n % 58n)]! + out;
    n /= 58n;
  }
  return '1'.repeat(zeros) + out;
}

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

/** Bytes with a run of leading zeros (each zero byte is one leading '1'). */
const bytesWithLeadingZeros = fc
  .tuple(fc.nat({ max: 6 }), fc.uint8Array({ maxLength: 64 }))
  .map(([zeros, rest]) => Uint8Array.from([...new Array<number>(zeros).fill(0), ...rest]));

describe('base58', () => {
  it('round-trips random bytes, leading zeros included, and matches a BigInt reference', () => {
    fc.assert(
      fc.property(bytesWithLeadingZeros, (bytes) => {
        const text = encodeBase58(bytes);
        expect(text).toBe(referenceEncode(bytes));
        expect(decodeBase58(text)).toEqual(bytes);
        let zeros = 0;
        while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
        expect(text.length - text.replace(/^1+/, '').length).toBe(zeros);
      }),
      { numRuns: 2_000 },
    );
  });

  it('every string over the alphabet decodes, and re-encodes to itself', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...ALPHABET), maxLength: 60 }), (text) => {
        expect(encodeBase58(decodeBase58(text))).toBe(text);
      }),
      { numRuns: 2_000 },
    );
  });

  it('matches known vectors', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['00', '1'],
      ['0000', '11'],
      ['61', '2g'],
      ['626262', 'a3gV'],
      ['636363', 'aPEr'],
      ['73696d706c792061206c6f6e6720737472696e67', '2cFupjhnEsSn59qHXstmK2ffpLv2'],
      ['00eb15231dfceb60925886b67d065299925915aeb172c06647', '1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L'],
      ['516b6fcd0f', 'ABnLTmg'],
      ['bf4f89001e670274dd', '3SEo3LWLoPntC'],
      ['572e4794', '3EFU7m'],
      ['ecac89cad93923c02321', 'EJDM8drfXA6uyA'],
      ['10c8511e', 'Rt5zm'],
      ['00000000000000000000', '1111111111'],
      // Solana: the System Program id is 32 zero bytes; the SPL Token program id.
      ['00'.repeat(32), '11111111111111111111111111111111'],
      ['06ddf6e1d765a193d9cbe146ceeb79ac1cb485ed5f5b37913a8cf5857eff00a9', 'TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA'],
    ];
    for (const [h, text] of vectors) {
      expect(encodeBase58(hex(h))).toBe(text);
      expect(decodeBase58(text)).toEqual(hex(h));
    }
  });

  it('rejects characters outside the alphabet (0, O, I, l, punctuation, non-ASCII)', () => {
    for (const bad of ['0', 'O', 'I', 'l', '+', '/', '=', ' ', '-', '_', '\n', 'é', '😀', '\u0000', '\u00ff', '\u0131']) {
      expectFieldError(() => decodeBase58(bad));
      expectFieldError(() => decodeBase58(`2g${bad}`));
      expectFieldError(() => decodeBase58(`${bad}2g`));
      expectFieldError(() => decodeBase58(`11${bad}`));
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.string({ unit: fc.constantFrom(...ALPHABET), maxLength: 10 }), (noise, valid) => {
        const text = valid + noise;
        let ok: boolean;
        try {
          decodeBase58(text);
          ok = true;
        } catch (err) {
          expect(err).toBeInstanceOf(RelaycastError);
          expect((err as RelaycastError).code).toBe(ErrorCode.MESSAGE_FIELD);
          ok = false;
        }
        expect(ok).toBe([...text].every((c) => ALPHABET.includes(c)));
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('decodePublicKey', () => {
  it('accepts exactly the base58 forms of 32-byte keys', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (key) => {
        const text = encodeBase58(key);
        expect(text.length).toBeGreaterThanOrEqual(32);
        expect(text.length).toBeLessThanOrEqual(44);
        expect(decodePublicKey(text)).toEqual(key);
      }),
      { numRuns: 1_000 },
    );
    expect(decodePublicKey('11111111111111111111111111111111')).toEqual(new Uint8Array(32));
    expect(decodePublicKey(encodeBase58(new Uint8Array(32).fill(255)))).toEqual(new Uint8Array(32).fill(255));
  });

  it('rejects other lengths, too-short or too-long text and bad characters', () => {
    const cases = [
      '',
      '1'.repeat(31),
      '1'.repeat(33),
      '1'.repeat(45),
      encodeBase58(new Uint8Array(31).fill(255)),
      encodeBase58(new Uint8Array(33).fill(1)),
      encodeBase58(new Uint8Array(64).fill(9)),
      `0${'1'.repeat(31)}`,
      'l'.repeat(40),
    ];
    for (const text of cases) expectFieldError(() => decodePublicKey(text));
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 48 }).filter((b) => b.length !== 32),
        (bytes) => {
          expectFieldError(() => decodePublicKey(encodeBase58(bytes)));
        },
      ),
      { numRuns: 1_000 },
    );
  });
});
