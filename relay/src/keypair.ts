import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { inspect } from 'node:util';
import { ErrorCode, RelaycastError, bytesEqual, encodeBase58, isAbortError, throwIfAborted } from '@relaycast/protocol';
import { privateKeyFromSeed, rawPublicKey, signEd25519 } from '@relaycast/protocol/node';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';

export interface KeypairFileOptions {
  /** Aborts reading or creating the file. Default: none. */
  signal?: AbortSignal | undefined;
  /** Parent logger; used only to warn about a file others can read (the key itself is never logged). Default: none. */
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
    if (secret.byteLength !== 64) throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair must hold 64 bytes');
    const kp = new RelayKeypair(secret.subarray(0, 32));
    if (!bytesEqual(kp.#publicKey, secret.subarray(32, 64))) {
      throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair public key does not match its secret');
    }
    return kp;
  }

  static generate(): { keypair: RelayKeypair; secretKey: Uint8Array } {
    const seed = randomBytes(32);
    const keypair = new RelayKeypair(seed);
    const secretKey = new Uint8Array(64);
    secretKey.set(seed, 0);
    secretKey.set(keypair.#publicKey, 32);
    seed.fill(0);
    return { keypair, secretKey };
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
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair file is not JSON');
  }
  if (!Array.isArray(parsed) || parsed.length !== 64 || !parsed.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair file must be a JSON array of 64 bytes');
  }
  const secret = Uint8Array.from(parsed as number[]);
  try {
    return RelayKeypair.fromSecretKey(secret);
  } finally {
    secret.fill(0);
  }
}

/** Loads a Solana CLI keypair file; throws RC_ERR_KEYPAIR_INVALID when it is missing, unreadable or malformed. */
export async function loadKeypair(path: string, options: KeypairFileOptions = {}): Promise<RelayKeypair> {
  let text: string;
  try {
    text = await readFile(path, { encoding: 'utf8', signal: options.signal });
  } catch (err) {
    if (isAbortError(err)) throw new RelaycastError(ErrorCode.ABORTED, 'keypair load aborted', { cause: err });
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, `cannot read keypair file ${path}`, { cause: err });
  }
  // Like ssh with private keys, but only a warning: refusing would break existing Solana setups.
  const mode = (await stat(path)).mode;
  if ((mode & 0o077) !== 0) {
    options.logger?.warn({ path, mode: (mode & 0o777).toString(8) }, 'keypair file is readable by other users; chmod 600 it');
  }
  return parseKeypairFile(text);
}

/**
 * Loads the keypair at `path`, or creates it like `solana-keygen new` would (mode 0600, parent
 * directory created). Never overwrites: the key is written to a private temporary file and then
 * hard-linked into place, which fails if the path exists, so a racing relay either wins or loads
 * the complete file of the winner, never a half-written one.
 */
export async function loadOrCreateKeypair(path: string, options: KeypairFileOptions = {}): Promise<{ keypair: RelayKeypair; created: boolean }> {
  try {
    return { keypair: await loadKeypair(path, options), created: false };
  } catch (err) {
    const cause = (err as RelaycastError).cause as NodeJS.ErrnoException | undefined;
    if (cause?.code !== 'ENOENT') throw err;
  }
  throwIfAborted(options.signal);
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, `cannot create the directory of keypair file ${path}`, { cause: err });
  }
  const { keypair, secretKey } = RelayKeypair.generate();
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(JSON.stringify([...secretKey]));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { keypair: await loadKeypair(path, options), created: false };
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, `cannot create keypair file ${path}`, { cause: err });
  } finally {
    secretKey.fill(0);
    await unlink(tmp).catch(() => undefined);
  }
  return { keypair, created: true };
}
