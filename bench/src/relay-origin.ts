/**
 * relay-origin: M viewers ask one relay for the same uncached segment at the same moment. The relay
 * must fetch it from the origin once (coalescing) and stream it to all M while it downloads. Time
 * to first byte through the relay is compared with M viewers fetching the same segment straight
 * from the origin, same run, same origin.
 */
import { join } from 'node:path';
import { ErrorCode, RelaycastError, swarmIdFromUrl } from '@relaycast/protocol';
import { startTracker } from '@relaycast/tracker';
import { startOrigin } from '../../test/helpers/origin-server.js';
import { parseFlags } from './lib/cli-flags.js';
import { mapConcurrent, retry } from './lib/concurrency.js';
import { exitBench, progress, report } from './lib/report.js';
import { writeRandomSegments } from './lib/segments.js';
import { MIB, median, medianOf, quantile, round } from './lib/stats.js';
import { benchDir } from './lib/tmp.js';
import { httpViewer, relayViewer, type Fetched } from './lib/viewers.js';
import { startWorker } from './lib/worker.js';
import type { RelayWorkerInfo } from './workers/relay-worker.js';

const BENCH = 'relay-origin';

const flags = parseFlags(BENCH, {
  viewers: { default: 8, help: 'viewers asking for the same segment at once (M)' },
  runs: { default: 3, help: 'repetitions; medians are reported' },
  segments: { default: 5, help: 'uncached segments per run' },
  'segment-mib': { default: 2, help: 'segment size in MiB' },
  'cpu-prof-dir': { default: '', help: 'write a V8 CPU profile of the relay process here' },
});

interface RunFigures extends Record<string, number> {
  maxOriginRequestsPerSegment: number;
  relayTtfbP50Ms: number;
  relayTtfbP95Ms: number;
  relayTotalP50Ms: number;
  directTtfbP50Ms: number;
  directTtfbP95Ms: number;
  directTotalP50Ms: number;
}

const segmentBytes = Math.round(flags['segment-mib'] * MIB);
const { dir, cleanup } = await benchDir(BENCH);
const stoppers: (() => Promise<void>)[] = [];

try {
  const names = await writeRandomSegments(dir, 'media', flags.runs * flags.segments, segmentBytes);
  const origin = await startOrigin(dir);
  stoppers.push(() => origin.close());
  const tracker = await startTracker({ host: '127.0.0.1', port: 0 });
  stoppers.push(() => tracker.close());
  const relay = await startWorker<RelayWorkerInfo>(
    new URL('./workers/relay-worker.ts', import.meta.url),
    { trackerUrl: tracker.url, allowedOrigins: [origin.url], keypairPath: join(dir, 'relay.json') },
    { cpuProfileDir: flags['cpu-prof-dir'] === '' ? undefined : flags['cpu-prof-dir'] },
  );
  stoppers.push(() => relay.stop());
  const swarmId = swarmIdFromUrl(`${origin.url}media/master.m3u8`);
  // Setup is not measured; a few WebRTC connections opened together fail ICE now and then here.
  let setupFailures = 0;
  const viewers = await mapConcurrent(flags.viewers, 4, () =>
    retry(
      3,
      () => relayViewer(tracker.url, swarmId, relay.info.relayId, origin.url),
      (err) => {
        setupFailures++;
        progress(BENCH, `viewer setup failed, retrying: ${String(err)}`);
      },
    ),
  );
  stoppers.push(async () => viewers.forEach((v) => v.close()));
  const direct = Array.from({ length: flags.viewers }, () => httpViewer(origin.url));
  stoppers.push(async () => direct.forEach((v) => v.close()));
  // Connect the HTTP viewers before timing, as the relay viewers' data channels are: same footing.
  await writeRandomSegments(dir, 'warm', 1, 1024);
  await Promise.all(direct.map((v) => v.fetch('warm/seg0000.ts').catch(() => undefined)));

  const check = (got: Fetched[]): void => {
    for (const g of got) if (g.bytes !== segmentBytes) throw new RelaycastError(ErrorCode.INTERNAL, `got ${g.bytes} bytes of ${segmentBytes}`);
  };
  const perRun: RunFigures[] = [];
  const originRequests: number[] = [];
  for (let run = 0; run < flags.runs; run++) {
    const relayTtfb: number[] = [];
    const relayTotal: number[] = [];
    const directTtfb: number[] = [];
    const directTotal: number[] = [];
    let maxRequests = 0;
    for (let s = 0; s < flags.segments; s++) {
      const name = names[run * flags.segments + s] as string;
      const before = origin.count(`/${name}`, relay.info.relayId);
      // Every request leaves in the same tick: "at once" as far as the relay can tell.
      const viaRelay = await Promise.all(viewers.map((v) => v.fetch(name)));
      check(viaRelay);
      const requests = origin.count(`/${name}`, relay.info.relayId) - before;
      originRequests.push(requests);
      maxRequests = Math.max(maxRequests, requests);
      relayTtfb.push(...viaRelay.map((g) => g.ttfbMs));
      relayTotal.push(...viaRelay.map((g) => g.totalMs));
      const straight = await Promise.all(direct.map((v) => v.fetch(name)));
      check(straight);
      directTtfb.push(...straight.map((g) => g.ttfbMs));
      directTotal.push(...straight.map((g) => g.totalMs));
    }
    const figures: RunFigures = {
      maxOriginRequestsPerSegment: maxRequests,
      relayTtfbP50Ms: quantile(relayTtfb, 0.5),
      relayTtfbP95Ms: quantile(relayTtfb, 0.95),
      relayTotalP50Ms: quantile(relayTotal, 0.5),
      directTtfbP50Ms: quantile(directTtfb, 0.5),
      directTtfbP95Ms: quantile(directTtfb, 0.95),
      directTotalP50Ms: quantile(directTotal, 0.5),
    };
    perRun.push(figures);
    progress(
      BENCH,
      `run ${run + 1}/${flags.runs}: origin requests/segment max ${maxRequests}, TTFB p50 relay ${round(figures.relayTtfbP50Ms, 1)} ms vs direct ${round(figures.directTtfbP50Ms, 1)} ms`,
    );
  }
  const medians = medianOf(perRun);
  const maxRequests = Math.max(...originRequests);
  const ttfbRatio = round(medians.relayTtfbP50Ms / medians.directTtfbP50Ms);
  report(
    BENCH,
    {
      config: { ...flags, segmentBytes },
      originRequestsPerSegment: { max: maxRequests, median: median(originRequests), all: originRequests },
      medians,
      ratios: { relayTtfbOverDirect: ttfbRatio, relayTotalOverDirect: round(medians.relayTotalP50Ms / medians.directTotalP50Ms) },
      setup: { viewers: flags.viewers, failedAttempts: setupFailures },
      target: { originRequestsPerSegment: 1, met: maxRequests === 1 && originRequests.every((n) => n === 1) },
      runs: perRun,
    },
    `${flags.viewers} viewers at once: ${maxRequests === 1 ? 'exactly 1' : `up to ${maxRequests}`} origin request per segment (target 1: ${maxRequests === 1 ? 'met' : 'MISSED'}); ` +
      `TTFB p50 ${round(medians.relayTtfbP50Ms, 1)} ms via relay vs ${round(medians.directTtfbP50Ms, 1)} ms direct (${ttfbRatio}x)`,
  );
} finally {
  for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  await cleanup();
}

exitBench();
