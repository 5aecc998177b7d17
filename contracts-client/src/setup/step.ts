import { ErrorCode, RelaycastError, isRelaycastError, throwIfAborted } from '@relaycast/protocol';
import { SendTransactionError, type Connection } from '@solana/web3.js';

/**
 * Runs one setup step (RPC calls and transactions through web3.js, which takes no AbortSignal)
 * under a deadline and the caller's signal. On abort or time-out the step's promise is left to
 * settle on its own: the transaction may still land, which the next `balance` call shows.
 * Any failure comes out as RC_ERR_CHAIN_REQUEST_FAILED with the cluster's logs in `details`.
 */
export async function runStep<T>(what: string, timeoutMs: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  throwIfAborted(signal);
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RelaycastError(ErrorCode.TIMEOUT, `${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    onAbort = () => reject(new RelaycastError(ErrorCode.ABORTED, `${what}: aborted`));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([fn(), guard]);
  } catch (err) {
    if (isRelaycastError(err)) throw err;
    const logs = err instanceof SendTransactionError ? err.logs : undefined;
    throw new RelaycastError(ErrorCode.CHAIN_REQUEST_FAILED, `${what}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      details: logs === undefined ? undefined : { logs },
    });
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}

/** Waits for a signature to reach the connection's commitment; a failed transaction is an error. */
export async function confirmSignature(connection: Connection, signature: string): Promise<void> {
  const latest = await connection.getLatestBlockhash();
  const result = await connection.confirmTransaction({ signature, ...latest });
  if (result.value.err !== null) {
    throw new RelaycastError(ErrorCode.CHAIN_REQUEST_FAILED, `transaction ${signature} failed`, { details: { signature, err: result.value.err } });
  }
}
