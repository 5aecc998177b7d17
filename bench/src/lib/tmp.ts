import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temp directory for one bench run, removed by `cleanup`. */
export async function benchDir(bench: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `relaycast-bench-${bench}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
