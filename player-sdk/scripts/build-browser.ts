// Builds the browser ESM bundles into player-sdk/dist/:
//   relaycast.js       the player-agnostic core
//   relaycast-hls.js   the hls.js adapter (hls.js stays external: the page brings its own copy)
//   hls.mjs            a copy of hls.js's ESM build, for the examples
import { copyFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

export async function buildBrowser(outdir = join(root, 'dist')): Promise<string> {
  await mkdir(outdir, { recursive: true });
  const common: BuildOptions = {
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'warning',
    external: ['hls.js'],
  };
  await build({ ...common, entryPoints: [join(root, 'src/index.ts')], outfile: join(outdir, 'relaycast.js') });
  await build({ ...common, entryPoints: [join(root, 'src/hls/index.ts')], outfile: join(outdir, 'relaycast-hls.js') });
  const hlsMain = createRequire(import.meta.url).resolve('hls.js');
  await copyFile(join(dirname(hlsMain), 'hls.mjs'), join(outdir, 'hls.mjs'));
  return outdir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildBrowser();
}
