/**
 * relay-throughput: one relay with a warm cache serving N concurrent Node viewers (node-datachannel)
 * whole segments, against two same-run baselines over the same loopback: the same bytes from a
 * plain node:http server and from node-datachannel with no protocol. Each server runs in its own
 * process, so its CPU per MB is its own; the viewers share this process.
 */
import { join } from 'node:path';
import { ErrorCode, RelaycastError, swarmIdFromUrl } from '@relaycast/protocol';
import { startTracker } from '@relaycast/tracker';
import { startOrigin } from '../../test/helpers/origin-server.js';
import { parseFlags } from './lib/cli-flags.js';
import { mapConcurrent, retry } from './lib/concurrency.js';
import { exitBench, progress, report } from './lib/report.js';
import { writeRandomSegments } from './lib/segments.js';
import { MB, MIB, medianOf, quantile, round } from './lib/stats.js';
import { benchDir } from './lib/tmp.js';
import { httpViewer, rawDataChannelViewer, relayViewer, type BenchViewer } from './lib/viewers.js';
import { cpuMsBetween, startWorker, type Worker } from './lib/worker.js';
import type { RelayWorkerInfo } from './workers/relay-worker.js';

const BENCH = 'relay-throughput';
/** The relay's largest frame (DATA header + 65,526 payload bytes): the raw baseline sends messages of this size. */
const FRAME_BYTES = 64 * 1024;
/** The relay channel server's default water marks (relay/src/constants.ts), reused by the raw baseline. */
const HIGH_WATER_BYTES = 1024 * 1024;
const LOW_WATER_BYTES = 256 * 1024;
/** Target from the issue: relay throughput at least this share of raw node-datachannel. */
const TARGET_RELAY_OVER_RAW = 0.6;
/** WebRTC setups in flight at once, and attempts per viewer (setup is not measured). */
const SETUP_CONCURRENCY = 4;
const SETUP_ATTEMPTS = 3;

const flags = parseFlags(BENCH, {
  viewers: { default: [1, 4, 16], help: 'concurrent viewers, comma-separated' },
  runs: { default: 3, help: 'repetitions of every (mode, viewers) measurement; medians are reported' },
  'segment-mib': { default: 2, help: 'segment size in MiB' },
  segments: { default: 8, help: 'distinct segments (all warm in the relay cache)' },
  'mib-per-measurement': { default: 64, help: 'MiB moved in one measurement, split between the viewers' },
  modes: { default: 'relay,raw,http', help: 'which servers to measure (also raw-copy: raw, copying each message into a new Uint8Array like the relay)' },
  'cpu-prof-dir': { default: '', help: 'write V8 CPU profiles of the server processes here' },
});

type Mode = 'relay' | 'raw' | 'http' | 'raw-copy';
interface Measurement extends Record<string, number> {
  mbPerSec: number;
  serverCpuMsPerMb: number;
  viewerCpuMsPerMb: number;
  p50SegmentMs: number;
  p95SegmentMs: number;
}

const modes = flags.modes.split(',').map((m) => m.trim()) as Mode[];
const segmentBytes = Math.round(flags['segment-mib'] * MIB);
const { dir, cleanup } = await benchDir(BENCH);
const workerOptions = { cpuProfileDir: flags['cpu-prof-dir'] === '' ? undefined : flags['cpu-prof-dir'] };
const stoppers: (() => Promise<void>)[] = [];

