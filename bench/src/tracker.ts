/**
 * tracker: simulated relays and viewers over real WebSockets against Relaycast's tracker, and the
 * same announce/offer load against bittorrent-tracker's WebSocket server as the same-run baseline.
 * Each tracker runs alone in a worker process; the simulated clients share this process.
 *
 * Per run and tracker: R relays connect; V idle viewers connect and join (memory per 10,000
 * viewers, after a GC on both sides of it); then C active viewers run closed loops of joins for a
 * fixed time, then closed loops of offer → answer through the tracker.
 */
import { parseFlags } from './lib/cli-flags.js';
import { mapConcurrent } from './lib/concurrency.js';
import { exitBench, progress, report } from './lib/report.js';
import { MIB, medianOf, round } from './lib/stats.js';
import { bittorrentDriver, relaycastDriver, type SimViewer, type TrackerDriver } from './lib/tracker-load.js';
import { cpuMsBetween, startWorker } from './lib/worker.js';
import type { TrackerWorkerConfig } from './workers/tracker-worker.js';

const BENCH = 'tracker';

const flags = parseFlags(BENCH, {
  runs: { default: 3, help: 'repetitions per tracker; medians are reported' },
  relays: { default: 20, help: 'simulated relays (bittorrent: seeders in every swarm)' },
  swarms: { default: 20, help: 'swarms (streams) the viewers spread over' },
  'idle-viewers': { default: 10_000, help: 'connected viewers for the memory figure (scaled to per 10,000)' },
  'active-viewers': { default: 200, help: 'viewers running closed loops in the throughput phases' },
  'phase-sec': { default: 5, help: 'seconds per throughput phase' },
  'connect-concurrency': { default: 256, help: 'WebSocket handshakes in flight while connecting viewers' },
  impls: { default: 'relaycast,bittorrent', help: 'trackers to measure' },
  'cpu-prof-dir': { default: '', help: 'write V8 CPU profiles of the tracker processes here' },
  'heap-snapshot-dir': { default: '', help: 'write a heap snapshot of each tracker with the idle viewers connected here' },
});

interface RunFigures extends Record<string, number> {
  joinsPerSec: number;
  signalRoundTripsPerSec: number;
  signalMessagesForwardedPerSec: number;
  trackerCpuMsPer1kJoins: number;
  trackerCpuMsPer1kSignals: number;
  rssMiBPer10kViewers: number;
  heapMiBPer10kViewers: number;
  idleConnectSec: number;
}

type Impl = TrackerWorkerConfig['impl'];

/** Runs `op` in a closed loop on every viewer for `seconds`; returns completed operations. */
async function closedLoop(viewers: SimViewer[], seconds: number, op: (v: SimViewer, i: number, k: number) => Promise<void>): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    viewers.map(async (v, i) => {
      for (let k = 0; performance.now() < end; k++) {
        await op(v, i, k);
        done++;
      }
    }),
  );
  return done;
}

