import { execFile } from 'node:child_process';
import { access, mkdtemp, readdir, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { promisify } from 'node:util';
import { swarmIdFromUrl } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaPlaylist, variantUrls } from './helpers/hls.js';
import { cachedVod, linkVod } from './helpers/media.js';
import { nodeClient } from './helpers/node-client.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startRelayProcess, startTrackerProcess } from './helpers/processes.js';
import { outsideEnv, packPackages, type PackedPackages, type PublishedPackage } from './helpers/tarballs.js';
import { useProcesses } from './helpers/use-processes.js';

const run = promisify(execFile);

/** Every package an operator's machine needs, packed as `npm publish` would and installed together. */
const PACKAGES: readonly PublishedPackage[] = [
  '@relaycast/protocol',
  '@relaycast/cli-kit',
  '@relaycast/origin-tools',
  '@relaycast/relay',
  '@relaycast/tracker',
  '@relaycast/contracts-client',
];

/** Bin name → the package that ships it and the compiled file its `#<bin>` import must resolve to under plain node. */
const BINS = {
  'relaycast-relay': ['@relaycast/relay', 'dist/cli/relay-cli.js'],
  'relaycast-tracker': ['@relaycast/tracker', 'dist/cli.js'],
  'relaycast-digest': ['@relaycast/origin-tools', 'dist/digest-cli.js'],
  'relaycast-settler': ['@relaycast/contracts-client', 'dist/settler-cli.js'],
  'relaycast-chain': ['@relaycast/contracts-client', 'dist/chain-cli.js'],
  'relaycast-solana': ['@relaycast/contracts-client', 'dist/setup-cli.js'],
} as const;

/** Every directory under `root` (symlinks not followed), as paths relative to it. */
async function directories(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => join(e.parentPath, e.name).slice(root.length + 1));
}

/**
 * Issue 16, must-show 3: the operator's side, from tarballs. The relay, tracker and contracts-client
 * tarballs (with the @relaycast packages they depend on) are installed with `npm install -g --prefix`
 * into a temp dir outside the repository, with the environment of a machine that has never seen it
 * (no NODE_OPTIONS source condition, no npm_* variables). The installed bins then run under plain
 * node: the tracker listens, a relay registers with it and serves a viewer one segment of a real
 * ffmpeg HLS VOD byte for byte, and the settler prints its usage.
 */
