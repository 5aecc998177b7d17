import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';

/**
 * The absolute path of bin `binName` of package `packageName`, read from that package's
 * package.json `bin` field: tests and the devnet start bins by name, so moving a bin is one edit in
 * its package.json. The package is resolved from `from` (default: this kit), the way Node resolves an
 * import; it must export `./package.json` if it has an `exports` map.
 */
export function resolveBin(packageName: string, binName: string, from: string | URL = import.meta.url): string {
  const manifestPath = createRequire(from).resolve(`${packageName}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { name?: unknown; bin?: unknown };
  const bins = binsOf(packageName, manifest.bin);
  const path = bins[binName];
  if (path === undefined) {
    const known = Object.keys(bins);
    throw new Error(`${packageName} has no bin ${binName} (its bins: ${known.length === 0 ? 'none' : known.join(', ')})`);
  }
  return resolve(dirname(manifestPath), path);
}

/** The `bin` field as a name → path map; a string `bin` is named after the unscoped package name, as npm does. */
function binsOf(packageName: string, bin: unknown): Record<string, string> {
  if (bin === undefined) return {};
  if (typeof bin === 'string') return { [packageName.replace(/^@[^/]+\//, '')]: bin };
  if (typeof bin === 'object' && bin !== null && Object.values(bin).every((p) => typeof p === 'string')) return bin as Record<string, string>;
  throw new Error(`${packageName}'s package.json has a malformed bin field`);
}
