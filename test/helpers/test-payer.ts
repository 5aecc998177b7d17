import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { GRANT_VERSION, decodePublicKey, encodeBase58, encodeSignedGrant } from '@relaycast/protocol';
import { rawPublicKey, signGrant } from '@relaycast/protocol/node';
import type { PaymentsOptions } from '@relaycast/player-sdk';

/**
 * A stand-in for a platform's settlement service where a test needs only what a grant proves to
 * the tracker (a trusted payer vouched for this session key and user): the tracker is started with
 * `--trusted-payer <payerId>`, and SDK viewers get `payments: payer.payments(user)`. No chain, no
 * settler process; relays that need payment are not involved.
 */
export interface TestPayer {
  payerId: string;
  /** The payer's signing key, for tests that build `session` messages by hand. */
  privateKey: KeyObject;
  /** SDK payments options whose grants carry `user` (16 bytes; random = a new user each call). */
  payments(user?: Uint8Array): PaymentsOptions;
  /** A signed grant for a raw session key. */
  grant(sessionKey: Uint8Array, user?: Uint8Array): Uint8Array;
}

export function testPayer(): TestPayer {
  const { privateKey } = generateKeyPairSync('ed25519');
  const payer = rawPublicKey(privateKey);
  const grant = (sessionKey: Uint8Array, user?: Uint8Array, key: KeyObject = privateKey): Uint8Array => {
    const now = Date.now();
    return encodeSignedGrant(
      signGrant(
        {
          version: GRANT_VERSION,
          sessionKey,
          payer,
          mint: new Uint8Array(32).fill(7),
          pricePerGiB: 1_000n,
          budget: 1_000_000n,
          issuedAtMs: now,
          expiresAtMs: now + 3_600_000,
          maxBytesPerSec: 2_500_000,
          user: user ?? new Uint8Array(randomBytes(16)),
          scope: 'http://',
          nonce: new Uint8Array(randomBytes(16)),
        },
        key,
      ),
    );
  };
  return {
    payerId: encodeBase58(payer),
    privateKey,
    grant,
    payments: (user) => {
      const tag = user ?? new Uint8Array(randomBytes(16));
      return { getGrant: async (req) => grant(decodePublicKey(req.sessionKey), tag) };
    },
  };
}
