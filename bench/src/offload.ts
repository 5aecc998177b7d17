/**
 * offload: a live stream (ffmpeg, real time), one origin, two relays, and V simulated viewers (Node
 * SDK clients driving lib/sim-player.ts) arriving evenly over the join window. The same arrivals
 * also run origin-only (the SDK without a tracker) at the same time against the same stream, so
 * both groups see the same segments and the same machine load. Reported: share of bytes from
 * relays (overall and after the join window), startup time and rebuffers for both groups.
 */
import { join } from 'node:path';
import { ErrorCode, RelaycastError, swarmIdFromUrl } from '@relaycast/protocol';
import { startTracker } from '@relaycast/tracker';
import { variantUrls } from '../../test/helpers/hls.js';
import { startLiveStream } from '../../test/helpers/media.js';
import { nodeClient } from '../../test/helpers/node-client.js';
import { startOrigin } from '../../test/helpers/origin-server.js';
import { parseFlags } from './lib/cli-flags.js';
import { exitBench, progress, report } from './lib/report.js';
import { playLive, type PlayerResult } from './lib/sim-player.js';
import { medianOf, quantile, round } from './lib/stats.js';
import { benchDir } from './lib/tmp.js';
import { startWorker, type Worker } from './lib/worker.js';
import type { RelayWorkerInfo } from './workers/relay-worker.js';

const BENCH = 'offload';
/** Target from the issue: share of bytes served by relays once the viewers have joined. */
const TARGET_RELAY_SHARE = 0.95;
const SEGMENT_SEC = 2;

const flags = parseFlags(BENCH, {
  runs: { default: 2, help: 'repetitions; medians are reported' },
  viewers: { default: 20, help: 'viewers per group (relay-assisted and origin-only)' },
  'join-sec': { default: 10, help: 'viewers arrive evenly over this window' },
  'watch-sec': { default: 20, help: 'how long every viewer watches after it joined' },
  relays: { default: 2, help: 'relay processes' },
  'skip-origin-only': { default: false, help: 'run only the relay-assisted group' },
  'low-buffer-ms': { default: -1, help: "SDK startup.lowBufferMs for relay-assisted viewers (-1: the SDK's default)" },
  'hedge-delay-ms': { default: -1, help: "SDK startup.hedgeDelayMs for relay-assisted viewers (-1: the SDK's default)" },
});

const startup = {
  ...(flags['low-buffer-ms'] >= 0 ? { lowBufferMs: flags['low-buffer-ms'] } : {}),
  ...(flags['hedge-delay-ms'] >= 0 ? { hedgeDelayMs: flags['hedge-delay-ms'] } : {}),
};

interface GroupFigures extends Record<string, number> {
  relayShare: number;
  relayShareAfterWarmup: number;
  startupP50Ms: number;
  startupP95Ms: number;
  rebuffersTotal: number;
  viewersWithRebuffer: number;
  rebufferMsTotal: number;
  failedLoads: number;
  /** Join to the first relay data channel open (relay-assisted group only; NaN otherwise). */
  firstRelayP50Ms: number;
  firstRelayP95Ms: number;
}

type ViewerResult = PlayerResult & { firstRelayMs: number };

function figures(results: ViewerResult[], warmupEndsAt: number): GroupFigures {
  let relay = 0;
  let origin = 0;
  let relayLate = 0;
  let originLate = 0;
  for (const r of results) {
    for (const l of r.loads) {
      relay += l.bytesFromRelay;
      origin += l.bytesFromOrigin;
      if (l.startedAt >= warmupEndsAt) {
        relayLate += l.bytesFromRelay;
        originLate += l.bytesFromOrigin;
      }
    }
  }
  const startups = results.map((r) => r.startupMs).filter((n) => !Number.isNaN(n));
  return {
    relayShare: relay + origin === 0 ? 0 : relay / (relay + origin),
    relayShareAfterWarmup: relayLate + originLate === 0 ? 0 : relayLate / (relayLate + originLate),
    startupP50Ms: quantile(startups, 0.5),
    startupP95Ms: quantile(startups, 0.95),
    rebuffersTotal: results.reduce((s, r) => s + r.rebuffers, 0),
    viewersWithRebuffer: results.filter((r) => r.rebuffers > 0).length,
    rebufferMsTotal: results.reduce((s, r) => s + r.rebufferMs, 0),
    failedLoads: results.reduce((s, r) => s + r.failedLoads, 0),
    firstRelayP50Ms: quantile(
      results.map((r) => r.firstRelayMs).filter((n) => !Number.isNaN(n)),
      0.5,
    ),
    firstRelayP95Ms: quantile(
      results.map((r) => r.firstRelayMs).filter((n) => !Number.isNaN(n)),
      0.95,
    ),
  };
}

