import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, ensureBuilt, type PublishedPackage } from './helpers/tarballs.js';

const run = promisify(execFile);

/** Every published package and its directory. */
const PACKAGES: Record<PublishedPackage, string> = {
  '@relaycast/protocol': 'protocol',
  '@relaycast/cli-kit': 'cli-kit',
  '@relaycast/origin-tools': 'origin-tools',
  '@relaycast/tracker': 'tracker',
  '@relaycast/relay': 'relay',
  '@relaycast/player-sdk': 'player-sdk',
  '@relaycast/contracts-client': 'contracts-client',
};
const NAMES = Object.keys(PACKAGES) as PublishedPackage[];

/** The packages that declare `sideEffects: false` (no module of theirs does anything on import). */
const SIDE_EFFECT_FREE: readonly PublishedPackage[] = ['@relaycast/protocol', '@relaycast/player-sdk'];

/**
 * Bare imports allowed although not declared, by file: the bins import tsx only when `#<bin>`
 * resolved to a TypeScript source, which happens only under the workspace's `relaycast-source`
 * condition; installed, it resolves to dist/ and tsx is never imported.
 */
const UNDECLARED_OK: { file: RegExp; pkg: string }[] = [{ file: /^bin\/[^/]+\.js$/, pkg: 'tsx' }];

type Conditions = string | null | { [condition: string]: Conditions };

