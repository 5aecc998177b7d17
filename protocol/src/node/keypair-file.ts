import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { bytesEqual } from '../bytes.js';
import { ErrorCode, RelaycastError, isAbortError, throwIfAborted } from '../errors.js';
import { privateKeyFromSeed, rawPublicKey } from './ed25519.js';

/**
 * The Solana CLI keypair file format (what `solana-keygen new` writes): a JSON array of 64 numbers,
 * the 32-byte ed25519 seed followed by the 32-byte public key. Relays, the setup CLI and any later
 * tool share this one codec so a file made by one is read by all of them and by the Solana CLI.
 */
export const KEYPAIR_SECRET_BYTES = 64;

/** Builds the 64-byte secret key (seed ‖ public key) of a seed. */
export function secretKeyFromSeed(seed: Uint8Array): Uint8Array {
  if (seed.byteLength !== 32) throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'ed25519 seed must be 32 bytes');
  const secret = new Uint8Array(KEYPAIR_SECRET_BYTES);
  secret.set(seed, 0);
  secret.set(rawPublicKey(privateKeyFromSeed(seed)), 32);
  return secret;
}

/** A fresh random 64-byte secret key. The caller should `fill(0)` it when done. */
export function generateSecretKey(): Uint8Array {
  const seed = randomBytes(32);
  try {
    return secretKeyFromSeed(seed);
  } finally {
    seed.fill(0);
  }
}

/** Checks length and that the public half belongs to the seed (a mismatched file would sign as someone else). */
export function checkSecretKey(secret: Uint8Array): void {
  if (secret.byteLength !== KEYPAIR_SECRET_BYTES) throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair must hold 64 bytes');
  const pub = rawPublicKey(privateKeyFromSeed(secret.subarray(0, 32)));
  if (!bytesEqual(pub, secret.subarray(32, 64))) {
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair public key does not match its secret');
  }
}

/** Parses keypair file text into the checked 64-byte secret key. */
export function parseKeypairText(text: string): Uint8Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair file is not JSON');
  }
  if (!Array.isArray(parsed) || parsed.length !== KEYPAIR_SECRET_BYTES || !parsed.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, 'keypair file must be a JSON array of 64 bytes');
  }
  const secret = Uint8Array.from(parsed as number[]);
  checkSecretKey(secret);
  return secret;
}

/** Keypair file text for a 64-byte secret key. */
export function formatKeypairText(secret: Uint8Array): string {
  checkSecretKey(secret);
  return JSON.stringify([...secret]);
}

/** What readKeypairFile returns. */
export interface KeypairFileRead {
  /** The checked 64-byte secret key; `fill(0)` it when done. */
  secretKey: Uint8Array;
  /** True when group or others may read the file (the caller decides whether to warn). */
  readableByOthers: boolean;
}

/** Reads a keypair file; RC_ERR_KEYPAIR_INVALID when missing (cause ENOENT), unreadable or malformed. */
export async function readKeypairFile(path: string, signal?: AbortSignal): Promise<KeypairFileRead> {
  let text: string;
  try {
    text = await readFile(path, { encoding: 'utf8', signal });
  } catch (err) {
    if (isAbortError(err)) throw new RelaycastError(ErrorCode.ABORTED, 'keypair load aborted', { cause: err });
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, `cannot read keypair file ${path}`, { cause: err });
  }
  const mode = (await stat(path)).mode;
  return { secretKey: parseKeypairText(text), readableByOthers: (mode & 0o077) !== 0 };
}

/**
 * Writes a new keypair file like `solana-keygen new` (mode 0600, parent directory created 0700).
 * Never overwrites: the key goes to a private temporary file that is then hard-linked into place,
 * which fails if the path exists, so two racing writers never leave a half-written file.
 * Returns false (and writes nothing) when the path already exists.
 */
export async function writeNewKeypairFile(path: string, secret: Uint8Array, signal?: AbortSignal): Promise<boolean> {
  const text = formatKeypairText(secret);
  throwIfAborted(signal);
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, `cannot create the directory of keypair file ${path}`, { cause: err });
  }
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    throwIfAborted(signal);
    await link(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    if (err instanceof RelaycastError) throw err;
    throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, `cannot create keypair file ${path}`, { cause: err });
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
