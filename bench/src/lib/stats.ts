/** Order statistics over run results; medians are what the reports quote (figures are noisy on a shared machine). */

/** The q-quantile (0..1) by nearest rank; NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Rounds for JSON output: benchmark figures do not carry more than 3 significant decimals. */
export function round(value: number, decimals = 3): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

/** Median of each numeric field across runs (all runs have the same fields). */
export function medianOf<T extends Record<string, number>>(runs: readonly T[]): T {
  const out: Record<string, number> = {};
  const first = runs[0];
  if (first === undefined) return out as T;
  for (const key of Object.keys(first)) out[key] = round(median(runs.map((r) => r[key] as number)));
  return out as T;
}

export const MIB = 1024 * 1024;
/** Throughput is reported in MB/s (10^6 bytes), the unit the design notes use. */
export const MB = 1_000_000;
