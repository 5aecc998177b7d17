import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveBin } from './resolve-bin.js';

describe('resolveBin', () => {
  let root: string;
  let from: URL;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rc-resolve-bin-'));
    from = pathToFileURL(join(root, 'caller.js'));
    const pkg = async (name: string, manifest: Record<string, unknown>): Promise<void> => {
      await mkdir(join(root, 'node_modules', name), { recursive: true });
      await writeFile(join(root, 'node_modules', name, 'package.json'), JSON.stringify({ name, ...manifest }));
    };
    await pkg('@x/many', { bin: { 'x-one': './bin/one.js', 'x-two': 'tools/two.js' }, exports: { '.': './index.js', './package.json': './package.json' } });
    await pkg('@x/single', { bin: './cli.js' });
    await pkg('@x/none', {});
    await pkg('@x/sealed', { bin: { 'x-sealed': './bin/s.js' }, exports: { '.': './index.js' } });
    await pkg('@x/broken', { bin: { 'x-broken': 3 } });
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it("returns the absolute path of a bin named in the package's bin map", () => {
    expect(resolveBin('@x/many', 'x-one', from)).toBe(join(root, 'node_modules/@x/many/bin/one.js'));
    expect(resolveBin('@x/many', 'x-two', from)).toBe(join(root, 'node_modules/@x/many/tools/two.js'));
  });

  it('names a string bin after the unscoped package name, as npm does', () => {
    expect(resolveBin('@x/single', 'single', from)).toBe(join(root, 'node_modules/@x/single/cli.js'));
  });

  it('throws naming the bins the package has when the bin is not one of them', () => {
    expect(() => resolveBin('@x/many', 'x-three', from)).toThrow('@x/many has no bin x-three (its bins: x-one, x-two)');
    expect(() => resolveBin('@x/none', 'x', from)).toThrow('@x/none has no bin x (its bins: none)');
    expect(() => resolveBin('@x/broken', 'x-broken', from)).toThrow('malformed bin field');
  });

  it('throws when the package is missing or does not export its package.json', () => {
    expect(() => resolveBin('@x/absent', 'x', from)).toThrow(expect.objectContaining({ code: 'MODULE_NOT_FOUND' }));
    expect(() => resolveBin('@x/sealed', 'x-sealed', from)).toThrow(expect.objectContaining({ code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' }));
  });

  it("resolves the workspace's own bins to files that exist", () => {
    for (const [pkg, bin] of [
      ['@relaycast/tracker', 'relaycast-tracker'],
      ['@relaycast/relay', 'relaycast-relay'],
      ['@relaycast/contracts-client', 'relaycast-chain'],
      ['@relaycast/contracts-client', 'relaycast-solana'],
      ['@relaycast/contracts-client', 'relaycast-settler'],
      ['@relaycast/origin-tools', 'relaycast-digest'],
      ['@relaycast/devnet', 'relaycast-devnet'],
    ] as const) {
      const path = resolveBin(pkg, bin);
      expect(path.endsWith(`/bin/${bin}.js`), path).toBe(true);
      expect(existsSync(path), path).toBe(true);
    }
  });
});
