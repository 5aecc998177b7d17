/**
 * startup: time to first frame in a real browser, plain hls.js against hls.js + Relaycast (issue
 * 17, must-show 1). The network runs as real processes: an origin (HTTP, no-store) serving an
 * ffmpeg-made VOD and a real-time live stream, a tracker process and relay processes. Headless
 * Chromium (Debian's, never a downloaded one) opens bench/src/startup-page.html from the same
 * origin, with `?mode=plain` or `?mode=relaycast`: the same page, the SDK imported only in
 * relaycast mode. Every run gets a fresh browser context; runs alternate plain, relaycast, plain...
 * Measured in the page with performance.now(): loadSource → first `playing` event. Reported per
 * stream type: median and p95 of both modes and their ratio (relaycast / plain), then one longer
 * view with Relaycast: relay share over the view and after its first 10 s. The SDK's own startup
 * and setup figures (getStats().startup / .setup / perRelay[].setupMs) are read when present.
 *
 * The SDK is bundled from the working tree's sources at start (the browser tests' preparePlayerSite):
 * the JSON names the commit and whether player-sdk/ had uncommitted changes.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { launchChromium, preparePlayerSite } from '../../test/helpers/browser.js';
import { waitForLivePlaylist } from '../../test/helpers/hls.js';
import { cachedVod, linkVod, startLiveStream } from '../../test/helpers/media.js';
import { startOrigin } from '../../test/helpers/origin-server.js';
import { startRelayProcesses, startTrackerProcess, stopAll } from '../../test/helpers/processes.js';
import { parseFlags } from './lib/cli-flags.js';
import { exitBench, progress, report } from './lib/report.js';
import { median, quantile, round } from './lib/stats.js';
import { benchDir } from './lib/tmp.js';

const BENCH = 'startup';
/** Goals from issue 17 (reported, not asserted). */
const GOAL = { ratioMedianAtMost: 1.05, ratioP95AtMost: 1.2, relayShareAtLeast: 0.95 };
/** The view's relay share is also reported from this point on (ms after loadSource). */
const AFTER_MS = 10_000;
/** Media segment paths (not playlists, sidecars or the init segment). */
const SEGMENT_PATH = /\/(seg|live)\d+\.(ts|m4s)$/;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const flags = parseFlags(BENCH, {
  runs: { default: 10, help: 'measured runs per mode (plain, relaycast) and stream type, interleaved' },
  warmup: { default: 1, help: 'unmeasured plain+relaycast pairs per stream type before the measured runs' },
  'view-seconds': { default: 60, help: 'length of the one longer Relaycast view per stream type (0 = skip)' },
  'hold-ms': { default: 500, help: 'a relaycast page stays open this long after `playing` before its setup stats are read' },
  'timeout-ms': { default: 20_000, help: 'a run that has not reached `playing` by then counts as failed' },
  'vod-seconds': {
    default: 0,
    help: 'VOD length (0 = view-seconds + 30); hls.js buffers a VOD of under ~10 min whole, so this sets what the VOD view share is over',
  },
  streams: { default: 'vod,live', help: 'stream types to measure: vod, live or both (comma-separated)' },
  relays: { default: 2, help: 'relay processes' },
});

type Mode = 'plain' | 'relaycast';
type StreamType = 'vod' | 'live';

/** What the page keeps in window.startupBench (see startup-page.html). */
interface PageResult {
  mode: Mode;
  loadSourceAt: number | undefined;
  playingAt: number | undefined;
  firstFrameAt: number | undefined;
  firstFragLoadedAt: number | undefined;
  firstRelayConnectedAt: number | undefined;
  fatalErrors: string[];
  statsAtPlaying: Record<string, unknown> | undefined;
  samples: { t: number; bytesFromRelays: number; bytesFromOrigin: number; currentTime: number }[];
  requests: { path: string; start: number; end: number }[];
}

