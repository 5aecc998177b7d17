/** Runs `make(i)` for i in [0, count) with at most `concurrency` in flight; results in index order. */
export async function mapConcurrent<T>(count: number, concurrency: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await make(i);
      }
    }),
  );
  return out;
}

/**
 * Retries `fn` up to `attempts` times. Only for setup the benches do not measure: on this loaded
 * 2-core machine a few WebRTC connections opened together fail ICE now and then.
 */
export async function retry<T>(attempts: number, fn: () => Promise<T>, onRetry?: (err: unknown) => void): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      onRetry?.(err);
    }
  }
}
