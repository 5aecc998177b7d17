import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './helpers/browser.js';
import { cachedVod, linkVod } from './helpers/media.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startRelayProcess, startTrackerProcess, stopAll, type TrackerProc } from './helpers/processes.js';
import { outsideEnv, packPackages, type PackedPackages } from './helpers/tarballs.js';

/**
 * Issue "Packages a platform and an operator can install", platform side: a fresh project outside
 * the repository installs the player-sdk and protocol tarballs with hls.js, Vite and TypeScript from
 * the registry, the way a video platform would, and (a) builds a small page with Vite that Chromium
 * plays through a relay, (b) type-checks a TypeScript consumer against the installed declarations.
 */

// Versions known to work with Node 20 here.
const REGISTRY_DEPS = ['hls.js@1.7.4', 'vite@8.4.0', 'typescript@5.9.3'];

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` in `cwd` as a platform's machine would (no repository environment); never throws. */
function runOutside(cmd: string, args: string[], cwd: string, timeoutMs = 240_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: outsideEnv(), timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

function expectOk(r: RunResult, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
}

// The platform's page: three lines of HTML and a module that plays ?src= through ?tracker=.
const INDEX_HTML = `<!doctype html>
<video id="video" muted autoplay playsinline></video>
<script type="module" src="./main.js"></script>
`;
// Both pages play the same way; the last three lines only expose what the test reads (stats and fatal
// hls.js errors).
const PLAY_JS = `const q = new URLSearchParams(location.search);
const relaycast = new RelaycastHls({ trackerUrl: q.get('tracker') });
const hls = new Hls(relaycast.hlsConfig());
relaycast.attach(hls);
hls.loadSource(q.get('src'));
hls.attachMedia(document.getElementById('video'));

window.fatalErrors = [];
hls.on(Hls.Events.ERROR, (_event, data) => data.fatal && window.fatalErrors.push(data.type + '/' + data.details));
window.relaycast = relaycast;
`;

const MAIN_JS = `import Hls from 'hls.js';
import { RelaycastHls } from '@relaycast/player-sdk/hls';

${PLAY_JS}`;

// A page without a bundler: the package's ./browser and ./browser/hls builds through an import map
// (the files come from the installed package, found through its exports). Both entries must share
// one copy of every class: an error made by the adapter's entry passes the core's isRelaycastError.
const IMPORT_MAP_HTML = `<!doctype html>
<script type="importmap">
  { "imports": { "hls.js": "./hls.mjs", "@relaycast/player-sdk/browser": "./sdk/relaycast.js", "@relaycast/player-sdk/browser/hls": "./sdk/relaycast-hls.js" } }
</script>
<video id="video" muted autoplay playsinline></video>
<script type="module">
  import Hls from 'hls.js';
  import * as core from '@relaycast/player-sdk/browser';
  import { RelaycastHls, RelaycastError, ErrorCode } from '@relaycast/player-sdk/browser/hls';

${PLAY_JS}
  window.sharedClasses = RelaycastError === core.RelaycastError && core.isRelaycastError(new RelaycastError(ErrorCode.ABORTED, 'x'), core.ErrorCode.ABORTED);
</script>
`;

// A TypeScript consumer: the adapter, the core client, stats, events and error codes.
const CONSUMER_TS = `import Hls from 'hls.js';
import { ErrorCode, RelaycastError, RelaycastHls, isRelaycastError, type FallbackInfo, type RelaycastHlsStats } from '@relaycast/player-sdk/hls';
import { ErrorCode as CoreErrorCode, RelaycastClient, swarmIdFromUrl, type LoadResult, type RelaycastClientStats } from '@relaycast/player-sdk';

// One set of codes, whichever entry they come from.
const aborted: CoreErrorCode = ErrorCode.ABORTED;

export function playWithHls(video: HTMLVideoElement, src: string): RelaycastHls {
  const relaycast = new RelaycastHls({ trackerUrl: 'wss://tracker.example.com/', maxRelays: 2, integrity: { noDigestPolicy: 'refuse' } });
  const hls = new Hls({ ...relaycast.hlsConfig() });
  relaycast.attach(hls);
  relaycast.on('relay-connected', (relayId: string) => console.log('relay', relayId));
  relaycast.on('fallback', (info: FallbackInfo) => console.log(info.url, info.reason, info.bytesFromRelay));
  relaycast.on('integrity-failure', (err: RelaycastError) => console.log(err.code === ErrorCode.SEGMENT_INTEGRITY, err.details));
  relaycast.on('error', (err) => {
    if (isRelaycastError(err, ErrorCode.GRANT_REFUSED)) console.log('no grant', err.message);
  });
  hls.loadSource(src);
  hls.attachMedia(video);
  return relaycast;
}

