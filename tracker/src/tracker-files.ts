import { readFile, stat } from 'node:fs/promises';
import { ErrorCode, RelaycastError, decodePublicKey, isRelaycastError, throwIfAborted } from '@relaycast/protocol';
import { generateSecretKey, readKeypairFile, writeNewKeypairFile } from '@relaycast/protocol/node';

/** Group or others may read or write the file. */
const NOT_PRIVATE = 0o077;

function permissionsError(path: string, mode: number): RelaycastError {
  return new RelaycastError(
    ErrorCode.KEY_PERMISSIONS,
    `tracker key file ${path} is accessible by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${path}`,
    { details: { path, mode: (mode & 0o777).toString(8) } },
  );
}

/**
 * Loads the tracker's signing key from a Solana CLI keypair file, or creates one (mode 0600, never
 * overwriting) when the path does not exist. Whoever holds this key decides which sessions relays
 * are paid for, so a file other users may read or write is refused (RC_ERR_KEY_PERMISSIONS), like
 * the relay's key. Returns the 64-byte secret key; the caller zeroes it when done.
 */
export async function loadOrCreateTrackerKey(path: string, signal?: AbortSignal): Promise<{ secretKey: Uint8Array; created: boolean }> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const before = await stat(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, `cannot stat tracker key file ${path}`, { cause: err });
    });
    if (before === undefined) {
      throwIfAborted(signal);
      const secretKey = generateSecretKey();
      // false: another process created it meanwhile; load that one instead.
      if (await writeNewKeypairFile(path, secretKey, signal)) return { secretKey, created: true };
      secretKey.fill(0);
      continue;
    }
    if ((before.mode & NOT_PRIVATE) !== 0) throw permissionsError(path, before.mode);
    const { secretKey, readableByOthers } = await readKeypairFile(path, signal);
    if (readableByOthers) {
      secretKey.fill(0);
      throw permissionsError(path, (await stat(path)).mode);
    }
    return { secretKey, created: false };
  }
  throw new RelaycastError(ErrorCode.KEYPAIR_INVALID, `tracker key file ${path} appeared and vanished while loading`);
}

/** Most relay ids an allowlist file may hold. */
export const MAX_ALLOWLIST_ENTRIES = 1_000_000;

/**
 * Reads a relay allowlist: one base58 relay id per line; blank lines and `#` comments (whole line
 * or after the id) ignored. Throws RC_ERR_CONFIG_INVALID naming the first bad line.
 */
export async function readRelayAllowlist(path: string, signal?: AbortSignal): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, { encoding: 'utf8', signal });
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `cannot read relay allowlist ${path}`, { cause: err });
  }
  return parseRelayAllowlist(text, path);
}

export function parseRelayAllowlist(text: string, name = 'allowlist'): string[] {
  const ids: string[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    const id = (line.split('#')[0] ?? '').trim();
    if (id === '') continue;
    try {
      decodePublicKey(id);
    } catch (err) {
      if (!isRelaycastError(err)) throw err;
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} line ${i + 1}: "${id.slice(0, 60)}" is not a base58 relay id`);
    }
    if (ids.length >= MAX_ALLOWLIST_ENTRIES) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} holds more than ${MAX_ALLOWLIST_ENTRIES} relays`);
    ids.push(id);
  }
  return ids;
}
