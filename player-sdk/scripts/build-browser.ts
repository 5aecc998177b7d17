// The SDK's one browser build (esbuild), into player-sdk/dist/browser/ by default:
//   relaycast.js       the player-agnostic core                      (package export ./browser)
//   relaycast-hls.js   the hls.js adapter, hls.js left external      (package export ./browser/hls)
//   chunks/*.js        code both entries share
// Both entries are built together with code splitting, so a page that loads both gets one copy of
// every class (an error from one passes `isRelaycastError` of the other). Minified, with source maps.
//
// Options for callers that serve the bundles themselves (the devnet, the browser tests):
//   copyHls  also copy hls.js's own ESM build next to them as hls.mjs, for an import map's "hls.js".
// CLI: tsx scripts/build-browser.ts [--outdir DIR] [--copy-hls]
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, transform } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Where `npm run build` writes the bundles the package exports. */
export const DEFAULT_BROWSER_OUTDIR = join(root, 'dist', 'browser');

/** Output language of the browser build. */
export const BROWSER_TARGET = 'es2022';

export interface BuildBrowserOptions {
  /** Also copy hls.js's ESM build to `<outdir>/hls.mjs` (not part of the package). */
  copyHls?: boolean;
}

/** Builds the browser bundles into `outdir` (emptied first) and returns it. */
export async function buildBrowser(outdir = DEFAULT_BROWSER_OUTDIR, options: BuildBrowserOptions = {}): Promise<string> {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  await build({
    entryPoints: { relaycast: join(root, 'src/index.ts'), 'relaycast-hls': join(root, 'src/hls/index.ts') },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: BROWSER_TARGET,
    minify: true,
    sourcemap: true,
    chunkNames: 'chunks/[name]-[hash]',
    // Bundle the workspace packages from their sources, whether or not tsc has built them.
    conditions: ['relaycast-source'],
    external: ['hls.js'],
    logLevel: 'warning',
  });
  if (options.copyHls === true) {
    const hlsMain = createRequire(import.meta.url).resolve('hls.js');
    await copyFile(join(dirname(hlsMain), 'hls.mjs'), join(outdir, 'hls.mjs'));
  }
  return outdir;
}

/** Minifies one ES module with the browser build's esbuild settings (for size comparisons, e.g. bench/src/sdk-size.ts). */
export async function minifyEsm(source: string): Promise<string> {
  return (await transform(source, { format: 'esm', target: BROWSER_TARGET, minify: true, loader: 'js' })).code;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { outdir: { type: 'string' }, 'copy-hls': { type: 'boolean' } } });
  await buildBrowser(values.outdir === undefined ? DEFAULT_BROWSER_OUTDIR : resolve(values.outdir), { copyHls: values['copy-hls'] === true });
}