const runSec = flags['join-sec'] + flags['watch-sec'];
const { dir, cleanup } = await benchDir(BENCH);
const stoppers: (() => Promise<void>)[] = [];
try {
  // One stream for every run; `-t` bounds it if this process dies.
  const live = await startLiveStream(join(dir, 'live'), { durationSec: Math.ceil(flags.runs * (runSec + 5) + 30), segmentSec: SEGMENT_SEC });
  stoppers.push(() => live.stop());
  const origin = await startOrigin(join(dir, 'live'));
  stoppers.push(() => origin.close());
  const masterUrl = `${origin.url}${live.master}`;
  const mediaUrl = `${origin.url}${live.media}`;
  // Wait for a playable window: hls.js starts three segments behind the edge.
  for (let i = 0; ; i++) {
    const res = await fetch(mediaUrl).catch(() => undefined);
    const text = res?.ok === true ? await res.text() : '';
    if ((text.match(/#EXTINF/g) ?? []).length >= 4) break;
    if (i > 300) throw new RelaycastError(ErrorCode.TIMEOUT, 'live stream did not start');
    await new Promise((r) => setTimeout(r, 200));
  }
  const variants = variantUrls(await (await fetch(masterUrl)).text(), masterUrl);
  if (!variants.includes(mediaUrl)) throw new RelaycastError(ErrorCode.PLAYLIST_INVALID, `master playlist does not name ${mediaUrl}`);
  const tracker = await startTracker({ host: '127.0.0.1', port: 0 });
  stoppers.push(() => tracker.close());
  const relays: Worker<RelayWorkerInfo>[] = [];
  for (let i = 0; i < flags.relays; i++) {
    const w = await startWorker<RelayWorkerInfo>(new URL('./workers/relay-worker.ts', import.meta.url), {
      trackerUrl: tracker.url,
      allowedOrigins: [origin.url],
      keypairPath: join(dir, `relay${i}.json`),
    });
    relays.push(w);
    stoppers.push(() => w.stop());
  }
  const swarmId = swarmIdFromUrl(masterUrl);
  progress(BENCH, `live stream up, ${flags.relays} relays registered; ${flags.runs} runs of ${runSec} s`);

  const perRun: { relay: GroupFigures; origin?: GroupFigures }[] = [];
  for (let run = 0; run < flags.runs; run++) {
    const t0 = performance.now();
    const groups = !flags['skip-origin-only'] ? (['relay', 'origin'] as const) : (['relay'] as const);
    const results: Record<string, Promise<ViewerResult>[]> = { relay: [], origin: [] };
    for (let i = 0; i < flags.viewers; i++) {
      const arriveAt = t0 + (i * flags['join-sec'] * 1000) / flags.viewers;
      for (const group of groups) {
        (results[group] as Promise<ViewerResult>[]).push(
          (async () => {
            await new Promise((r) => setTimeout(r, Math.max(0, arriveAt - performance.now())));
            const joinedAt = performance.now();
            const client = group === 'relay' ? nodeClient({ trackerUrl: tracker.url, swarmId, startup }) : nodeClient({ swarmId });
            // Where startup time goes: how long the first relay connection takes.
            let firstRelayMs = Number.NaN;
            const onRelay = (): void => {
              firstRelayMs = performance.now() - joinedAt;
              client.off('relay-connected', onRelay);
            };
            client.on('relay-connected', onRelay);
            // Like a page load: the client starts while the player already asks for segments.
            void client.start().catch(() => undefined);
            try {
              const played = await playLive({ client, mediaUrl }, joinedAt, AbortSignal.timeout(flags['watch-sec'] * 1000));
              return { ...played, firstRelayMs };
            } finally {
              await client.close();
            }
          })(),
        );
      }
    }
    const warmupEndsAt = t0 + flags['join-sec'] * 1000;
    const relayFigures = figures(await Promise.all(results['relay'] as Promise<ViewerResult>[]), warmupEndsAt);
    const originFigures = !flags['skip-origin-only'] ? figures(await Promise.all(results['origin'] as Promise<ViewerResult>[]), warmupEndsAt) : undefined;
    perRun.push(originFigures === undefined ? { relay: relayFigures } : { relay: relayFigures, origin: originFigures });
    progress(
      BENCH,
      `run ${run + 1}/${flags.runs}: relay share ${round(relayFigures.relayShare * 100, 1)}% (after warm-up ${round(relayFigures.relayShareAfterWarmup * 100, 1)}%), ` +
        `startup p50 ${round(relayFigures.startupP50Ms, 0)} ms vs origin-only ${round(originFigures?.startupP50Ms ?? NaN, 0)} ms, rebuffers ${relayFigures.rebuffersTotal} vs ${originFigures?.rebuffersTotal ?? '-'}`,
    );
  }
  const relayMedian = medianOf(perRun.map((r) => r.relay));
  const originRuns = perRun.flatMap((r) => (r.origin === undefined ? [] : [r.origin]));
  const originMedian = originRuns.length === 0 ? undefined : medianOf(originRuns);
  const met = relayMedian.relayShareAfterWarmup >= TARGET_RELAY_SHARE;
  report(
    BENCH,
    {
      config: { ...flags, segmentSec: SEGMENT_SEC },
      medians: { relayAssisted: relayMedian, originOnly: originMedian },
      ratios: originMedian === undefined ? undefined : { startupP50RelayOverOrigin: round(relayMedian.startupP50Ms / originMedian.startupP50Ms) },
      target: { relayShareAfterWarmupAtLeast: TARGET_RELAY_SHARE, met },
      relayShareAfterWarmupPerRun: perRun.map((r) => round(r.relay.relayShareAfterWarmup, 4)),
      runs: perRun,
    },
    `relays served ${round(relayMedian.relayShare * 100, 1)}% of bytes, ${round(relayMedian.relayShareAfterWarmup * 100, 1)}% after warm-up (target >= ${TARGET_RELAY_SHARE * 100}%: ${met ? 'met' : 'MISSED'}); ` +
      `startup p50 ${round(relayMedian.startupP50Ms, 0)} ms vs ${round(originMedian?.startupP50Ms ?? NaN, 0)} ms origin-only; rebuffers ${relayMedian.rebuffersTotal} vs ${originMedian?.rebuffersTotal ?? '-'} (median per run, ${flags.viewers} viewers each)`,
  );
} finally {
  for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  await cleanup();
}

exitBench();
