import * as noble from '@noble/ed25519';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/**
 * The viewer session's Ed25519 key: generated in the page, it signs receipts and nothing else, and
 * its private half never leaves this object. WebCrypto keeps it non-extractable where the browser
 * supports Ed25519 (Chromium, Firefox, Safari 17+, Node 20); elsewhere @noble/ed25519 holds it in
 * memory (about 15x slower to sign, still far above one receipt per segment).
 */
export interface SessionSigner {
  /** Raw 32-byte public key (what grants name). */
  readonly publicKey: Uint8Array;
  /** 'webcrypto' or 'noble': which implementation holds the key. */
  readonly implementation: 'webcrypto' | 'noble';
  sign(message: Uint8Array): Promise<Uint8Array>;
}

export async function createSessionSigner(options: { preferNoble?: boolean } = {}): Promise<SessionSigner> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle !== undefined && options.preferNoble !== true) {
    try {
      const pair = await subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
      const publicKey = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
      return {
        publicKey,
        implementation: 'webcrypto',
        sign: async (message) => new Uint8Array(await subtle.sign({ name: 'Ed25519' }, pair.privateKey, message as Uint8Array<ArrayBuffer>)),
      };
    } catch {
      // This engine's WebCrypto lacks Ed25519: fall through to the JS implementation.
    }
  }
  if (globalThis.crypto?.getRandomValues === undefined) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'no secure random source for a session key');
  }
  const secretKey = noble.utils.randomSecretKey();
  const publicKey = await noble.getPublicKeyAsync(secretKey);
  return { publicKey, implementation: 'noble', sign: (message) => noble.signAsync(message, secretKey) };
}
