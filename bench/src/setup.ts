/**
 * setup: how fast and how surely a viewer's WebRTC connection to a relay comes up. N viewer→relay
 * setups, C at a time, against real relay processes through a real tracker, while one CPU-burning
 * process per core loads the machine. Every viewer has its own tracker connection (joined before
 * the clock starts); setup time is offer created → data channel open, and a setup that does not
 * open is a failure (nothing is retried).
 *
 * The viewer is the raw viewer helper (test/helpers/raw-viewer.ts: node-datachannel's
 * RTCPeerConnection polyfill, signaling by hand through the tracker), which signals the way the
 * SDK's RelayConnection does. Two signaling variants take turns in the same run (same relays, same
 * load), so the baseline is the code before the fix:
 *  - `fixed`: ICE candidates kept out of the offer and held back until ICE connects (or 300 ms
 *    after the answer); the answer's candidates applied after the answer;
 *  - `legacy` (`legacySignaling`): as the SDK signaled before: candidates inline in the offer and
 *    trickled at once, setLocalDescription called again after createOffer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, RelaycastError, swarmIdFromUrl } from '@relaycast/protocol';
import { startTracker } from '@relaycast/tracker';
import { openRawChannel, rawJoin, RawSetupError } from '../../test/helpers/raw-viewer.js';
import { parseFlags } from './lib/cli-flags.js';
import { exitBench, progress, report } from './lib/report.js';
import { quantile, round } from './lib/stats.js';
import { benchDir } from './lib/tmp.js';
import { startWorker, type Worker } from './lib/worker.js';
import type { RelayWorkerInfo } from './workers/relay-worker.js';

const BENCH = 'setup';
/** The goal: no failed setup. */
const TARGET_FAILED = 0;

const flags = parseFlags(BENCH, {
  connections: { default: 500, help: 'setups per viewer kind' },
  concurrency: { default: 8, help: 'setups in flight at once' },
  relays: { default: 2, help: 'relay processes (viewers take them in turn)' },
  burners: { default: cpus().length, help: 'CPU-burning processes during the run (0: unloaded)' },
  baseline: { default: true, help: 'also run the legacy viewer, interleaved' },
  'timeout-ms': { default: 10_000, help: 'a setup not open by then failed' },
});

type Kind = 'fixed' | 'legacy';
type Cause = 'failed' | 'timeout' | 'other';
interface Outcome {
  kind: Kind;
  ok: boolean;
  ms: number;
  cause?: Cause;
}

const ORIGIN = 'http://127.0.0.1:9/';
const swarmId = swarmIdFromUrl(`${ORIGIN}setup/master.m3u8`);

/** One viewer: its own tracker connection and join (not timed), then one setup to `relayId` (timed). */
async function setupOnce(trackerUrl: string, relayId: string, kind: Kind, timeoutMs: number): Promise<Omit<Outcome, 'kind'>> {
  try {
    const channel = await openRawChannel(trackerUrl, swarmId, relayId, undefined, { legacySignaling: kind === 'legacy', openTimeoutMs: timeoutMs });
    channel.close();
    return { ok: true, ms: channel.setupMs };
  } catch (err) {
    return { ok: false, ms: Number.NaN, cause: err instanceof RawSetupError ? err.setupCause : 'other' };
  }
}

const HISTOGRAM_BOUNDS_MS = [50, 100, 200, 500, 900, 1_100, 2_000, Infinity];

function figures(outcomes: Outcome[]): Record<string, unknown> {
  const ok = outcomes.filter((o) => o.ok).map((o) => o.ms);
  const failedByCause: Record<Cause, number> = { failed: 0, timeout: 0, other: 0 };
  for (const o of outcomes) if (!o.ok && o.cause !== undefined) failedByCause[o.cause]++;
  return {
    attempts: outcomes.length,
    failed: outcomes.length - ok.length,
    failedByCause,
    setupP50Ms: round(quantile(ok, 0.5), 1),
    setupP95Ms: round(quantile(ok, 0.95), 1),
    setupP99Ms: round(quantile(ok, 0.99), 1),
    setupMaxMs: round(quantile(ok, 1), 1),
    /** Setups of 0.5 s or more: the DTLS retransmit timer (1 s) shows here. */
    over500Ms: ok.filter((ms) => ms >= 500).length,
    /** Opened setups by duration, ms: upper bound of each bucket → count. */
    histogramMs: Object.fromEntries(
      HISTOGRAM_BOUNDS_MS.map((bound, i) => [
        Number.isFinite(bound) ? `<${bound}` : `>=${HISTOGRAM_BOUNDS_MS[i - 1] ?? 0}`,
        ok.filter((ms) => ms < bound && ms >= (HISTOGRAM_BOUNDS_MS[i - 1] ?? 0)).length,
      ]),
    ),
  };
}

