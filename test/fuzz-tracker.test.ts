/**
 * Hardening issue, part 1: the tracker's WebSocket message handling under fast-check, through its
 * real entry point (a tracker listening on port 0, real `ws` clients over loopback). Three sockets
 * send the generated frames: a registered relay, a viewer that was handed that relay, and a fresh
 * connection, so role checks, signaling forwarding and reports all run with hostile input.
 * The tracker runs in this process so its heap can be watched; rate limits are lifted because
 * they would turn most inputs into RC_ERR_RATE_LIMITED, and report penalties made tiny (both have
 * their own tests).
 */
import { ErrorCode, TRACKER_SUBPROTOCOL, decodeTrackerServerMessage, encodeTrackerMessage, isErrorCode, type TrackerServerMessage } from '@relaycast/protocol';
import { startTracker, type Tracker } from '@relaycast/tracker';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { makeRelayKey, signRegistration, type RelayKey } from '@relaycast/tracker/testing';
import { withoutStackTraces } from '@relaycast/protocol/testing';
import { anyString, trackerObjectArb, trackerTextArb } from './helpers/fuzz-arbitraries.js';
import { MAX_FUZZ_HEAP_GROWTH_BYTES, fuzzParams, fuzzTimeoutMs, heapProbe } from './helpers/fuzz.js';

/** Close codes the tracker may legitimately end a fuzzed socket with (never 1011 or an abnormal 1006). */
const EXPECTED_CLOSE_CODES = new Set([
  1007, // ws: invalid UTF-8 in a text frame
  1008, // policy violation
  1009, // frame above maxPayload
  4001, // registration refused
  4002, // replaced by a newer registration of the same relay
]);

const SWARM = 'https://origin.test/live/master.m3u8';

