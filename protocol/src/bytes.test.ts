import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, fromBase64, toBase64, toHex, utf8Decode, utf8Encode, utf8Length } from './bytes.js';

/** Any sequence of UTF-16 code units, lone surrogates included. */
const anyUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 64 });
/** Strings built mostly from surrogate halves, to hit every pairing. */
const surrogateHeavy = fc.string({
  unit: fc.oneof(
    fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
    fc.constantFrom('a', 'é', '€', '😀', '\u0000', '\uFEFF'),
  ),
  maxLength: 32,
});

describe('utf8Length', () => {
  it('equals the TextEncoder length for any string, lone surrogates included', () => {
    const te = new TextEncoder();
    fc.assert(
      fc.property(fc.oneof(anyUnits, surrogateHeavy, fc.string({ unit: 'binary', maxLength: 64 }), fc.string({ unit: 'grapheme', maxLength: 32 })), (text) => {
        expect(utf8Length(text)).toBe(te.encode(text).byteLength);
      }),
      { numRuns: 5_000 },
    );
  });

  it('counts known cases', () => {
    expect(utf8Length('')).toBe(0);
    expect(utf8Length('a')).toBe(1);
    expect(utf8Length('é')).toBe(2);
    expect(utf8Length('€')).toBe(3);
    expect(utf8Length('😀')).toBe(4);
    expect(utf8Length('\uD800')).toBe(3); // lone high surrogate → U+FFFD
    expect(utf8Length('\uDC00')).toBe(3); // lone low surrogate → U+FFFD
    expect(utf8Length('\uD800é')).toBe(5); // high surrogate not followed by a low one
    expect(utf8Length('\uD800\uD800')).toBe(6);
    expect(utf8Length('\uDC00\uD800')).toBe(6);
    expect(utf8Length('\uD83D\uDE00')).toBe(4);
  });
});

describe('utf8Encode / utf8Decode', () => {
  it('round-trips well-formed strings, a leading BOM included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), fc.boolean(), (text, bom) => {
        const s = bom ? `\uFEFF${text}` : text;
        expect(utf8Decode(utf8Encode(s))).toBe(s);
      }),
      { numRuns: 2_000 },
    );
    expect(utf8Decode(Uint8Array.from([0xef, 0xbb, 0xbf, 0x61]))).toBe('\uFEFFa');
  });

  it('throws on invalid UTF-8 instead of replacing it', () => {
    for (const bad of [[0x80], [0xff], [0xc3], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x61, 0xe2, 0x82]]) {
      expect(() => utf8Decode(Uint8Array.from(bad))).toThrow(TypeError);
    }
  });

  it('agrees with Buffer on valid input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (text) => {
        expect(Buffer.from(utf8Encode(text)).toString('hex')).toBe(Buffer.from(text, 'utf8').toString('hex'));
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('base64', () => {
  it('toBase64 matches Buffer for random input, and fromBase64 inverts it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const text = toBase64(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('base64'));
        expect(fromBase64(text)).toEqual(bytes);
      }),
      { numRuns: 3_000 },
    );
    expect(toBase64(new Uint8Array(0))).toBe('');
    expect(fromBase64('')).toEqual(new Uint8Array(0));
    expect(toBase64(Uint8Array.from([0xfb, 0xff]))).toBe('+/8=');
  });

  it('rejects malformed base64 with undefined: bad length, bad padding, bad characters', () => {
    const malformed = [
      'Q', // length not a multiple of 4
      'QQ',
      'QQ=',
      'QUJDR',
      'QUJDRA=',
      'Q===', // too much padding
      '====',
      '=QQQ', // padding at the start
      'Q=Q=', // padding in the middle of a quantum
      'QQ==QUJD', // padding before the end
      'QUJD=QQQ',
      'QUJ-', // base64url alphabet is not accepted
      'QUJ_',
      'QU D',
      'QUJD\n',
      'QUJ\u00e9',
      'QUJ😀',
      'QUJ\u0000',
      'QQ==\n',
      // Non-zero padding bits: a second spelling of the same bytes.
      'QR==',
      'QUL=',
      'QUJ=',
    ];
    for (const text of malformed) expect(fromBase64(text), JSON.stringify(text)).toBeUndefined();
  });

  it('accepts only canonical text: whatever decodes re-encodes to the same string', () => {
    const b64Char = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ '.split(''));
    fc.assert(
      fc.property(fc.string({ unit: b64Char, maxLength: 16 }), (text) => {
        const bytes = fromBase64(text);
        if (bytes !== undefined) expect(toBase64(bytes)).toBe(text);
        // Where Buffer's lenient decoder and ours both accept, they agree.
        if (bytes !== undefined) expect(Buffer.from(text, 'base64')).toEqual(Buffer.from(bytes));
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('small helpers', () => {
  it('concatBytes concatenates, including views with offsets', () => {
    const backing = Uint8Array.from([9, 1, 2, 3, 9]);
    expect(concatBytes([Uint8Array.from([0]), backing.subarray(1, 4), new Uint8Array(0), Uint8Array.from([4])])).toEqual(Uint8Array.from([0, 1, 2, 3, 4]));
    expect(concatBytes([])).toEqual(new Uint8Array(0));
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 6 }), (parts) => {
        expect(Buffer.from(concatBytes(parts))).toEqual(Buffer.concat(parts));
      }),
    );
  });

  it('bytesEqual compares length and content', () => {
    expect(bytesEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
    expect(bytesEqual(Uint8Array.from([1, 2]), Uint8Array.from([1, 2]))).toBe(true);
    expect(bytesEqual(Uint8Array.from([1, 2]), Uint8Array.from([1, 3]))).toBe(false);
    expect(bytesEqual(Uint8Array.from([1, 2]), Uint8Array.from([1, 2, 0]))).toBe(false);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength: 16 }), (a, b) => {
        expect(bytesEqual(a, b)).toBe(Buffer.from(a).equals(Buffer.from(b)));
        expect(bytesEqual(a, a.slice())).toBe(true);
      }),
    );
  });

  it('toHex matches Buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        expect(toHex(bytes)).toBe(Buffer.from(bytes).toString('hex'));
      }),
    );
  });
});