describe('operator install: npm install -g of the relay, tracker and contracts-client tarballs', () => {
  useProcesses();
  let packed: PackedPackages | undefined;
  let prefix: string;
  let work: string;
  let modules: string;
  const binPath = (name: keyof typeof BINS): string => join(prefix, 'bin', name);

  beforeAll(async () => {
    prefix = await realpath(await mkdtemp(join(tmpdir(), 'relaycast-operator-')));
    work = await mkdtemp(join(tmpdir(), 'relaycast-operator-work-'));
    modules = join(prefix, 'lib', 'node_modules');
    packed = await packPackages(PACKAGES);
    const tarballs = PACKAGES.map((p) => packed!.tarballs.get(p)!);
    // better-sqlite3 (the relay's receipts and the settler's ledger) builds from source when no
    // prebuilt binary can be fetched; node-datachannel's binary comes in a platform package. Most
    // of this hook's time: a global install gives the relay and contracts-client a copy each, and
    // npm runs install scripts one at a time on a 2-core machine (about a minute per build here).
    await run('npm', ['install', '-g', '--prefix', prefix, '--allow-scripts=better-sqlite3', '--no-audit', '--no-fund', ...tarballs], {
      cwd: work,
      env: outsideEnv(),
      maxBuffer: 64 << 20,
    });
  }, 900_000);

  afterAll(async () => {
    await packed?.remove();
    for (const dir of [prefix, work]) if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('installs no tsx and no TypeScript source: every bin resolves #<bin> to compiled dist JavaScript', async () => {
    const dirs = await directories(modules);
    expect(dirs.length).toBeGreaterThan(100);
    expect(dirs.filter((d) => d === 'tsx' || d.endsWith(`${sep}tsx`))).toEqual([]);
    for (const pkg of PACKAGES) {
      const root = join(modules, ...pkg.split('/'));
      const files = (await readdir(root, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
        .filter((f) => !f.startsWith(`node_modules${sep}`));
      expect(files, pkg).toContain('package.json');
      expect(
        files.filter((f) => /\.(c|m)?tsx?$/.test(f) && !/\.d\.(c|m)?ts$/.test(f)),
        `${pkg} ships TypeScript sources`,
      ).toEqual([]);
      const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      expect(Object.keys(manifest.dependencies ?? {}), pkg).not.toContain('tsx');
    }
    for (const [name, [pkg, compiled]] of Object.entries(BINS)) {
      const root = join(modules, ...pkg.split('/'));
      // The bin link points into the installed package; its `#<bin>` resolves, under plain node, to the compiled file.
      expect(await realpath(binPath(name as keyof typeof BINS)), name).toBe(join(root, 'bin', `${name}.js`));
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', `process.stdout.write(import.meta.resolve('#${name}'))`], {
        cwd: root,
        env: outsideEnv(),
      });
      expect(stdout, name).toBe(`file://${join(root, compiled)}`);
      await access(join(root, compiled));
    }
  });

  it("better-sqlite3, built by its approved install script, loads under plain node in the relay's and the settler's trees", async () => {
    for (const pkg of ['@relaycast/relay', '@relaycast/contracts-client']) {
      const script = "import Database from 'better-sqlite3'; process.stdout.write(new Database(':memory:').prepare('select sqlite_version() as v').get().v)";
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: join(modules, ...pkg.split('/')), env: outsideEnv() });
      expect(stdout, pkg).toMatch(/^3\.\d+\.\d+$/);
    }
  });

  it('relaycast-settler --help exits 0 with its usage on stdout', async () => {
    const { stdout } = await run(process.execPath, [binPath('relaycast-settler'), '--help'], { cwd: work, env: outsideEnv() });
    expect(stdout).toMatch(/^Usage: relaycast-settler /);
    expect(stdout).toContain('--treasury-keypair');
  });

  it('the installed tracker listens, the installed relay registers with it and serves a viewer one segment byte-identical to the origin', async () => {
    const media = join(work, 'www');
    await linkVod(await cachedVod({ format: 'ts' }), join(media, 'vod'));
    let origin: OriginServer | undefined;
    try {
      origin = await startOrigin(media);
      const tracker = await startTrackerProcess([], { bin: binPath('relaycast-tracker'), env: outsideEnv() });
      const relay = await startRelayProcess(tracker, {
        bin: binPath('relaycast-relay'),
        env: outsideEnv(),
        keypair: join(work, 'relay.json'),
        allowOrigin: [origin.url],
      });
      // startRelayProcess returns once the tracker's /status lists the relay.
      expect(await tracker.relayIds()).toEqual([relay.relayId]);

      const masterUrl = `${origin.url}vod/master.m3u8`;
      const variant = variantUrls(await (await fetch(masterUrl)).text(), masterUrl)[0]!;
      const url = mediaPlaylist(await (await fetch(variant)).text(), variant).segments[0]!;
      const path = new URL(url).pathname;
      const file = await readFile(join(media, path));
      const viewer = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(masterUrl) });
      await viewer.start();
      try {
        expect(viewer.relays).toHaveLength(1);
        const result = await viewer.loadSegment({ url, playlistUrl: variant });
        expect(Buffer.compare(Buffer.from(result.data), file)).toBe(0);
        // Every byte came through the relay, which fetched the segment from the origin once.
        expect(result.bytesFromRelay).toBe(file.length);
        expect(viewer.getStats().perRelay[relay.relayId]?.bytes).toBe(file.length);
        expect(origin.count(path, relay.relayId)).toBe(1);
        expect(origin.count(path)).toBe(0);
      } finally {
        await viewer.close();
      }

      // Both stop on SIGTERM, gracefully (exit 0).
      await relay.stop();
      expect(relay.child.exitCode).toBe(0);
      await tracker.stop();
      expect(tracker.child.exitCode).toBe(0);
    } finally {
      await origin?.close();
    }
  });
});