try {
  const names = await writeRandomSegments(dir, 'media', flags.segments, segmentBytes);
  const origin = await startOrigin(dir);
  stoppers.push(() => origin.close());
  const tracker = await startTracker({ host: '127.0.0.1', port: 0 });
  stoppers.push(() => tracker.close());
  const swarmId = swarmIdFromUrl(`${origin.url}media/master.m3u8`);

  const relay = await startWorker<RelayWorkerInfo>(
    new URL('./workers/relay-worker.ts', import.meta.url),
    { trackerUrl: tracker.url, allowedOrigins: [origin.url], keypairPath: join(dir, 'relay.json') },
    workerOptions,
  );
  stoppers.push(() => relay.stop());
  const servers: Record<Mode, Worker<unknown>> = {
    relay,
    raw: await startWorker(
      new URL('./workers/raw-dc-worker.ts', import.meta.url),
      { dir, files: names, messageBytes: FRAME_BYTES, highWaterBytes: HIGH_WATER_BYTES, lowWaterBytes: LOW_WATER_BYTES },
      workerOptions,
    ),
    'raw-copy': await startWorker(
      new URL('./workers/raw-dc-worker.ts', import.meta.url),
      { dir, files: names, messageBytes: FRAME_BYTES, highWaterBytes: HIGH_WATER_BYTES, lowWaterBytes: LOW_WATER_BYTES, copyEachMessage: true },
      workerOptions,
    ),
    http: await startWorker<{ url: string }>(new URL('./workers/http-worker.ts', import.meta.url), { dir, files: names }, workerOptions),
  };
  stoppers.push(
    () => servers.raw.stop(),
    () => servers['raw-copy'].stop(),
    () => servers.http.stop(),
  );
  const httpUrl = (servers.http.info as { url: string }).url;

  const connect = (mode: Mode): Promise<BenchViewer> => {
    if (mode === 'relay') return relayViewer(tracker.url, swarmId, relay.info.relayId, origin.url);
    if (mode === 'raw' || mode === 'raw-copy') return rawDataChannelViewer(servers[mode], () => segmentBytes);
    return Promise.resolve(httpViewer(httpUrl));
  };

  // Warm the relay cache: every segment once from the origin, before anything is measured.
  const warm = await retry(SETUP_ATTEMPTS, () => connect('relay'));
  for (const n of names) await warm.fetch(n);
  warm.close();
  progress(BENCH, `relay ${relay.info.relayId} warm with ${names.length} x ${flags['segment-mib']} MiB`);

  // Connection setup (about a second per WebRTC peer here) is not what this bench measures: each
  // mode connects its largest N of viewers once, and every measurement uses the first N of them.
  const maxViewers = Math.max(...flags.viewers);
  const pools = new Map<Mode, BenchViewer[]>();
  stoppers.push(async () => {
    for (const pool of pools.values()) for (const v of pool) v.close();
  });
  const setupFailures: Record<string, number> = {};
  for (const mode of modes) {
    setupFailures[mode] = 0;
    const pool = await mapConcurrent(maxViewers, SETUP_CONCURRENCY, () =>
      retry(
        SETUP_ATTEMPTS,
        () => connect(mode),
        (err) => {
          setupFailures[mode] = (setupFailures[mode] ?? 0) + 1;
          progress(BENCH, `${mode} viewer setup failed, retrying: ${String(err)}`);
        },
      ),
    );
    pools.set(mode, pool);
    // One transfer each before measuring: SCTP windows open, HTTP sockets connected.
    await Promise.all(pool.map((v, i) => v.fetch(names[i % names.length] as string)));
  }
  progress(BENCH, `${maxViewers} viewers connected per mode (${modes.join(', ')})`);

  async function measure(mode: Mode, viewerCount: number): Promise<Measurement> {
    const viewers = (pools.get(mode) as BenchViewer[]).slice(0, viewerCount);
    const perViewer = Math.max(2, Math.ceil((flags['mib-per-measurement'] * MIB) / segmentBytes / viewerCount));
    const server = servers[mode];
    const u0 = await server.usage();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const times: number[] = [];
    let bytes = 0;
    await Promise.all(
      viewers.map(async (v, i) => {
        for (let j = 0; j < perViewer; j++) {
          const got = await v.fetch(names[(i + j) % names.length] as string);
          if (got.bytes !== segmentBytes) throw new RelaycastError(ErrorCode.INTERNAL, `${mode}: got ${got.bytes} bytes of ${segmentBytes}`);
          bytes += got.bytes;
          times.push(got.totalMs);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const u1 = await server.usage();
    const c1 = process.cpuUsage(c0);
    const mb = bytes / MB;
    return {
      mbPerSec: mb / seconds,
      serverCpuMsPerMb: cpuMsBetween(u0, u1) / mb,
      viewerCpuMsPerMb: (c1.user + c1.system) / 1000 / mb,
      p50SegmentMs: quantile(times, 0.5),
      p95SegmentMs: quantile(times, 0.95),
    };
  }

  const perRun: Record<string, Record<string, Measurement[]>> = {};
  for (let run = 0; run < flags.runs; run++) {
    for (const n of flags.viewers) {
      // Modes interleave within a run, so background load from other users hits them alike.
      for (const mode of modes) {
        const m = await measure(mode, n);
        ((perRun[mode] ??= {})[n] ??= []).push(m);
        progress(
          BENCH,
          `run ${run + 1}/${flags.runs} ${mode} N=${n}: ${round(m.mbPerSec, 1)} MB/s, server ${round(m.serverCpuMsPerMb, 2)} CPU ms/MB, p50 ${round(m.p50SegmentMs, 1)} ms`,
        );
      }
    }
  }

  const medians: Record<string, Record<string, Measurement>> = {};
  for (const [mode, byN] of Object.entries(perRun)) {
    medians[mode] = {};
    for (const [n, runs] of Object.entries(byN)) medians[mode][n] = medianOf(runs);
  }
  const ratios: Record<string, Record<string, number>> = { relayOverRaw: {}, relayOverHttp: {} };
  for (const n of flags.viewers) {
    const r = medians['relay']?.[n]?.mbPerSec;
    const raw = medians['raw']?.[n]?.mbPerSec;
    const http = medians['http']?.[n]?.mbPerSec;
    if (r !== undefined && raw !== undefined) (ratios['relayOverRaw'] as Record<string, number>)[n] = round(r / raw);
    if (r !== undefined && http !== undefined) (ratios['relayOverHttp'] as Record<string, number>)[n] = round(r / http);
  }
  const worst = Math.min(...Object.values(ratios['relayOverRaw'] as Record<string, number>));
  report(
    BENCH,
    {
      config: { ...flags, segmentBytes },
      medians,
      ratios,
      target: { relayOverRawAtLeast: TARGET_RELAY_OVER_RAW, met: worst >= TARGET_RELAY_OVER_RAW },
      setup: { viewersPerMode: maxViewers, failedAttempts: setupFailures },
      runs: perRun,
    },
    flags.viewers
      .map(
        (n) =>
          `N=${n} relay ${round(medians['relay']?.[n]?.mbPerSec ?? NaN, 1)} MB/s = ${ratios['relayOverRaw']?.[n] ?? '?'}x raw, ${ratios['relayOverHttp']?.[n] ?? '?'}x http`,
      )
      .join('; ') + ` (target >= ${TARGET_RELAY_OVER_RAW}x raw: ${worst >= TARGET_RELAY_OVER_RAW ? 'met' : 'MISSED'})`,
  );
} finally {
  for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  await cleanup();
}

exitBench();
