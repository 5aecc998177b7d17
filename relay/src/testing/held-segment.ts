import { FrameType, decodeFrames, encodeFrame } from '@relaycast/protocol';
import { connectViewerViaTracker, startFakeTracker, type FakeTracker, type SignaledViewer, type TrackerConnection } from './fake-tracker.js';
import { deferred, serveBytes, startTestOrigin, testBytes } from './origin-server.js';
import { eventually } from './transport-compliance.js';

const SEGMENT = '/media/held.ts';

/**
 * A tracker and an origin for a relay under test (a real bin), in which a viewer's segment request
 * stays in flight: the origin sends the first bytes, then holds the rest. A relay's graceful close
 * waits for such a request (up to its grace period), so a test can stop the relay and find it still
 * closing, and see whether a second stop signal cuts that short.
 */
export interface HeldSegmentWorld {
  /** `--tracker URL --allow-origin URL`: what joins a relay to this world. */
  readonly relayArgs: readonly string[];
  readonly tracker: FakeTracker;
  /** Resolves once a relay has registered (its signature checked). */
  registered(timeoutMs?: number): Promise<TrackerConnection>;
  /** A viewer connects through the tracker and requests the held segment; resolves at its first DATA frame. */
  holdRequest(): Promise<void>;
  /** Resolves when the relay has closed its tracker connection, the first step of its graceful close. */
  unregistered(): Promise<void>;
  /** Lets the origin finish, closes the viewer, the origin and the tracker. */
  close(): Promise<void>;
}

export async function startHeldSegmentWorld(): Promise<HeldSegmentWorld> {
  const tracker = await startFakeTracker();
  const origin = await startTestOrigin();
  const gate = deferred();
  origin.route(SEGMENT, serveBytes(testBytes(300_000, 3), { chunkBytes: 50_000, gate: gate.promise }));
  let relay: TrackerConnection | undefined;
  let viewer: SignaledViewer | undefined;
  const registered = async (timeoutMs = 30_000): Promise<TrackerConnection> => {
    await eventually(() => tracker.connections.some((c) => c.signatureValid === true), 'the relay to register', timeoutMs);
    relay = tracker.connections.find((c) => c.signatureValid === true) as TrackerConnection;
    return relay;
  };
  return {
    relayArgs: ['--tracker', tracker.url, '--allow-origin', origin.url('/media/')],
    tracker,
    registered,
    async holdRequest() {
      viewer = await connectViewerViaTracker(relay ?? (await registered()), 'viewer-00000002', 'held-1');
      let data = false;
      viewer.dc.onmessage = (e: MessageEvent) => {
        data ||= decodeFrames(new Uint8Array(e.data as ArrayBuffer)).some((f) => f.type === FrameType.DATA);
      };
      viewer.dc.send(encodeFrame({ type: FrameType.REQUEST, requestId: 1, url: origin.url(SEGMENT) }));
      await eventually(() => data, 'the first DATA of the held segment');
    },
    async unregistered() {
      const ws = (relay ?? (await registered())).ws;
      if (ws.readyState === ws.CLOSED) return;
      await new Promise<void>((resolve) => ws.once('close', () => resolve()));
    },
    async close() {
      gate.resolve();
      viewer?.close();
      await origin.close();
      await tracker.close();
    },
  };
}