const { dir, cleanup } = await benchDir(BENCH);
const stoppers: (() => Promise<void>)[] = [];
const burners: ChildProcess[] = [];
try {
  const tracker = await startTracker({
    host: '127.0.0.1',
    port: 0,
    // Every viewer comes from 127.0.0.1: the per-range and per-viewer offer limits would refuse a
    // bench's worth of offers (they are the tracker's business, not the setup being measured).
    limits: { maxPendingOffersPerRange: 100_000, maxJoinsPerRangePerMinute: 1_000_000, maxConnectionsPerIp: 10_000 },
  });
  stoppers.push(() => tracker.close());
  const relays: Worker<RelayWorkerInfo>[] = [];
  for (let i = 0; i < flags.relays; i++) {
    const w = await startWorker<RelayWorkerInfo>(new URL('./workers/relay-worker.ts', import.meta.url), {
      trackerUrl: tracker.url,
      allowedOrigins: [ORIGIN],
      keypairPath: join(dir, `relay${i}.json`),
    });
    relays.push(w);
    stoppers.push(() => w.stop());
  }
  // The relays must be handed out before the run starts.
  let handed: string[] = [];
  for (let i = 0; handed.length < flags.relays; i++) {
    if (i > 100) throw new RelaycastError(ErrorCode.TIMEOUT, `the tracker hands out ${handed.length} of ${flags.relays} relays`);
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    handed = (await rawJoin(tracker.url, swarmId)).map((r) => r.relayId);
  }
  for (let i = 0; i < flags.burners; i++) {
    const b = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    burners.push(b);
  }
  const kinds: Kind[] = flags.baseline ? ['fixed', 'legacy'] : ['fixed'];
  progress(
    BENCH,
    `${flags.relays} relays registered; ${flags.connections} setups per kind (${kinds.join(', ')}, interleaved), ${flags.concurrency} at a time, ${flags.burners} CPU burners`,
  );
  const queue: Kind[] = [];
  for (let i = 0; i < flags.connections; i++) queue.push(...kinds);
  const outcomes: Outcome[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: flags.concurrency }, async () => {
      while (next < queue.length) {
        const index = next++;
        const kind = queue[index] as Kind;
        const relayId = handed[index % handed.length] as string;
        outcomes.push({ kind, ...(await setupOnce(tracker.url, relayId, kind, flags['timeout-ms'])) });
        if (outcomes.length % 100 === 0) progress(BENCH, `${outcomes.length}/${queue.length} setups, ${outcomes.filter((o) => !o.ok).length} failed`);
      }
    }),
  );
  const wallSec = (performance.now() - started) / 1000;
  for (const b of burners.splice(0)) b.kill('SIGKILL');
  const byKind = Object.fromEntries(kinds.map((k) => [k, figures(outcomes.filter((o) => o.kind === k))])) as Record<Kind, ReturnType<typeof figures>>;
  const fixed = byKind.fixed;
  const legacy = byKind.legacy as ReturnType<typeof figures> | undefined;
  const met = fixed['failed'] === TARGET_FAILED;
  report(
    BENCH,
    {
      config: { ...flags, load: `${flags.burners} CPU-burning processes (busy loops) during the run, ${cpus().length} cores`, retries: 0 },
      fixed,
      legacyBaseline: legacy,
      target: { failedSetups: TARGET_FAILED, met },
      wallSec: round(wallSec, 1),
    },
    `${flags.connections} setups, ${flags.concurrency} at a time, ${flags.burners} CPU burners, no retries: ${String(fixed['failed'])} failed (target ${TARGET_FAILED}: ${met ? 'met' : 'MISSED'}), ` +
      `p50 ${String(fixed['setupP50Ms'])} / p95 ${String(fixed['setupP95Ms'])} ms, ${String(fixed['over500Ms'])} over 0.5 s` +
      (legacy === undefined
        ? ''
        : `; legacy signaling (baseline, same run) ${String(legacy['failed'])} failed, p50 ${String(legacy['setupP50Ms'])} / p95 ${String(legacy['setupP95Ms'])} ms, ${String(legacy['over500Ms'])} over 0.5 s`),
  );
} finally {
  for (const b of burners) b.kill('SIGKILL');
  for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  await cleanup();
}

exitBench();