interface RunResult {
  mode: Mode;
  /** loadSource → first `playing` (ms); NaN when the run failed. */
  ttffMs: number;
  /** Navigation start → first `playing` (ms): also counts loading hls.js (and the SDK). */
  fromNavigationMs: number;
  /** Navigation start → loadSource (ms). */
  loadSourceAtMs: number;
  /** loadSource → first frame presented (requestVideoFrameCallback); NaN when not reported. */
  firstFrameMs: number;
  /** loadSource → first media fragment loaded (hls.js FRAG_LOADED). */
  firstFragmentMs: number;
  /** loadSource → first relay data channel open (relaycast runs; NaN when none opened by the end of the run). */
  firstRelayMs: number;
  failed: string | undefined;
  /** loadSource → start of the first media segment request to the origin (Resource Timing); NaN when none before `playing`. */
  firstOriginSegmentRequestMs: number;
  /** The page's HTTP requests from loadSource to `playing` (path, start and end in ms from loadSource). */
  requests: PageResult['requests'];
  /** Relaycast runs only: SDK figures at `playing` and after --hold-ms. */
  sdk?: SdkFigures;
}

/** Whatever startup-related figures the SDK's getStats() has (fields are read defensively). */
interface SdkFigures {
  atPlaying: { bytesFromRelays: number; bytesFromOrigin: number; fallbacks: Record<string, number>; startup: unknown; firstSegmentFrom: string };
  afterHold: { relays: number; startup: unknown; setup: unknown; setupMs: number[]; setupFailures: number };
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const pct = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? `${round(v * 100, 1)}%` : 'n/a');
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});

function sdkFigures(atPlaying: Record<string, unknown> | undefined, afterHold: Record<string, unknown> | undefined): SdkFigures {
  const p = obj(atPlaying);
  const h = obj(afterHold);
  const byReason = obj(obj(p['fallbacks'])['byReason']);
  const fallbacks: Record<string, number> = {};
  for (const [k, v] of Object.entries(byReason)) if (num(v) > 0) fallbacks[k] = num(v);
  const perRelay = Object.values(obj(h['perRelay'])).map(obj);
  const relayBytes = num(p['bytesFromRelays']);
  const originBytes = num(p['bytesFromOrigin']);
  return {
    atPlaying: {
      bytesFromRelays: relayBytes,
      bytesFromOrigin: originBytes,
      fallbacks,
      startup: p['startup'],
      firstSegmentFrom: relayBytes > 0 && originBytes > 0 ? 'both' : relayBytes > 0 ? 'relays' : originBytes > 0 ? 'origin' : 'none',
    },
    afterHold: {
      relays: Array.isArray(h['relays']) ? h['relays'].length : 0,
      startup: h['startup'],
      setup: h['setup'],
      setupMs: perRelay.flatMap((r) => (typeof r['setupMs'] === 'number' ? [r['setupMs']] : [])),
      setupFailures: perRelay.reduce((s, r) => s + num(r['setupFailures']), 0),
    },
  };
}

/** Sums the numeric fields of `setup` snapshots, one level deep (e.g. failedByCause); undefined when none had it. */
function sumSetup(setups: unknown[]): Record<string, unknown> | undefined {
  const present = setups.filter((x) => typeof x === 'object' && x !== null).map(obj);
  if (present.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const s of present) {
    for (const [k, v] of Object.entries(s)) {
      if (typeof v === 'number') out[k] = num(out[k]) + v;
      else if (typeof v === 'object' && v !== null) {
        const inner = obj(out[k]);
        for (const [ik, iv] of Object.entries(obj(v))) inner[ik] = num(inner[ik]) + num(iv);
        out[k] = inner;
      }
    }
  }
  return out;
}

async function git(args: string[]): Promise<string> {
  try {
    return (await promisify(execFile)('git', args, { cwd: REPO_ROOT })).stdout.trim();
  } catch {
    return 'unknown';
  }
}

function load(): number[] {
  return loadavg().map((l) => round(l, 2));
}

const { dir, cleanup } = await benchDir(BENCH);
const streams = flags.streams.split(',').map((s) => s.trim()) as StreamType[];
if (streams.length === 0 || streams.some((s) => s !== 'vod' && s !== 'live'))
  throw new RelaycastError(ErrorCode.CONFIG_INVALID, '--streams takes vod, live or vod,live');
