import { stat } from 'node:fs/promises';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { generateSecretKey, readKeypairFile, writeNewKeypairFile } from '@relaycast/protocol/node';
import { Keypair } from '@solana/web3.js';

/**
 * Solana CLI keypair files as web3.js signers. The file format lives in protocol's keypair-file
 * codec (shared with relays); this only turns the checked secret into a `Keypair`. web3.js keeps
 * the array it is given, so it gets a copy and the buffer read from disk is wiped.
 */
export async function loadSigner(path: string, signal?: AbortSignal): Promise<Keypair> {
  const { secretKey } = await readKeypairFile(path, signal);
  try {
    return Keypair.fromSecretKey(secretKey.slice());
  } finally {
    secretKey.fill(0);
  }
}

/**
 * Refuses (RC_ERR_KEY_PERMISSIONS) a key file that its group or others may read or write: a key
 * that signs money movements must be readable by its owner alone (chmod 600), as ssh insists.
 */
export async function checkKeyFilePermissions(path: string): Promise<void> {
  if (process.platform === 'win32') return;
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `cannot read the key file ${path}`, { cause: err, details: { path } });
  }
  if ((mode & 0o077) !== 0) {
    throw new RelaycastError(
      ErrorCode.KEY_PERMISSIONS,
      `key file ${path} is accessible to group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
      {
        details: { path, mode: (mode & 0o777).toString(8) },
      },
    );
  }
}

/** Creates a new keypair file (mode 0600); refuses to overwrite an existing one, like `solana-keygen new`. */
export async function createSignerFile(path: string, signal?: AbortSignal): Promise<Keypair> {
  const secretKey = generateSecretKey();
  try {
    if (!(await writeNewKeypairFile(path, secretKey, signal))) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${path} already exists; refusing to overwrite a keypair`, { details: { path } });
    }
    return Keypair.fromSecretKey(secretKey.slice());
  } finally {
    secretKey.fill(0);
  }
}

/** Loads the keypair at `path`, creating it first when the file does not exist. */
export async function loadOrCreateSigner(path: string, signal?: AbortSignal): Promise<{ signer: Keypair; created: boolean }> {
  try {
    return { signer: await loadSigner(path, signal), created: false };
  } catch (err) {
    const cause = (err as RelaycastError).cause as NodeJS.ErrnoException | undefined;
    if (cause?.code !== 'ENOENT') throw err;
  }
  const secretKey = generateSecretKey();
  try {
    if (!(await writeNewKeypairFile(path, secretKey, signal))) return { signer: await loadSigner(path, signal), created: false };
    return { signer: Keypair.fromSecretKey(secretKey.slice()), created: true };
  } finally {
    secretKey.fill(0);
  }
}
