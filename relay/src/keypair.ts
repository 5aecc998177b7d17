import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { inspect } from 'node:util';
import { ErrorCode, RelaycastError, bytesEqual, encodeBase58 } from '@relaycast/protocol';
import { privateKeyFromSeed, rawPublicKey, signEd25519 } from '@relaycast/protocol/node';
import type { KeyObject } from 'node:crypto';

/**
 * The relay's ed25519 identity, stored in the Solana CLI keypair format (a JSON array of 64 bytes:
 * 32-byte seed then 32-byte public key), so the same file is the operator's Solana wallet.
 * The secret never leaves this object: it does not serialise, print or log.
 */
export class RelayKeypair {
  /** base58 public key: the relay id and its Solana address. */
  readonly relayId: string;
  readonly publicKey: Uint8Array;
  readonly #key: KeyObject;

  private constructor(seed: Uint8Array) {
    this.#key = privateKeyFromSeed(seed);
    this.publicKey = rawPublicKey(this.#key);
    this.relayId = encodeBase58(this.publicKey);
  }

  /** Builds a keypair from the 64-byte Solana CLI secret key; checks that both halves agree. */
  static fromSecretKey(secret: Uint8Array): RelayKeypair {
    if (secret.byteLength !== 64) throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair must hold 64 bytes');
    const kp = new RelayKeypair(secret.subarray(0, 32));
    if (!bytesEqual(kp.publicKey, secret.subarray(32, 64))) {
      throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair public key does not match its secret');
    }
    return kp;
  }

  static generate(): { keypair: RelayKeypair; secretKey: Uint8Array } {
    const seed = randomBytes(32);
    const keypair = new RelayKeypair(seed);
    const secretKey = new Uint8Array(64);
    secretKey.set(seed, 0);
    secretKey.set(keypair.publicKey, 32);
    return { keypair, secretKey };
  }

  sign(message: Uint8Array): Uint8Array {
    return signEd25519(this.#key, message);
  }

  toJSON(): { relayId: string } {
    return { relayId: this.relayId };
  }

  [inspect.custom](): string {
    return `RelayKeypair(${this.relayId})`;
  }
}

/** Parses a Solana CLI keypair file's text. */
export function parseKeypairFile(text: string): RelayKeypair {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair file is not JSON');
  }
  if (!Array.isArray(parsed) || parsed.length !== 64 || !parsed.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair file must be a JSON array of 64 bytes');
  }
  return RelayKeypair.fromSecretKey(Uint8Array.from(parsed as number[]));
}

export async function loadKeypair(path: string): Promise<RelayKeypair> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, `cannot read keypair file ${path}`, { cause: err });
  }
  return parseKeypairFile(text);
}

/**
 * Loads the keypair at `path`, or creates it like `solana-keygen new` would (mode 0600, parent
 * directory created). Never overwrites: creation uses O_EXCL, so two relays racing on one path
 * end up with the same key rather than one silently replacing the other's.
 */
export async function loadOrCreateKeypair(path: string): Promise<{ keypair: RelayKeypair; created: boolean }> {
  try {
    return { keypair: await loadKeypair(path), created: false };
  } catch (err) {
    const cause = (err as RelaycastError).cause as NodeJS.ErrnoException | undefined;
    if (cause?.code !== 'ENOENT') throw err;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const { keypair, secretKey } = RelayKeypair.generate();
  let handle;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { keypair: await loadKeypair(path), created: false };
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, `cannot create keypair file ${path}`, { cause: err });
  }
  try {
    await handle.writeFile(JSON.stringify([...secretKey]));
  } finally {
    await handle.close();
    secretKey.fill(0);
  }
  return { keypair, created: true };
}