const stoppers: (() => Promise<void>)[] = [];
let browser: Browser | undefined;
try {
  const commit = {
    head: await git(['rev-parse', '--short', 'HEAD']),
    sdkUncommitted: (await git(['status', '--porcelain', '--untracked-files=no', '--', 'player-sdk'])) !== '',
  };
  const loadAtStart = load();
  const site = join(dir, 'site');
  // The page sits at player/bench/, beside player/dist/browser/ (the SDK's browser build and hls.mjs).
  await preparePlayerSite(site);
  await mkdir(join(site, 'player', 'bench'), { recursive: true });
  await copyFile(fileURLToPath(new URL('./startup-page.html', import.meta.url)), join(site, 'player', 'bench', 'startup.html'));
  // Long enough for the view, cached between runs (test/helpers/media.ts).
  const vodSec = flags['vod-seconds'] > 0 ? flags['vod-seconds'] : Math.max(30, flags['view-seconds'] + 30);
  if (streams.includes('vod')) await linkVod(await cachedVod({ format: 'ts', durationSec: vodSec }), join(site, 'media', 'vod'));
  const origin = await startOrigin(site);
  stoppers.push(() => origin.close());
  const src: Record<StreamType, string> = { vod: `${origin.url}media/vod/master.m3u8`, live: `${origin.url}media/live/master.m3u8` };
  if (streams.includes('live')) {
    // Real time; `-t` ends it if this process dies. Budget: every run at its time-out, plus the view.
    const liveSec = Math.ceil(((flags.runs + flags.warmup) * 2 * flags['timeout-ms']) / 1000 + flags['view-seconds'] + 600);
    const live = await startLiveStream(join(site, 'media', 'live'), { durationSec: liveSec });
    stoppers.push(() => live.stop());
    await waitForLivePlaylist(`${origin.url}media/live/${live.media}`, 60_000);
  }
  const tracker = await startTrackerProcess();
  stoppers.push(() => stopAll());
  const names = Array.from({ length: flags.relays }, (_, i) => `relay${i}`);
  await startRelayProcesses(tracker, join(dir, 'keys'), names, { allowOrigin: [`${origin.url}media/`] });
  browser = await launchChromium();
  progress(
    BENCH,
    `network up (origin, tracker, ${flags.relays} relay processes), Chromium ${browser.version()}; commit ${commit.head}${commit.sdkUncommitted ? ' + uncommitted player-sdk changes' : ''}`,
  );

  const pageUrl = (mode: Mode, stream: StreamType): string =>
    `${origin.url}player/bench/startup.html?${new URLSearchParams({ mode, src: src[stream], ...(mode === 'relaycast' ? { tracker: tracker.url } : {}) })}`;

  /** One page load in a fresh context, until the first `playing` (and --hold-ms more for relaycast). */
  async function runOnce(b: Browser, mode: Mode, stream: StreamType): Promise<RunResult> {
    const context = await b.newContext();
    try {
      const page = await context.newPage();
      await page.goto(pageUrl(mode, stream));
      try {
        await page.waitForFunction(
          () => {
            const r = (window as unknown as { startupBench?: PageResult }).startupBench;
            return r !== undefined && (r.playingAt !== undefined || r.fatalErrors.length > 0);
          },
          undefined,
          { timeout: flags['timeout-ms'], polling: 20 },
        );
      } catch {
        // reported below as a failed run
      }
      const r = await page.evaluate(() => (window as unknown as { startupBench: PageResult }).startupBench);
      const t0 = r.loadSourceAt ?? Number.NaN;
      const failed =
        r.playingAt === undefined ? (r.fatalErrors.length > 0 ? r.fatalErrors.join(', ') : `no playing within ${flags['timeout-ms']} ms`) : undefined;
      const out: RunResult = {
        mode,
        ttffMs: round((r.playingAt ?? Number.NaN) - t0, 1),
        fromNavigationMs: round(r.playingAt ?? Number.NaN, 1),
        loadSourceAtMs: round(t0, 1),
        firstFrameMs: round((r.firstFrameAt ?? Number.NaN) - t0, 1),
        firstFragmentMs: round((r.firstFragLoadedAt ?? Number.NaN) - t0, 1),
        firstRelayMs: Number.NaN,
        failed,
        firstOriginSegmentRequestMs: r.requests.find((q) => SEGMENT_PATH.test(q.path))?.start ?? Number.NaN,
        requests: r.requests,
      };
      if (mode === 'relaycast') {
        if (flags['hold-ms'] > 0) await page.waitForTimeout(flags['hold-ms']);
        const after = await page.evaluate(() => (window as unknown as { startupBenchStats: () => Record<string, unknown> }).startupBenchStats());
        const relayAt = await page.evaluate(() => (window as unknown as { startupBench: PageResult }).startupBench.firstRelayConnectedAt);
        out.firstRelayMs = round((relayAt ?? Number.NaN) - t0, 1);
        out.sdk = sdkFigures(r.statsAtPlaying ?? undefined, after);
      }
      return out;
    } finally {
      await context.close();
    }
  }

  /** One longer Relaycast view: relay share over all of it and after its first AFTER_MS. */
  async function view(b: Browser, stream: StreamType): Promise<Record<string, unknown>> {
    const context = await b.newContext();
    try {
      const page = await context.newPage();
      await page.goto(pageUrl('relaycast', stream));
      const viewMs = flags['view-seconds'] * 1000;
      await page.waitForFunction(
        (ms) => {
          const r = (window as unknown as { startupBench?: PageResult }).startupBench;
          return r?.loadSourceAt !== undefined && performance.now() - r.loadSourceAt >= ms;
        },
        viewMs,
        { timeout: viewMs + 30_000, polling: 500 },
      );
      const r = await page.evaluate(() => (window as unknown as { startupBench: PageResult }).startupBench);
      const s = await page.evaluate(() => (window as unknown as { startupBenchStats: () => Record<string, unknown> }).startupBenchStats());
      const relay = num(s['bytesFromRelays']);
      const originBytes = num(s['bytesFromOrigin']);
      const at10 = r.samples.find((x) => x.t >= AFTER_MS);
      const relayLate = relay - (at10?.bytesFromRelays ?? 0);
      const originLate = originBytes - (at10?.bytesFromOrigin ?? 0);
      // Share per 10 s window of the view, to see where the origin bytes went.
      const windows: number[] = [];
      let prev = { bytesFromRelays: 0, bytesFromOrigin: 0 };
      for (let end = 10_000; end <= viewMs; end += 10_000) {
        const x = r.samples.find((y) => y.t >= end) ?? { bytesFromRelays: relay, bytesFromOrigin: originBytes };
        const dr = x.bytesFromRelays - prev.bytesFromRelays;
        const dOrig = x.bytesFromOrigin - prev.bytesFromOrigin;
        windows.push(dr + dOrig === 0 ? Number.NaN : round(dr / (dr + dOrig), 4));
        prev = x;
      }
      const fallbacks = obj(obj(s['fallbacks'])['byReason']);
      const playback = obj(s['playback']);
      return {
        seconds: flags['view-seconds'],
        ttffMs: round((r.playingAt ?? Number.NaN) - (r.loadSourceAt ?? Number.NaN), 1),
        relayShare: relay + originBytes === 0 ? 0 : round(relay / (relay + originBytes), 4),
        // null when nothing loaded after 10 s (a short VOD view can have its whole buffer by then).
        relayShareAfter10s: relayLate + originLate <= 0 ? null : round(relayLate / (relayLate + originLate), 4),
        bytesAfter10s: relayLate + originLate,
        // hls.js's default buffer goal (maxBufferSize 60 MB) takes a short VOD whole within seconds.
        ...(relayLate + originLate <= 0 ? { note: 'nothing loaded after the first 10 s: the player had buffered the whole stream by then' } : {}),
        relayShareBy10sWindow: windows,
        bytesFromRelays: relay,
        bytesFromOrigin: originBytes,
        fallbacks: Object.fromEntries(Object.entries(fallbacks).filter(([, v]) => num(v) > 0)),
        digestsUnavailable: Object.fromEntries(Object.entries(obj(s['digestsUnavailable'])).filter(([, v]) => num(v) > 0)),
        rebufferCount: num(playback['rebufferCount']),
        rebufferMs: num(playback['rebufferMs']),
        fatalErrors: r.fatalErrors,
        startup: s['startup'],
        setup: s['setup'],
      };
    } finally {
      await context.close();
    }
  }

  const perStream: Record<string, Record<string, unknown>> = {};
  const summaries: string[] = [];
  for (const stream of streams) {
    const runs: RunResult[] = [];
    for (let i = -flags.warmup; i < flags.runs; i++) {
      for (const mode of ['plain', 'relaycast'] as const) {
        const r = await runOnce(browser, mode, stream);
        if (i >= 0) runs.push(r);
        progress(
          BENCH,
          `${stream} ${i < 0 ? 'warm-up' : `run ${i + 1}/${flags.runs}`} ${mode}: ${r.failed ?? `${r.ttffMs} ms`}` +
            (r.sdk === undefined
              ? ''
              : ` (first segment from ${r.sdk.atPlaying.firstSegmentFrom}, ${r.sdk.afterHold.relays} relays after ${flags['hold-ms']} ms)`),
        );
      }
    }
    const figures = (mode: Mode): Record<string, number> => {
      const ok = runs.filter((r) => r.mode === mode && r.failed === undefined);
      const t = ok.map((r) => r.ttffMs);
      const nav = ok.map((r) => r.fromNavigationMs);
      const ff = ok.map((r) => r.firstFrameMs).filter((n) => !Number.isNaN(n));
      const frag = ok.map((r) => r.firstFragmentMs).filter((n) => !Number.isNaN(n));
      return {
        runs: ok.length,
        failed: runs.filter((r) => r.mode === mode).length - ok.length,
        medianMs: round(median(t), 1),
        p95Ms: round(quantile(t, 0.95), 1),
        minMs: round(Math.min(...t), 1),
        maxMs: round(Math.max(...t), 1),
        fromNavigationMedianMs: round(median(nav), 1),
        // Navigation start → loadSource: loading hls.js (and the SDK) and building the player.
        loadSourceAtMedianMs: round(median(ok.map((r) => r.loadSourceAtMs)), 1),
        firstFrameMedianMs: round(median(ff), 1),
        firstFragmentMedianMs: round(median(frag), 1),
        firstOriginSegmentRequestMedianMs: round(median(ok.map((r) => r.firstOriginSegmentRequestMs).filter((n) => !Number.isNaN(n))), 1),
      };
    };
    const plain = figures('plain');
    const relaycast = figures('relaycast');
    const ratio = {
      median: round((relaycast['medianMs'] ?? Number.NaN) / (plain['medianMs'] ?? Number.NaN)),
      p95: round((relaycast['p95Ms'] ?? Number.NaN) / (plain['p95Ms'] ?? Number.NaN)),
      fromNavigationMedian: round((relaycast['fromNavigationMedianMs'] ?? Number.NaN) / (plain['fromNavigationMedianMs'] ?? Number.NaN)),
    };
    // Each relaycast run minus the plain run just before it: less moved by load that drifts over the run.
    const deltas: number[] = [];
    for (let i = 0; i + 1 < runs.length; i += 2) {
      const [p, r] = [runs[i], runs[i + 1]];
      if (p?.mode === 'plain' && r?.mode === 'relaycast' && p.failed === undefined && r.failed === undefined) deltas.push(r.ttffMs - p.ttffMs);
    }
    const pairedDeltaMs = { pairs: deltas.length, median: round(median(deltas), 1), p95: round(quantile(deltas, 0.95), 1) };
    const met = ratio.median <= GOAL.ratioMedianAtMost && ratio.p95 <= GOAL.ratioP95AtMost;
    const sdkRuns = runs.flatMap((r) => (r.sdk === undefined ? [] : [r.sdk]));
    const firstFrom: Record<string, number> = {};
    for (const s of sdkRuns) firstFrom[s.atPlaying.firstSegmentFrom] = (firstFrom[s.atPlaying.firstSegmentFrom] ?? 0) + 1;
    const fallbacksAtPlaying: Record<string, number> = {};
    for (const s of sdkRuns) for (const [k, v] of Object.entries(s.atPlaying.fallbacks)) fallbacksAtPlaying[k] = (fallbacksAtPlaying[k] ?? 0) + v;
    const firstRelay = runs.filter((r) => r.mode === 'relaycast').map((r) => r.firstRelayMs);
    const setupMs = sdkRuns.flatMap((s) => s.afterHold.setupMs);
    const firstRelayByte = sdkRuns.map((s) => obj(s.afterHold.startup)['firstRelayByteMs']).filter((v): v is number => typeof v === 'number');
    const sdkSummary = {
      // Which source delivered the bytes loaded by the first `playing`, over the relaycast runs.
      bytesAtPlayingFrom: firstFrom,
      fallbacksBeforePlaying: fallbacksAtPlaying,
      relaysConnectedAfterHold: sdkRuns.map((s) => s.afterHold.relays),
      // loadSource → first relay-connected event, measured in the page (NaN: none within the run).
      firstRelayConnectedMedianMs: round(median(firstRelay.filter((n) => !Number.isNaN(n))), 1),
      runsWithoutRelayConnected: firstRelay.filter((n) => Number.isNaN(n)).length,
      startupFieldPresent: sdkRuns.some((s) => s.afterHold.startup !== undefined),
      setupFieldPresent: sdkRuns.some((s) => s.afterHold.setup !== undefined),
      firstRelayByteMedianMs: firstRelayByte.length === 0 ? undefined : round(median(firstRelayByte), 1),
      relaySetupMedianMs: setupMs.length === 0 ? undefined : round(median(setupMs), 1),
      relaySetupP95Ms: setupMs.length === 0 ? undefined : round(quantile(setupMs, 0.95), 1),
      relaySetupFailures: sdkRuns.reduce((s, r) => s + r.afterHold.setupFailures, 0),
      // getStats().setup summed over the relaycast runs (numbers and per-cause numbers), when present.
      setupTotals: sumSetup(sdkRuns.map((r) => r.afterHold.setup)),
    };
    const loadAfterRuns = load();
    let viewResult: Record<string, unknown> | undefined;
    if (flags['view-seconds'] > 0) {
      progress(BENCH, `${stream}: ${flags['view-seconds']} s view with Relaycast`);
      viewResult = await view(browser, stream);
      progress(BENCH, `${stream} view: relay share ${pct(viewResult['relayShare'])}, after 10 s ${pct(viewResult['relayShareAfter10s'])}`);
    }
    perStream[stream] = {
      plain,
      relaycast,
      ratio,
      pairedDeltaMs,
      goalMet: met,
      sdk: sdkSummary,
      view: viewResult,
      loadAfterRuns,
      runs: runs.map(({ sdk, ...r }) => (sdk === undefined ? r : { ...r, sdk })),
    };
    const share =
      viewResult === undefined
        ? ''
        : `; ${flags['view-seconds']} s view: relay share ${pct(viewResult['relayShare'])}, ${pct(viewResult['relayShareAfter10s'])} after 10 s`;
    summaries.push(
      `${stream}: plain ${plain['medianMs']} / ${plain['p95Ms']} ms, relaycast ${relaycast['medianMs']} / ${relaycast['p95Ms']} ms (median / p95), ratio ${ratio.median} / ${ratio.p95} ` +
        `(goal <= ${GOAL.ratioMedianAtMost} / <= ${GOAL.ratioP95AtMost}: ${met ? 'met' : 'MISSED'}), paired delta median ${pairedDeltaMs.median} ms${share}` +
        (plain['failed'] !== 0 || relaycast['failed'] !== 0 ? `; FAILED runs ${plain['failed']} plain, ${relaycast['failed']} relaycast` : ''),
    );
  }
  report(
    BENCH,
    {
      config: { ...flags, vodSec, segmentSec: 2, p95: 'nearest rank' },
      commit,
      load: { atStart: loadAtStart, atEnd: load() },
      goal: GOAL,
      ...perStream,
    },
    `${summaries.join(' | ')} (load ${loadAtStart.join(' ')} at start, ${load().join(' ')} at end; commit ${commit.head}${commit.sdkUncommitted ? '+dirty SDK' : ''})`,
  );
} finally {
  await browser?.close().catch(() => undefined);
  for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  await cleanup();
}

exitBench();
