import { stat } from 'node:fs/promises';
import { inspect } from 'node:util';
import { ErrorCode, RelaycastError, encodeBase58, throwIfAborted } from '@relaycast/protocol';
import {
  checkSecretKey,
  generateSecretKey,
  parseKeypairText,
  privateKeyFromSeed,
  rawPublicKey,
  readKeypairFile,
  signEd25519,
  writeNewKeypairFile,
} from '@relaycast/protocol/node';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';

export interface KeypairFileOptions {
  /** Aborts reading or creating the file. Default: none. */
  signal?: AbortSignal | undefined;
  /** Parent logger (the key itself is never logged). Default: none. */
  logger?: Logger | undefined;
}

/**
 * The relay's ed25519 identity, stored in the Solana CLI keypair format (a JSON array of 64 bytes:
 * 32-byte seed then 32-byte public key), so the same file is the operator's Solana wallet.
 * The secret never leaves this object: it does not serialise, print or log.
 */
export class RelayKeypair {
  /** base58 public key: the relay id and its Solana address. */
  readonly relayId: string;
  readonly #publicKey: Uint8Array;
  readonly #key: KeyObject;

  private constructor(seed: Uint8Array) {
    this.#key = privateKeyFromSeed(seed);
    this.#publicKey = rawPublicKey(this.#key);
    this.relayId = encodeBase58(this.#publicKey);
  }

  /** The raw 32-byte public key (a copy). */
  get publicKey(): Uint8Array {
    return this.#publicKey.slice();
  }

  /** Builds a keypair from the 64-byte Solana CLI secret key; checks that both halves agree. */
  static fromSecretKey(secret: Uint8Array): RelayKeypair {
    checkSecretKey(secret);
    return new RelayKeypair(secret.subarray(0, 32));
  }

  static generate(): { keypair: RelayKeypair; secretKey: Uint8Array } {
    const secretKey = generateSecretKey();
    return { keypair: RelayKeypair.fromSecretKey(secretKey), secretKey };
  }

  /** ed25519 signature (64 bytes) of `message` by the relay key. */
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
  const secret = parseKeypairText(text);
  try {
    return RelayKeypair.fromSecretKey(secret);
  } finally {
    secret.fill(0);
  }
}

/** Group or others may read or write the file. */
const NOT_PRIVATE = 0o077;

function permissionsError(path: string, mode: number): RelaycastError {
  return new RelaycastError(
    ErrorCode.KEY_PERMISSIONS,
    `keypair file ${path} is accessible by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${path}`,
    { details: { path, mode: (mode & 0o777).toString(8) } },
  );
}

/**
 * Loads a Solana CLI keypair file; throws RC_ERR_KEYPAIR_INVALID when it is missing, unreadable or
 * malformed, and RC_ERR_KEY_PERMISSIONS when group or others may read or write it (like ssh with
 * private keys: the relay key holds the operator's earnings, and another user who can read it can
 * take them; one who can write it can swap in their own key).
 */
export async function loadKeypair(path: string, options: KeypairFileOptions = {}): Promise<RelayKeypair> {
  // Checked before the secret is read; a missing file falls through to readKeypairFile's error.
  const before = await stat(path).catch(() => undefined);
  if (before !== undefined && (before.mode & NOT_PRIVATE) !== 0) throw permissionsError(path, before.mode);
  const { secretKey, readableByOthers } = await readKeypairFile(path, options.signal);
  try {
    // The mode could have changed between the check and the read.
    if (readableByOthers) throw permissionsError(path, (await stat(path)).mode);
    return RelayKeypair.fromSecretKey(secretKey);
  } finally {
    secretKey.fill(0);
  }
}

/**
 * Loads the keypair at `path`, or creates it like `solana-keygen new` would (mode 0600, parent
 * directory created). Never overwrites: when another process wins the race to create it, its
 * complete file is loaded instead.
 */
export async function loadOrCreateKeypair(path: string, options: KeypairFileOptions = {}): Promise<{ keypair: RelayKeypair; created: boolean }> {
  try {
    return { keypair: await loadKeypair(path, options), created: false };
  } catch (err) {
    const cause = (err as RelaycastError).cause as NodeJS.ErrnoException | undefined;
    if (cause?.code !== 'ENOENT') throw err;
  }
  throwIfAborted(options.signal);
  const { keypair, secretKey } = RelayKeypair.generate();
  try {
    const created = await writeNewKeypairFile(path, secretKey, options.signal);
    if (!created) return { keypair: await loadKeypair(path, options), created: false };
  } finally {
    secretKey.fill(0);
  }
  return { keypair, created: true };
}
