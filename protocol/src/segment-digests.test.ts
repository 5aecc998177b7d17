import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, RelaycastError } from './errors.js';
import { decodeDigestSidecar, digestSidecarUrl, encodeDigestSidecar, type DigestSidecar } from './segment-digests.js';
import { expectRelaycastError } from './testing/errors.js';

const HEX = 'a'.repeat(64);

describe('segment digest sidecars', () => {
  it('round-trips', () => {
    const s: DigestSidecar = { version: 1, algorithm: 'sha256', playlist: 'index.m3u8', segments: { 'seg000.ts': HEX, 'init.mp4': 'b'.repeat(64) } };
    expect(decodeDigestSidecar(encodeDigestSidecar(s))).toEqual(s);
  });

  it('names the sidecar after the media playlist, without query', () => {
    expect(digestSidecarUrl('https://cdn.example/a/360p/index.m3u8?token=x#y')).toBe('https://cdn.example/a/360p/index.m3u8.digests.json');
  });

  it('refuses malformed sidecars with RC_ERR_DIGEST_SIDECAR_INVALID', () => {
    const ok = { version: 1, algorithm: 'sha256', playlist: 'index.m3u8', segments: { 'a.ts': HEX } };
    const bad: unknown[] = [
      'not json',
      '[]',
      { ...ok, version: 2 },
      { ...ok, algorithm: 'md5' },
      { ...ok, playlist: '' },
      { ...ok, segments: [] },
      { ...ok, segments: { 'a.ts': HEX.toUpperCase() } },
      { ...ok, segments: { 'a.ts': HEX.slice(1) } },
      { ...ok, segments: { '': HEX } },
      { ...ok, segments: { 'a.ts': 5 } },
    ];
    for (const b of bad) {
      expectRelaycastError(() => decodeDigestSidecar(typeof b === 'string' ? b : JSON.stringify(b)), ErrorCode.DIGEST_SIDECAR_INVALID);
    }
    expectRelaycastError(() => decodeDigestSidecar(' '.repeat(3 * 1024 * 1024)), ErrorCode.DIGEST_SIDECAR_INVALID);
  });

  it('throws only its typed error on arbitrary input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        try {
          decodeDigestSidecar(text);
        } catch (err) {
          expect(err).toBeInstanceOf(RelaycastError);
          expect((err as RelaycastError).code).toBe(ErrorCode.DIGEST_SIDECAR_INVALID);
        }
      }),
      { numRuns: 10_000 },
    );
  });
});
