import { ErrorCode, RelaycastError } from './errors.js';

/** A time limit made by `deadline(ms, parent)`: pass `signal` to the bounded work, then `clear()`. */
export interface Deadline {
  /** Aborts when the parent does or when the time is up (reason: RC_ERR_TIMEOUT). */
  readonly signal: AbortSignal;
  /** Stops the timer; call when the bounded work is over. */
  clear(): void;
}

/**
 * A deadline on top of an optional parent signal, kept by an ordinary timer. Unlike
 * `AbortSignal.any([parent, AbortSignal.timeout(ms)])` the timer holds the controller strongly:
 * on Node 20 the combined signal of `any` was seen never to fire (a relay's gateway search hung
 * past its 10 s bound), consistent with the timeout signal being collected while only `any`
 * referenced it.
 */
export function deadline(parent: AbortSignal | undefined, ms: number, what = 'operation'): Deadline {
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(parent?.reason);
  const timer = setTimeout(() => ac.abort(new RelaycastError(ErrorCode.TIMEOUT, `${what} timed out after ${ms} ms`)), ms);
  if (parent?.aborted === true) onAbort();
  else parent?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ac.signal,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Settles with `work`, or rejects with the signal's reason as soon as it aborts, even when the
 * work ignores the signal (some third-party searches do).
 */
export async function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    throw signal.reason;
  }
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
    work.catch(() => undefined);
  }
}
