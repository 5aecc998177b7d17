import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeBase58 } from '../base58.js';
import { registrationSigningBytes } from '../tracker-messages.js';
import { privateKeyFromSeed, publicKeyFromRaw, rawPublicKey, signEd25519, verifyEd25519 } from './ed25519.js';

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

/** Raw public key and seed of a node:crypto key pair, through JWK (independent of the code under test). */
function freshKeyPair(): { seed: Uint8Array; publicRaw: Uint8Array; privateKey: KeyObject; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    seed: Uint8Array.from(Buffer.from(jwk.d as string, 'base64url')),
    publicRaw: Uint8Array.from(Buffer.from(jwk.x as string, 'base64url')),
    privateKey,
    publicKey,
  };
}

function spkiRaw(key: KeyObject): Uint8Array {
  const der = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'der', type: 'spki' });
  return Uint8Array.from(der.subarray(der.byteLength - 32));
}

// RFC 8032 section 7.1, test 1 (empty message) and test 2 (one byte 0x72).
const RFC_SEED = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const RFC_PUBLIC = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
const RFC_SIG_EMPTY = hex('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b');
const RFC2_SEED = hex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb');
const RFC2_PUBLIC = hex('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c');
const RFC2_SIG = hex('92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00');

describe('ed25519 (node:crypto)', () => {
  it('matches the RFC 8032 test vectors', () => {
    const key = privateKeyFromSeed(RFC_SEED);
    expect(rawPublicKey(key)).toEqual(RFC_PUBLIC);
    expect(signEd25519(key, new Uint8Array(0))).toEqual(RFC_SIG_EMPTY);
    expect(verifyEd25519(RFC_PUBLIC, new Uint8Array(0), RFC_SIG_EMPTY)).toBe(true);
    const key2 = privateKeyFromSeed(RFC2_SEED);
    expect(rawPublicKey(key2)).toEqual(RFC2_PUBLIC);
    expect(signEd25519(key2, Uint8Array.from([0x72]))).toEqual(RFC2_SIG);
    expect(verifyEd25519(RFC2_PUBLIC, Uint8Array.from([0x72]), RFC2_SIG)).toBe(true);
  });

  it('a seed gives the Solana-style address (base58 of the raw public key)', () => {
    expect(encodeBase58(rawPublicKey(privateKeyFromSeed(RFC_SEED)))).toBe('FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z');
  });

  it('rawPublicKey(privateKeyFromSeed(seed)) equals the SPKI-exported raw key of a node:crypto key pair', () => {
    for (let i = 0; i < 20; i++) {
      const kp = freshKeyPair();
      const key = privateKeyFromSeed(kp.seed);
      expect(rawPublicKey(key)).toEqual(kp.publicRaw);
      expect(rawPublicKey(key)).toEqual(spkiRaw(kp.publicKey));
      expect(rawPublicKey(kp.privateKey)).toEqual(kp.publicRaw);
      expect(spkiRaw(publicKeyFromRaw(kp.publicRaw))).toEqual(kp.publicRaw);
    }
  });

  it('sign/verify round trip with keys from node:crypto, against node:crypto itself', () => {
    const pairs = Array.from({ length: 8 }, freshKeyPair);
    fc.assert(
      fc.property(fc.nat({ max: pairs.length - 1 }), fc.uint8Array({ maxLength: 256 }), (i, message) => {
        const kp = pairs[i]!;
        const sig = signEd25519(privateKeyFromSeed(kp.seed), message);
        expect(sig.byteLength).toBe(64);
        // Ed25519 is deterministic: the node key object signs the same bytes.
        expect(sig).toEqual(signEd25519(kp.privateKey, message));
        expect(verifyEd25519(kp.publicRaw, message, sig)).toBe(true);
        expect(verifyEd25519(kp.publicKey, message, sig)).toBe(true);
        expect(verify(null, message, kp.publicKey, sig)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('is false for a tampered message, a tampered signature or the wrong key', () => {
    const a = freshKeyPair();
    const b = freshKeyPair();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (message, at, flip) => {
        const sig = signEd25519(a.privateKey, message);
        const badMessage = message.slice();
        badMessage[at % badMessage.length]! ^= flip;
        expect(verifyEd25519(a.publicRaw, badMessage, sig)).toBe(false);
        const badSig = sig.slice();
        badSig[at % 64]! ^= flip;
        expect(verifyEd25519(a.publicRaw, message, badSig)).toBe(false);
        expect(verifyEd25519(b.publicRaw, message, sig)).toBe(false);
        expect(verifyEd25519(b.publicKey, message, sig)).toBe(false);
        const extended = Uint8Array.from([...message, 0]);
        expect(verifyEd25519(a.publicRaw, extended, sig)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on malformed keys or signatures: it returns false', () => {
    const kp = freshKeyPair();
    const message = Uint8Array.from([1, 2, 3]);
    const sig = signEd25519(kp.privateKey, message);
    const badKeys = [new Uint8Array(0), new Uint8Array(31), new Uint8Array(33), kp.publicRaw.subarray(1), new Uint8Array(32).fill(0xff), new Uint8Array(64)];
    for (const key of badKeys) expect(verifyEd25519(key, message, sig)).toBe(false);
    for (const s of [new Uint8Array(0), sig.subarray(0, 63), Uint8Array.from([...sig, 0]), new Uint8Array(64), new Uint8Array(64).fill(0xff)]) {
      expect(verifyEd25519(kp.publicRaw, message, s)).toBe(false);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 70 }), (key, s) => {
        expect(verifyEd25519(key, message, s)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('signs registration challenges the way the tracker verifies them', () => {
    const kp = freshKeyPair();
    const nonce = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
    const sig = signEd25519(privateKeyFromSeed(kp.seed), registrationSigningBytes(nonce));
    expect(verifyEd25519(kp.publicRaw, registrationSigningBytes(nonce), sig)).toBe(true);
    // The nonce alone (without the domain separator) does not verify.
    expect(verifyEd25519(kp.publicRaw, nonce, sig)).toBe(false);
  });

  it('refuses raw keys and seeds of the wrong size with a RangeError', () => {
    expect(() => publicKeyFromRaw(new Uint8Array(31))).toThrow(RangeError);
    expect(() => privateKeyFromSeed(new Uint8Array(33))).toThrow(RangeError);
  });
});