interface Manifest {
  name: string;
  version: string;
  type?: string;
  description?: string;
  license?: string;
  repository?: { type?: string; url?: string; directory?: string };
  engines?: { node?: string };
  sideEffects?: boolean | string[];
  main?: string;
  types?: string;
  files?: string[];
  exports?: Record<string, Conditions>;
  imports?: Record<string, Conditions>;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface Packed {
  manifest: Manifest;
  /** Paths in the tarball (`npm pack --dry-run`), relative to the package root, mode by path. */
  files: Map<string, number>;
}

const packed = new Map<PublishedPackage, Packed>();

/** `./dist/x.js` → `dist/x.js`. */
const normal = (target: string): string => target.replace(/^\.\//, '');

/** The targets of `conditions` for the condition names in `wanted` (nested condition objects included). */
function targets(conditions: Conditions, wanted: readonly string[]): string[] {
  if (conditions === null) return [];
  if (typeof conditions === 'string') return [conditions];
  return Object.entries(conditions).flatMap(([condition, inner]) =>
    typeof inner === 'string' ? (wanted.includes(condition) ? [inner] : []) : targets(inner, wanted),
  );
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`); undefined for relative, absolute, builtin, URL and `#` specifiers. */
function packageOf(specifier: string): string | undefined {
  if (/^(\.|\/|#)/.test(specifier) || isBuiltin(specifier) || /^[a-z][a-z0-9+.-]*:/i.test(specifier)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Every import and export specifier in a JavaScript or declaration file, dynamic `import('x')` and `import("x")` types included. */
function specifiersOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/**
 * Issue 16: each published package's manifest against what `npm pack` would put in its tarball,
 * after a build. Fast and offline; the install tests (install-operator, install-platform) then
 * install the tarballs for real.
 */
describe('published package manifests', () => {
  beforeAll(async () => {
    await ensureBuilt();
    const args = ['pack', '--dry-run', '--json', ...NAMES.flatMap((n) => ['--workspace', n])];
    const { stdout } = await run('npm', args, { cwd: REPO_ROOT, maxBuffer: 64 << 20 });
    const list = JSON.parse(stdout) as { name: PublishedPackage; files: { path: string; mode: number }[] }[];
    for (const name of NAMES) {
      const entry = list.find((p) => p.name === name);
      if (entry === undefined) throw new Error(`npm pack --dry-run listed no ${name}`);
      const manifest = JSON.parse(await readFile(join(REPO_ROOT, PACKAGES[name], 'package.json'), 'utf8')) as Manifest;
      packed.set(name, { manifest, files: new Map(entry.files.map((f) => [f.path, f.mode])) });
    }
  });

  const get = (name: PublishedPackage): Packed => packed.get(name)!;

  describe.each(NAMES)('%s', (name) => {
    const dir = PACKAGES[name];

    it('declares what a registry page and an installer need: engines, license, repository, description, files, type; ships a README', () => {
      const { manifest: m, files } = get(name);
      expect(m.name).toBe(name);
      expect(m.type).toBe('module');
      expect(m.description?.length).toBeGreaterThan(20);
      expect(m.license).toMatch(/^[A-Za-z0-9.-]+$/);
      expect(m.engines?.node).toMatch(/^>=\d+/);
      expect(m.repository).toMatchObject({ type: 'git', directory: dir });
      expect(m.repository?.url).toMatch(/^git\+https:\/\/.+\.git$/);
      expect(m.files?.length).toBeGreaterThan(0);
      expect(files.has('package.json')).toBe(true);
      expect(files.has('README.md'), 'README.md in the tarball').toBe(true);
      if (SIDE_EFFECT_FREE.includes(name)) expect(m.sideEffects).toBe(false);
      else expect(m.sideEffects).toBeUndefined();
    });

    it('ships compiled JavaScript only: no TypeScript sources, no build info, no tests', () => {
      const shipped = [...get(name).files.keys()];
      expect(shipped.filter((f) => /\.(c|m)?tsx?$/.test(f) && !/\.d\.(c|m)?ts$/.test(f))).toEqual([]);
      expect(shipped.filter((f) => f.startsWith('src/') || f.endsWith('.tsbuildinfo') || /\.test\.(d\.ts|js)$/.test(f))).toEqual([]);
      expect(shipped.filter((f) => f.startsWith('dist/') && f.endsWith('.js')).length).toBeGreaterThan(0);
    });

    it('main, types and every exports/imports target for the types and default conditions are in the tarball', () => {
      const { manifest: m, files } = get(name);
      const missing = (list: string[]): string[] => list.map(normal).filter((t) => !files.has(t));
      expect(missing([m.main ?? '', m.types ?? ''])).toEqual([]);
      expect(m.exports?.['.']).toBeDefined();
      for (const [subpath, conditions] of Object.entries(m.exports ?? {})) {
        const found = targets(conditions, ['types', 'default', 'import']);
        // A subpath only the workspace resolves (relaycast-source alone) has no target for consumers.
        if (typeof conditions === 'object' && conditions !== null && Object.keys(conditions).every((c) => c === 'relaycast-source')) continue;
        expect(found.length, `exports['${subpath}']`).toBeGreaterThan(0);
        expect(missing(found), `exports['${subpath}']`).toEqual([]);
        if (typeof conditions === 'object' && conditions !== null) {
          // Consumers' resolution is ordered: types first, the runtime file last.
          const keys = Object.keys(conditions).filter((c) => c !== 'relaycast-source');
          expect(keys, `exports['${subpath}']`).toEqual(['types', 'default']);
          expect(normal(conditions['types'] as string), `exports['${subpath}'].types`).toMatch(/\.d\.ts$/);
        }
      }
      for (const [key, conditions] of Object.entries(m.imports ?? {})) {
        expect(missing(targets(conditions, ['default'])), `imports['${key}']`).toEqual([]);
      }
    });

    it('every bin is in the tarball with a node shebang, and resolves its #<bin> import to a packed file', async () => {
      const { manifest: m, files } = get(name);
      for (const [bin, path] of Object.entries(m.bin ?? {})) {
        const file = normal(path);
        expect(files.has(file), `${bin}: ${file} in the tarball`).toBe(true);
        const source = await readFile(join(REPO_ROOT, dir, file), 'utf8');
        expect(source.startsWith('#!/usr/bin/env node\n'), `${bin}: shebang`).toBe(true);
        expect(source).toContain(`'#${bin}'`);
        const entry = m.imports?.[`#${bin}`];
        expect(entry, `imports['#${bin}']`).toBeDefined();
        expect(
          targets(entry!, ['default'])
            .map(normal)
            .filter((t) => files.has(t) && t.startsWith('dist/') && t.endsWith('.js')),
        ).toHaveLength(1);
      }
    });

    it('every bare import in its packed JavaScript and declarations is a node builtin, itself, or a declared dependency; every dependency is imported', async () => {
      const { manifest: m, files } = get(name);
      expect(Object.keys(m.dependencies ?? {})).not.toContain('tsx');
      expect(Object.keys(m.optionalDependencies ?? {})).not.toContain('tsx');
      expect(Object.keys(m.peerDependencies ?? {})).not.toContain('tsx');
      const declared = new Set([...Object.keys(m.dependencies ?? {}), ...Object.keys(m.peerDependencies ?? {})]);
      const undeclared: string[] = [];
      const imported = new Set<string>();
      for (const file of files.keys()) {
        if (!/\.(m?js|d\.ts)$/.test(file)) continue;
        const source = await readFile(join(REPO_ROOT, dir, file), 'utf8');
        for (const specifier of specifiersOf(source)) {
          if (specifier.startsWith('#')) {
            expect(m.imports?.[specifier], `${file} imports ${specifier}`).toBeDefined();
            continue;
          }
          const pkg = packageOf(specifier);
          if (pkg === undefined || pkg === name) continue;
          imported.add(pkg);
          if (!declared.has(pkg) && !UNDECLARED_OK.some((ok) => ok.pkg === pkg && ok.file.test(file))) undeclared.push(`${file}: ${specifier}`);
        }
      }
      expect(undeclared, 'imported but not in dependencies or peerDependencies').toEqual([]);
      expect(
        [...declared].filter((d) => !imported.has(d)),
        'declared but imported by no packed file',
      ).toEqual([]);
    });

    it('depends on the other @relaycast packages at their current versions', () => {
      const { manifest: m } = get(name);
      for (const [dep, range] of Object.entries({ ...m.dependencies, ...m.peerDependencies })) {
        if (!dep.startsWith('@relaycast/')) continue;
        const sibling = packed.get(dep as PublishedPackage);
        expect(sibling, `${dep} is a published package`).toBeDefined();
        expect(range, dep).toBe(sibling!.manifest.version);
      }
    });
  });
});