/** One client socket that records every frame and close, and can wait until the tracker caught up. */
class FuzzSocket {
  readonly received: (TrackerServerMessage | Error)[] = [];
  closeCode: number | undefined;
  hello: Extract<TrackerServerMessage, { type: 'hello' }> | undefined;
  private pongWaiters: (() => void)[] = [];
  private helloWaiter: (() => void) | undefined;
  private readonly closed: Promise<void>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary) => {
      try {
        if (isBinary) throw new Error('tracker sent a binary frame');
        const msg = decodeTrackerServerMessage(data.toString('utf8'));
        if (msg.type === 'hello') {
          this.hello = msg;
          this.helloWaiter?.();
        } else this.received.push(msg);
      } catch (err) {
        this.received.push(err as Error);
      }
    });
    ws.on('pong', () => this.pongWaiters.shift()?.());
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      ws.on('close', (code) => {
        this.closeCode = code;
        for (const w of this.pongWaiters.splice(0)) w();
        resolve();
      }),
    );
  }

  static async open(url: string): Promise<FuzzSocket> {
    const s = new FuzzSocket(new WebSocket(url, TRACKER_SUBPROTOCOL, { perMessageDeflate: false }));
    await new Promise<void>((resolve, reject) => {
      s.ws.once('open', () => resolve());
      s.ws.once('error', reject);
    });
    if (s.hello === undefined) await new Promise<void>((resolve) => (s.helloWaiter = resolve));
    return s;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Resolves once the tracker has handled everything sent before: it handles frames in order and
   * synchronously, and answers a ping only after the frames ahead of it.
   */
  async settle(): Promise<void> {
    if (!this.open) return this.closed;
    await new Promise<void>((resolve) => {
      this.pongWaiters.push(resolve);
      this.ws.ping();
    });
  }

  async next<T extends TrackerServerMessage['type']>(type: T): Promise<Extract<TrackerServerMessage, { type: T }>> {
    for (let i = 0; i < 200; i++) {
      const at = this.received.findIndex((m) => !(m instanceof Error) && m.type === type);
      if (at >= 0) return this.received.splice(at, 1)[0] as Extract<TrackerServerMessage, { type: T }>;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no ${type} from the tracker`);
  }

  close(): Promise<void> {
    this.ws.close();
    return this.closed;
  }
}

/** What the tracker sent a fuzzed socket: decodable messages, and errors only with known, non-internal codes. */
function checkReceived(s: FuzzSocket): void {
  for (const m of s.received.splice(0)) {
    if (m instanceof Error) throw new Error(`tracker sent an undecodable message: ${m.message}`);
    if (m.type === 'error') {
      expect(isErrorCode(m.code), m.code).toBe(true);
      expect(m.code).not.toBe(ErrorCode.INTERNAL);
    }
  }
  if (s.closeCode !== undefined) expect(EXPECTED_CLOSE_CODES.has(s.closeCode), `close code ${s.closeCode}`).toBe(true);
}

type Who = 'relay' | 'viewer' | 'fresh';

interface FuzzInput {
  who: Who;
  data: string | Buffer;
  binary: boolean;
}

/**
 * Messages built around the live ids ($RELAY, $VIEWER, $PEER are replaced when sent), so that handlers
 * get past "unknown peer" into forwarding and reporting.
 */
const contextualArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({
    type: fc.constant('signal'),
    // $PEER is the other side of the sender: the relay for the viewer and the viewer for the relay.
    to: fc.constantFrom('$PEER', '$PEER', '$RELAY', '$VIEWER', 'AAAAAAAA'),
    connectionId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), fc.constant('c1')),
    signal: fc.oneof(
      fc.record({ kind: fc.constantFrom('offer', 'answer'), sdp: anyString(200) }),
      fc.record({ kind: fc.constant('candidate'), candidate: anyString(100), sdpMid: fc.option(fc.string({ maxLength: 70 }), { nil: undefined }) }),
      fc.constant({ kind: 'end-of-candidates' }),
      fc.jsonValue({ maxDepth: 1 }),
    ),
  }),
  fc.record({
    type: fc.constant('report'),
    relayId: fc.constantFrom('$RELAY', '11111111111111111111111111111111'),
    reason: fc.constantFrom('integrity', 'other'),
    url: fc.oneof(fc.webUrl(), anyString(30)),
    expectedSha256: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string()),
    receivedSha256: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string()),
  }),
  fc.record({
    type: fc.constant('join'),
    swarmId: fc.oneof(fc.constant(SWARM), anyString(60, 1), fc.webUrl()),
    region: fc.option(fc.stringMatching(/^[a-z0-9-]{0,34}$/), { nil: undefined }),
    count: fc.option(fc.oneof(fc.integer({ min: -2, max: 20 }), fc.double()), { nil: undefined }),
  }),
  fc.record({
    type: fc.constant('heartbeat'),
    capacity: fc.oneof(fc.integer({ min: -1, max: 1_000_001 }), fc.double()),
    load: fc.integer({ min: -1, max: 1_000_001 }),
    streams: fc.oneof(fc.array(fc.oneof(fc.constant(SWARM), anyString(30)), { maxLength: 70 }), fc.jsonValue({ maxDepth: 1 })),
  }),
);

const inputArb: fc.Arbitrary<FuzzInput> = fc
  .tuple(
    fc.constantFrom<Who>('relay', 'viewer', 'fresh'),
    fc.oneof(
      { weight: 4, arbitrary: trackerTextArb.map((t) => ({ data: t, binary: false })) },
      { weight: 4, arbitrary: contextualArb.map((o) => ({ data: JSON.stringify(o), binary: false })) },
      { weight: 1, arbitrary: trackerObjectArb.map((o) => ({ data: Buffer.from(JSON.stringify(o)), binary: true })) },
      // Invalid UTF-8 in a text frame, and frames over the size caps.
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => ({ data: Buffer.from(b), binary: false })) },
      {
        weight: 1,
        arbitrary: fc
          .integer({ min: 8 * 1024 - 64, max: 9 * 1024 })
          .map((n) => ({ data: JSON.stringify({ type: 'join', swarmId: 'x'.repeat(n) }), binary: false })),
      },
    ),
  )
  .map(([who, m]) => ({ who, ...m }));

describe('fuzz: tracker WebSocket message handling (real sockets, tracker in this process)', () => {
  withoutStackTraces();
  let tracker: Tracker;
  let key: RelayKey;
  const sockets: Partial<Record<Who, FuzzSocket>> = {};
  let viewerId = '';
  let reopened = 0;

  async function registerRelay(): Promise<FuzzSocket> {
    const s = await FuzzSocket.open(tracker.url);
    const hello = s.hello as Extract<TrackerServerMessage, { type: 'hello' }>;
    s.ws.send(
      encodeTrackerMessage({
        type: 'register',
        relayId: key.relayId,
        signature: signRegistration(key.privateKey, hello.nonce),
        capacity: 100,
        load: 0,
        region: '',
        pricePerGiB: '0',
        streams: [SWARM],
      }),
    );
    await s.next('registered');
    return s;
  }

  async function joinViewer(): Promise<FuzzSocket> {
    const s = await FuzzSocket.open(tracker.url);
    s.ws.send(encodeTrackerMessage({ type: 'join', swarmId: SWARM }));
    await s.next('shortlist');
    viewerId = s.hello?.peerId ?? '';
    return s;
  }

  /** Puts every role back after a socket was closed (refused registration, oversized frame, ...). */
  async function ensureSockets(): Promise<void> {
    if (sockets.relay?.open !== true) {
      sockets.relay = await registerRelay();
      reopened++;
    }
    if (sockets.viewer?.open !== true) {
      // A fuzzed heartbeat may have left the relay "full"; the new viewer must be handed it.
      sockets.relay.ws.send(encodeTrackerMessage({ type: 'heartbeat', capacity: 100, load: 0, streams: [SWARM] }));
      await sockets.relay.settle();
      sockets.viewer = await joinViewer();
      reopened++;
    }
    if (sockets.fresh?.open !== true) {
      sockets.fresh = await FuzzSocket.open(tracker.url);
      reopened++;
    }
  }

  beforeAll(async () => {
    tracker = await startTracker({
      port: 0,
      host: '127.0.0.1',
      limits: { rateLimitPerSec: 1_000_000, rateLimitBurst: 1_000_000, maxDroppedMessages: 1_000_000 },
      // Fuzzed integrity reports from hundreds of reconnecting viewers would otherwise take the
      // relay out of selection, and later viewers would never get to signal it.
      reputation: { reportPenalty: 0.0001 },
    });
    key = makeRelayKey();
    await ensureSockets();
  });

  afterAll(async () => {
    await Promise.all(Object.values(sockets).map((s) => s?.close()));
    await tracker?.close();
  });

  it(
    'answers every generated frame with decodable messages and typed errors, and keeps serving',
    async () => {
      const heap = heapProbe();
      await fc.assert(
        fc.asyncProperty(inputArb, async (input) => {
          await ensureSockets();
          const s = sockets[input.who] as FuzzSocket;
          const peer = input.who === 'relay' ? viewerId : key.relayId;
          const text =
            typeof input.data === 'string'
              ? input.data.replaceAll('$PEER', peer).replaceAll('$RELAY', key.relayId).replaceAll('$VIEWER', viewerId)
              : input.data;
          s.ws.send(text, { binary: input.binary });
          await s.settle();
          for (const each of Object.values(sockets)) if (each !== undefined) checkReceived(each);
          heap.tick();
        }),
        fuzzParams(),
      );
      expect(heap.maxGrowthBytes).toBeLessThan(MAX_FUZZ_HEAP_GROWTH_BYTES);

      // Still serving. The fuzzed relay may now be "full" (fuzzed heartbeats) or reported unhealthy
      // (fuzzed reports), both by design, so a fresh relay registers and a new viewer must get it.
      await ensureSockets();
      expect(tracker.status().relays.map((r) => r.relayId)).toEqual([key.relayId]);
      key = makeRelayKey();
      const fresh = await registerRelay();
      const probe = await FuzzSocket.open(tracker.url);
      probe.ws.send(encodeTrackerMessage({ type: 'join', swarmId: SWARM }));
      expect((await probe.next('shortlist')).relays.map((r) => r.relayId)).toContain(key.relayId);
      // No connection leaked: the three fuzzed sockets, the fresh relay and the probe.
      expect(tracker.status().connections).toBe(5);
      await probe.close();
      await fresh.close();
      // The run exercised refusals that close sockets (so the recovery path is covered), not only replies.
      expect(reopened).toBeGreaterThan(3);
    },
    fuzzTimeoutMs(8_000),
  );
});
