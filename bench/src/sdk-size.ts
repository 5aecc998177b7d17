/**
 * sdk-size: what the SDK's browser build adds to a page, min+gzip, hls.js excluded. Builds the
 * browser bundles from the current sources (player-sdk/scripts/build-browser.ts: esbuild, minified,
 * code splitting) into a temp dir and measures:
 *   - hls adapter: `relaycast-hls.js` plus every chunk it imports (what a page using RelaycastHls loads);
 *   - core: `relaycast.js` plus its chunks (a page using only RelaycastClient).
 * The same-run baseline is hls.js itself, the copy the SDK resolves: its ESM build `dist/hls.mjs`
 * minified with the same esbuild settings, and, for reference, the `dist/hls.min.mjs` hls.js ships.
 * Sizes exclude `//# sourceMappingURL` comments; gzip is zlib at level 9 (`--gzip-level`).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildBrowser, minifyEsm } from '@relaycast/player-sdk/browser-build';
import { parseFlags } from './lib/cli-flags.js';
import { report } from './lib/report.js';
import { benchDir } from './lib/tmp.js';

const BENCH = 'sdk-size';

const flags = parseFlags(BENCH, {
  'gzip-level': { default: 9, help: 'zlib gzip level (1-9)' },
});

interface Size {
  files: string[];
  minBytes: number;
  gzipBytes: number;
}

const stripMapComment = (code: string): string => code.replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, '');
const gzipBytes = (code: string): number => gzipSync(code, { level: flags['gzip-level'] }).length;

/** Every relative module an entry imports statically, itself included, in load order. */
async function moduleClosure(dir: string, entry: string): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return;
    const code = stripMapComment(await readFile(file, 'utf8'));
    seen.set(file, code);
    // Minified ESM: `import{a as b}from"./chunks/x.js"`, `import"./x.js"`, `export{c}from"./x.js"`.
    for (const m of code.matchAll(/(?:\bfrom|\bimport)\s*"(\.{1,2}\/[^"]+)"/g)) await visit(join(dirname(file), m[1] as string));
  };
  await visit(join(dir, entry));
  return seen;
}

/** Size of the modules together, gzipped one by one (each is its own HTTP response). */
function sizeOf(dir: string, modules: Map<string, string>): Size {
  let minBytes = 0;
  let gz = 0;
  for (const code of modules.values()) {
    minBytes += Buffer.byteLength(code);
    gz += gzipBytes(code);
  }
  return { files: [...modules.keys()].map((f) => relative(dir, f)), minBytes, gzipBytes: gz };
}

const { dir, cleanup } = await benchDir(BENCH);
try {
  const out = await buildBrowser(join(dir, 'browser'));
  const hlsAdapter = sizeOf(out, await moduleClosure(out, 'relaycast-hls.js'));
  const core = sizeOf(out, await moduleClosure(out, 'relaycast.js'));

  // hls.js as the SDK resolves it (the version the browser build and the tests use).
  const sdkRequire = createRequire(createRequire(import.meta.url).resolve('@relaycast/player-sdk/package.json'));
  const hlsDist = dirname(sdkRequire.resolve('hls.js'));
  const hlsVersion = (JSON.parse(await readFile(join(hlsDist, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const hlsMinified = stripMapComment(await minifyEsm(await readFile(join(hlsDist, 'hls.mjs'), 'utf8')));
  const hlsShippedMin = stripMapComment(await readFile(join(hlsDist, 'hls.min.mjs'), 'utf8'));
  const baseline = { minBytes: Buffer.byteLength(hlsMinified), gzipBytes: gzipBytes(hlsMinified) };
  const shipped = { minBytes: Buffer.byteLength(hlsShippedMin), gzipBytes: gzipBytes(hlsShippedMin) };

  const kb = (n: number): string => `${(n / 1000).toFixed(1)} kB`;
  const pct = (n: number): string => `${((n / baseline.gzipBytes) * 100).toFixed(1)}%`;
  report(
    BENCH,
    {
      gzipLevel: flags['gzip-level'],
      sdk: { hlsAdapter, core },
      baseline: {
        hlsjs: { version: hlsVersion, source: 'hls.js dist/hls.mjs minified by esbuild with the SDK build settings', ...baseline },
        hlsjsShippedMin: { version: hlsVersion, source: 'hls.js dist/hls.min.mjs as shipped', ...shipped },
      },
      ratios: {
        hlsAdapterOverHlsjsGzip: Math.round((hlsAdapter.gzipBytes / baseline.gzipBytes) * 1000) / 1000,
        coreOverHlsjsGzip: Math.round((core.gzipBytes / baseline.gzipBytes) * 1000) / 1000,
      },
    },
    `SDK browser build, hls.js excluded: RelaycastHls entry + chunks ${kb(hlsAdapter.gzipBytes)} min+gzip (${kb(hlsAdapter.minBytes)} min, ${hlsAdapter.files.length} files), ` +
      `core entry + chunks ${kb(core.gzipBytes)} min+gzip; baseline hls.js ${hlsVersion} ESM ${kb(baseline.gzipBytes)} min+gzip (its own hls.min.mjs ${kb(shipped.gzipBytes)}): ` +
      `the adapter adds ${pct(hlsAdapter.gzipBytes)} to hls.js`,
  );
} finally {
  await cleanup();
}
