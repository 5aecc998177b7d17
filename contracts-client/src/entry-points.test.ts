import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

/*
 * Imports one entry point in a fresh Node process (as a production settler would load it) and
 * reports what of litesvm got loaded: its JavaScript (CommonJS: in the require cache) and its
 * native binding (in the process's shared objects).
 */
const PROBE = `
const { createRequire } = await import('node:module');
await import(process.env.ENTRY);
const cache = Object.keys(createRequire(process.cwd() + '/').cache);
const shared = process.report.getReport().sharedObjects;
console.log(JSON.stringify({ modules: cache.filter((f) => /[\\\\/]litesvm/.test(f)), binaries: shared.filter((f) => /litesvm/.test(f)) }));
`;

async function litesvmLoadedBy(entry: string): Promise<{ modules: string[]; binaries: string[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', PROBE], {
    cwd: PACKAGE_DIR,
    env: { ...process.env, ENTRY: entry },
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { modules: string[]; binaries: string[] };
}

describe('entry points', () => {
  it('the settler and setup entry points never load the embedded chain’s litesvm; the chain entry point does', { timeout: 90_000 }, async () => {
    const [settler, setup, chain] = await Promise.all([
      litesvmLoadedBy('@relaycast/contracts-client/settler'),
      litesvmLoadedBy('@relaycast/contracts-client/setup'),
      litesvmLoadedBy('@relaycast/contracts-client/chain'),
    ]);
    expect(settler).toEqual({ modules: [], binaries: [] });
    expect(setup).toEqual({ modules: [], binaries: [] });
    // The probe sees litesvm when it is there (else the two checks above could never fail).
    expect(chain.modules.length).toBeGreaterThan(0);
    expect(chain.binaries.length).toBeGreaterThan(0);
  });
});