export function summary(s: RelaycastHlsStats): string {
  const rebuffer: number = s.playback.rebufferMs;
  const startup: number | undefined = s.playback.startupMs;
  return [s.relayShare.toFixed(3), s.bytesFromRelays, s.bytesFromOrigin, s.integrity.failures, s.relays.join(','), rebuffer, startup].join(' ');
}

export async function loadOne(masterUrl: string, url: string, playlistUrl: string, signal: AbortSignal): Promise<number> {
  const client = new RelaycastClient({ trackerUrl: 'wss://tracker.example.com/', swarmId: swarmIdFromUrl(masterUrl) });
  client.on('relay-disconnected', (relayId: string, reason: RelaycastError) => console.log(relayId, reason.code));
  client.on('segment-loaded', ({ url: loaded, result }: { url: string; result: LoadResult }) => console.log(loaded, result.bytesFromRelay));
  void client.start(signal);
  try {
    const result = await client.loadSegment({ url, playlistUrl, range: { start: 0, end: 1024 } }, { signal });
    const stats: RelaycastClientStats = client.getStats();
    const perRelay = Object.values(stats.perRelay).reduce((n, r) => n + r.bytesVerified, 0);
    return result.data.byteLength + stats.fallbacks.byReason['ttfb-timeout'] + perRelay;
  } catch (err: unknown) {
    if (isRelaycastError(err, aborted)) return 0;
    if (isRelaycastError(err)) throw new Error(err.code);
    throw err;
  } finally {
    await client.close();
  }
}
`;

// Deliberately wrong: a string where the options take a number of relays.
const WRONG_TS = `import { RelaycastHls } from '@relaycast/player-sdk/hls';

