import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Writes `count` files of `bytes` random bytes under `dir/prefix`, returning their names relative
 * to `dir`. Throughput does not depend on the bytes being video, and random bytes cannot be
 * compressed anywhere along the way.
 */
export async function writeRandomSegments(dir: string, prefix: string, count: number, bytes: number): Promise<string[]> {
  await mkdir(join(dir, prefix), { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${prefix}/seg${String(i).padStart(4, '0')}.ts`;
    await writeFile(join(dir, name), randomBytes(bytes));
    names.push(name);
  }
  return names;
}
