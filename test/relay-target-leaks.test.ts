/**
 * Hardening issue, part 2: 200 viewers opening and dropping channels in a loop leave no leaked
 * peer connections, file descriptors, threads or timers in the relay process.
 *
 * Counted from outside the relay: its /status (peers, pending peers, channels, active requests),
 * /proc/<pid> (open descriptors, threads), and a probe preloaded with NODE_OPTIONS that lists the
 * process's active resources (ref'ed timers, sockets, handles). Unref'ed timers are not visible to
 * that probe; libdatachannel's native timers are not visible at all (its threads and sockets are).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FRAME_VERSION, FrameType, concatBytes, encodeFrame, swarmIdFromUrl } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedVod, linkVod } from './helpers/media.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { GiveUp, startRelayProcess, startTrackerProcess, waitFor, type RelayProc, type TrackerProc } from './helpers/processes.js';
import { useProcesses } from './helpers/use-processes.js';
import { openRawChannel, type RawChannel } from './helpers/raw-viewer.js';
import { handleFigures, processFigures, relayStatus, statusUrlOf, withHandleProbe, type RelayStatus } from './helpers/relay-probe.js';

const CYCLES = 200;
/**
 * Viewers connecting at once. More would overlap more, but every viewer's answer and candidates go
 * through the relay's one tracker socket, and the tracker's per-connection rate limit (50 msg/s,
 * burst 100) then drops the relay's signaling: at 10 at once, channels failed to open.
 */
const CONCURRENCY = 3;
const WARM_UP_CYCLES = CONCURRENCY;

type Drop = 'after-reading' | 'mid-transfer' | 'idle' | 'violation' | 'unread-requests';
const DROPS: Drop[] = ['after-reading', 'mid-transfer', 'idle', 'violation', 'unread-requests'];

describe('relay as a target: channels opened and dropped in a loop', () => {
  useProcesses();
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let relay: RelayProc;
  let statusUrl: string;
  let swarmId: string;
  let segments: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-leaks-'));
    const vod = await linkVod(await cachedVod({ format: 'ts' }), join(dir, 'vod'));
    origin = await startOrigin(dir);
    tracker = await startTrackerProcess();
    relay = await withHandleProbe(() =>
      startRelayProcess(tracker, { keypair: join(dir, 'keys', 'r.json'), allowOrigin: [`${origin.url}vod/`], extra: ['--status-port', '0'] }),
    );
    statusUrl = await statusUrlOf(relay);
    swarmId = swarmIdFromUrl(`${origin.url}vod/master.m3u8`);
    segments = vod.renditions.flatMap((r) => r.segments.map((s) => `${origin.url}vod/${s}`));
  });

  afterAll(async () => {
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Viewers whose data channel never opened (see the note on failed peers in docs/RELIABILITY.md). */
  let openFailures = 0;

  async function cycle(i: number): Promise<void> {
    const drop = DROPS[i % DROPS.length] as Drop;
    const url = segments[i % segments.length] as string;
    let ch: RawChannel;
    try {
      ch = await openRawChannel(tracker.url, swarmId);
    } catch {
      // The relay side of such a peer failed and closed; what it leaves behind is counted below.
      openFailures++;
      return;
    }
    try {
      if (drop === 'after-reading') {
        ch.send(encodeFrame({ type: FrameType.REQUEST, requestId: 1, url }));
        for (;;) {
          const f = await ch.nextFrame();
          if (f.type === FrameType.END || f.type === FrameType.ERROR || f.type === FrameType.ABSENT) break;
        }
      } else if (drop === 'mid-transfer') {
        ch.send(encodeFrame({ type: FrameType.REQUEST, requestId: 1, url }));
        await ch.nextFrame();
      } else if (drop === 'violation') {
        // A frame of an unknown type: the relay answers ERROR and closes the channel itself.
        ch.send(Uint8Array.from([0, 0, 0, 6, FRAME_VERSION, 99, 0, 0, 0, 1]));
        await ch.closed;
      } else if (drop === 'unread-requests') {
        ch.send(concatBytes(segments.slice(0, 8).map((u, k) => encodeFrame({ type: FrameType.REQUEST, requestId: k + 1, url: u }))));
      }
    } finally {
      ch.close();
    }
  }

  async function runCycles(from: number, to: number): Promise<void> {
    let next = from;
    const worker = async (): Promise<void> => {
      while (next < to) await cycle(next++);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  }

  /** The relay has let go of every viewer: no peer, channel or request left. */
  async function quiet(): Promise<RelayStatus> {
    return waitFor(
      'the relay to release every viewer',
      async () => {
        if (relay.exited) throw new GiveUp(`relay exited:\n${relay.output()}`);
        const s = await relayStatus(statusUrl);
        return (s.peers === 0 && s.pendingPeers === 0 && s.channels === 0 && s.activeRequests === 0 && s) || undefined;
      },
      60_000,
      250,
    );
  }

  it(`leaves no peer, descriptor, thread or timer behind after ${CYCLES} viewers`, async () => {
    const pid = relay.child.pid as number;
    // Warm-up: first use creates lasting state (origin keep-alive pool, cache, native thread pools).
    await runCycles(0, WARM_UP_CYCLES);
    await quiet();
    const before = { figures: await processFigures(pid), handles: await handleFigures(relay), status: await relayStatus(statusUrl) };

    const failuresBefore = openFailures;
    await runCycles(WARM_UP_CYCLES, WARM_UP_CYCLES + CYCLES);
    const after = await quiet();
    const opened = CYCLES - (openFailures - failuresBefore);
    expect(opened).toBeGreaterThanOrEqual(CYCLES * 0.8);
    expect(after.requests - before.status.requests).toBeGreaterThan(0);
    expect(after.protocolViolations - before.status.protocolViolations).toBeGreaterThan(0);

    // Descriptors and threads come back to where they were; the origin's idle keep-alive sockets
    // (closed by the origin after its 5 s idle timeout) may take a few seconds.
    const figures = await waitFor(
      'descriptors and threads to return to the baseline',
      async () => {
        const f = await processFigures(pid);
        return (f.fds <= before.figures.fds && f.threads <= before.figures.threads && f) || undefined;
      },
      30_000,
      500,
    ).catch(async (err: unknown) => {
      throw new Error(`${String(err)}; before ${JSON.stringify(before.figures)}, now ${JSON.stringify(await processFigures(pid))}`);
    });
    expect(figures.fds).toBeLessThanOrEqual(before.figures.fds);
    expect(figures.threads).toBeLessThanOrEqual(before.figures.threads);

    // Timers (unref'ed included) and event-loop resources likewise. A timer still pending here
    // would be one a closed peer or channel forgot to clear.
    const handles = await waitFor(
      'timers and event-loop resources to return to the baseline',
      async () => {
        const h = await handleFigures(relay);
        const resourcesBack = Object.entries(h.resources).every(([type, n]) => n <= (before.handles.resources[type] ?? 0));
        return (resourcesBack && h.liveTimers <= before.handles.liveTimers && h) || undefined;
      },
      10_000,
      500,
    ).catch(async (err: unknown) => {
      throw new Error(`${String(err)}; before ${JSON.stringify(before.handles)}, now ${JSON.stringify(await handleFigures(relay))}`);
    });
    for (const [type, n] of Object.entries(handles.resources)) expect(n, type).toBeLessThanOrEqual(before.handles.resources[type] ?? 0);
    expect(handles.liveTimers).toBeLessThanOrEqual(before.handles.liveTimers);
  }, 600_000);
});