export const relaycast = new RelaycastHls({ maxRelays: 'two' });
`;

function tsconfig(moduleKind: 'bundler' | 'nodenext', files: string[]): string {
  const module = moduleKind === 'bundler' ? { module: 'esnext', moduleResolution: 'bundler' } : { module: 'nodenext', moduleResolution: 'nodenext' };
  const compilerOptions = { strict: true, skipLibCheck: false, noEmit: true, target: 'es2022', lib: ['es2022', 'dom'], types: [], ...module };
  return JSON.stringify({ compilerOptions, files }, null, 2);
}

describe('platform install from tarballs', () => {
  let packed: PackedPackages;
  let project: string;
  let installMs: number;

  beforeAll(async () => {
    packed = await packPackages(['@relaycast/protocol', '@relaycast/player-sdk']);
    project = await mkdtemp(join(tmpdir(), 'relaycast-platform-'));
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'platform-app', private: true, type: 'module' }, null, 2));
    const t0 = performance.now();
    const install = await runOutside(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        packed.tarballs.get('@relaycast/protocol') as string,
        packed.tarballs.get('@relaycast/player-sdk') as string,
        ...REGISTRY_DEPS,
      ],
      project,
    );
    installMs = performance.now() - t0;
    expectOk(install, 'npm install');
    console.log(`platform install: ${(installMs / 1000).toFixed(1)} s`);
  }, 300_000);

  afterAll(async () => {
    if (project !== undefined) await rm(project, { recursive: true, force: true });
    await packed?.remove();
  });

  it('installs compiled JavaScript with declarations and the browser build, without the TypeScript sources', async () => {
    const sdk = join(project, 'node_modules', '@relaycast', 'player-sdk');
    const manifest = JSON.parse(await readFile(join(sdk, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>> };
    for (const entry of ['.', './hls', './browser', './browser/hls']) {
      for (const file of [manifest.exports[entry]?.['types'], manifest.exports[entry]?.['default']]) {
        expect(file, entry).toBeDefined();
        await expect(readFile(join(sdk, file as string))).resolves.toBeInstanceOf(Buffer);
      }
    }
    await expect(readFile(join(sdk, 'src', 'index.ts'))).rejects.toThrow(/ENOENT/);
  });

  describe('pages play through a relay in Chromium', () => {
    let dir: string;
    let origin: OriginServer;
    let tracker: TrackerProc;
    let browser: Browser;

    beforeAll(async () => {
      await writeFile(join(project, 'index.html'), INDEX_HTML);
      await writeFile(join(project, 'main.js'), MAIN_JS);
      // Relative base: the built page works from any directory of the origin.
      const build = await runOutside(join(project, 'node_modules', '.bin', 'vite'), ['build', '--base', './', '--logLevel', 'warn'], project);
      expectOk(build, 'vite build');

      dir = await mkdtemp(join(tmpdir(), 'relaycast-platform-site-'));
      await cp(join(project, 'dist'), join(dir, 'vite'), { recursive: true });
      // The import-map page: the installed browser build as the package exports it, and hls.js's ESM build.
      const projectRequire = createRequire(join(project, 'package.json'));
      await cp(dirname(projectRequire.resolve('@relaycast/player-sdk/browser/hls')), join(dir, 'import-map', 'sdk'), { recursive: true });
      await cp(join(dirname(projectRequire.resolve('hls.js')), 'hls.mjs'), join(dir, 'import-map', 'hls.mjs'));
      await writeFile(join(dir, 'import-map', 'index.html'), IMPORT_MAP_HTML);

      await linkVod(await cachedVod({ format: 'ts' }), join(dir, 'media', 'vod'));
      await mkdir(join(dir, 'keys'), { recursive: true });
      origin = await startOrigin(dir);
      tracker = await startTrackerProcess();
      await startRelayProcess(tracker, { keypair: join(dir, 'keys', 'relay.json'), allowOrigin: [`${origin.url}media/`] });
      browser = await launchChromium();
    });

    afterAll(async () => {
      await browser?.close();
      await stopAll();
      await origin?.close();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    async function play(pagePath: string): Promise<{ share: number; fatalErrors: string[]; sharedClasses: unknown }> {
      const page = await browser.newPage();
      try {
        const q = new URLSearchParams({ src: `${origin.url}media/vod/master.m3u8`, tracker: tracker.url });
        await page.goto(`${origin.url}${pagePath}?${q}`);
        await page.waitForFunction(() => (document.getElementById('video') as HTMLVideoElement).currentTime > 4, undefined, { timeout: 60_000, polling: 250 });
        const s = await page.evaluate(() => {
          const w = window as unknown as {
            relaycast: { getStats(): { bytesFromRelays: number; bytesFromOrigin: number } };
            fatalErrors: string[];
            sharedClasses?: boolean;
          };
          const { bytesFromRelays, bytesFromOrigin } = w.relaycast.getStats();
          return { bytesFromRelays, bytesFromOrigin, fatalErrors: [...w.fatalErrors], sharedClasses: w.sharedClasses };
        });
        const share = s.bytesFromRelays / (s.bytesFromRelays + s.bytesFromOrigin);
        console.log(`${pagePath}: relay share ${share.toFixed(3)} (${s.bytesFromRelays} relay bytes, ${s.bytesFromOrigin} origin bytes)`);
        return { share, fatalErrors: s.fatalErrors, sharedClasses: s.sharedClasses };
      } finally {
        await page.close();
      }
    }

    it('the Vite-built page: relay share > 0, no fatal hls.js error', async () => {
      const r = await play('vite/index.html');
      expect(r.fatalErrors).toEqual([]);
      expect(r.share).toBeGreaterThan(0);
    });

    it('the import-map page on the ./browser builds: relay share > 0, no fatal hls.js error, one RelaycastError class', async () => {
      const r = await play('import-map/index.html');
      expect(r.fatalErrors).toEqual([]);
      expect(r.share).toBeGreaterThan(0);
      expect(r.sharedClasses).toBe(true);
    });
  });

  describe('a TypeScript consumer type-checks against the installed declarations', () => {
    const tsc = (config: string): Promise<RunResult> =>
      runOutside('node', [join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config, '--listFiles'], project);

    beforeAll(async () => {
      await writeFile(join(project, 'consumer.ts'), CONSUMER_TS);
      await writeFile(join(project, 'wrong.ts'), WRONG_TS);
      await writeFile(join(project, 'tsconfig.json'), tsconfig('bundler', ['consumer.ts']));
      await writeFile(join(project, 'tsconfig.nodenext.json'), tsconfig('nodenext', ['consumer.ts']));
      await writeFile(join(project, 'tsconfig.wrong.json'), tsconfig('bundler', ['wrong.ts']));
    });

    for (const config of ['tsconfig.json', 'tsconfig.nodenext.json']) {
      it(`passes tsc --noEmit (strict, skipLibCheck false) with ${config}`, async () => {
        const r = await tsc(config);
        expect(r.stdout + r.stderr).not.toMatch(/error TS\d+/);
        expect(r.code).toBe(0);
        // The declarations checked are the installed ones (dist/*.d.ts of both tarballs).
        const files = r.stdout.split('\n');
        expect(files).toContain(join(project, 'node_modules/@relaycast/player-sdk/dist/hls/index.d.ts'));
        expect(files).toContain(join(project, 'node_modules/@relaycast/player-sdk/dist/index.d.ts'));
        expect(files.some((f) => f.startsWith(join(project, 'node_modules/@relaycast/protocol/dist/')))).toBe(true);
      });
    }

    it('fails on a type error in consumer code (TS2322)', async () => {
      const r = await tsc('tsconfig.wrong.json');
      expect(r.code).not.toBe(0);
      expect(r.stdout).toMatch(/wrong\.ts\(3,\d+\): error TS2322/);
    });
  });
});