async function measure(impl: Impl): Promise<RunFigures> {
  const worker = await startWorker<{ url: string }>(new URL('./workers/tracker-worker.ts', import.meta.url), { impl } satisfies TrackerWorkerConfig, {
    // Same ws on both sides without native add-ons: what Relaycast's tracker ships with.
    env: { WS_NO_BUFFER_UTIL: '1', WS_NO_UTF_8_VALIDATE: '1' },
    cpuProfileDir: flags['cpu-prof-dir'] === '' ? undefined : flags['cpu-prof-dir'],
  });
  const driver: TrackerDriver = impl === 'relaycast' ? relaycastDriver(worker.info.url) : bittorrentDriver(worker.info.url);
  try {
    for (let r = 0; r < flags.relays; r++) await driver.addRelay(flags.swarms);
    const m0 = await worker.usage(true);
    const t0 = performance.now();
    const idle = flags['idle-viewers'];
    await mapConcurrent(idle, flags['connect-concurrency'], async (i) => {
      const v = await driver.addViewer();
      await v.join(i % flags.swarms);
      return v;
    });
    const idleConnectSec = (performance.now() - t0) / 1000;
    const m1 = await worker.usage(true);
    if (flags['heap-snapshot-dir'] !== '') {
      const file = await worker.request<string>('heapSnapshot', { dir: flags['heap-snapshot-dir'], name: `tracker-${impl}` }, 300_000);
      progress(BENCH, `heap snapshot of ${impl}: ${file}`);
    }
    const perTenK = idle === 0 ? 0 : 10_000 / idle;

    const active = await mapConcurrent(flags['active-viewers'], flags['connect-concurrency'], async (i) => {
      const v = await driver.addViewer();
      await v.join(i % flags.swarms);
      return v;
    });
    const j0 = await worker.usage();
    const joins = await closedLoop(active, flags['phase-sec'], (v, i, k) => v.join((i + k) % flags.swarms));
    const j1 = await worker.usage();
    const signals = await closedLoop(active, flags['phase-sec'], (v) => v.signal());
    const s1 = await worker.usage();
    return {
      joinsPerSec: joins / flags['phase-sec'],
      signalRoundTripsPerSec: signals / flags['phase-sec'],
      signalMessagesForwardedPerSec: (2 * signals) / flags['phase-sec'],
      trackerCpuMsPer1kJoins: (cpuMsBetween(j0, j1) / joins) * 1000,
      trackerCpuMsPer1kSignals: (cpuMsBetween(j1, s1) / signals) * 1000,
      rssMiBPer10kViewers: ((m1.rssBytes - m0.rssBytes) * perTenK) / MIB,
      heapMiBPer10kViewers: ((m1.heapUsedBytes - m0.heapUsedBytes) * perTenK) / MIB,
      idleConnectSec,
    };
  } finally {
    driver.close();
    await worker.stop();
  }
}

const impls = flags.impls.split(',').map((s) => s.trim()) as Impl[];
const perRun: Partial<Record<Impl, RunFigures[]>> = {};
for (let run = 0; run < flags.runs; run++) {
  for (const impl of impls) {
    const f = await measure(impl);
    (perRun[impl] ??= []).push(f);
    progress(
      BENCH,
      `run ${run + 1}/${flags.runs} ${impl}: ${round(f.joinsPerSec, 0)} joins/s, ${round(f.signalMessagesForwardedPerSec, 0)} signals forwarded/s, ${round(f.rssMiBPer10kViewers, 1)} MiB RSS per 10k viewers`,
    );
  }
}
const medians: Partial<Record<Impl, RunFigures>> = {};
for (const impl of impls) medians[impl] = medianOf(perRun[impl] ?? []);
const rc = medians.relaycast;
const bt = medians.bittorrent;
const ratios =
  rc !== undefined && bt !== undefined
    ? {
        joinsRelaycastOverBittorrent: round(rc.joinsPerSec / bt.joinsPerSec),
        signalsRelaycastOverBittorrent: round(rc.signalMessagesForwardedPerSec / bt.signalMessagesForwardedPerSec),
        rssRelaycastOverBittorrent: round(rc.rssMiBPer10kViewers / bt.rssMiBPer10kViewers),
        heapRelaycastOverBittorrent: round(rc.heapMiBPer10kViewers / bt.heapMiBPer10kViewers),
      }
    : undefined;
const ahead = ratios !== undefined && ratios.joinsRelaycastOverBittorrent >= 1 && ratios.signalsRelaycastOverBittorrent >= 1;
const memoryAhead = ratios !== undefined && ratios.rssRelaycastOverBittorrent <= 1;
report(
  BENCH,
  { config: flags, medians, ratios, target: { aheadOfBittorrentTracker: true, met: ahead, throughputAhead: ahead, memoryAhead }, runs: perRun },
  impls
    .map((impl) => {
      const m = medians[impl] as RunFigures;
      return `${impl} ${round(m.joinsPerSec, 0)} joins/s, ${round(m.signalMessagesForwardedPerSec, 0)} signals/s, ${round(m.rssMiBPer10kViewers, 1)} MiB RSS/10k viewers`;
    })
    .join('; ') +
    (ratios === undefined
      ? ''
      : ` (relaycast/bittorrent: joins ${ratios.joinsRelaycastOverBittorrent}x, signals ${ratios.signalsRelaycastOverBittorrent}x, RSS ${ratios.rssRelaycastOverBittorrent}x; target ahead: ${ahead ? 'met' : 'MISSED'} on throughput, memory ${memoryAhead ? 'ahead' : 'behind'})`),
);

exitBench();
