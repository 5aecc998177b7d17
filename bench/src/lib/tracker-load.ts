/**
 * Simulated relays and viewers for the tracker bench, for two trackers: Relaycast's protocol and
 * bittorrent-tracker's WebSocket announce/offer protocol. Both sides do the same work per
 * operation: a viewer "join" is join → shortlist (Relaycast) or announce → announce response
 * (bittorrent); a "signal" is an offer forwarded to a relay (or peer) and its answer forwarded
 * back. The simulators parse with JSON.parse on both so the load generator costs the same.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  ErrorCode,
  RelaycastError,
  TRACKER_SUBPROTOCOL,
  encodeBase58,
  fromBase64,
  registrationSigningBytes,
  toBase64,
  type HeartbeatMessage,
  type JoinMessage,
  type RegisterMessage,
  type SignalMessage,
} from '@relaycast/protocol';
import { signEd25519 } from '@relaycast/protocol/node';
import { WebSocket } from 'ws';

/** A plausible data-channel offer/answer: the size signaling really carries. */
export const FAKE_SDP =
  [
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'a=msid-semantic: WMS',
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    'a=ice-ufrag:Ab3d',
    'a=ice-pwd:0123456789abcdefghijklmn',
    'a=ice-options:trickle',
    'a=fingerprint:sha-256 12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0:12:34:56:78:9A:BC:DE:F0',
    'a=setup:actpass',
    'a=mid:0',
    'a=sctp-port:5000',
    'a=max-message-size:262144',
  ].join('\r\n') + '\r\n';

/** Bounds one operation; a tracker that drops messages fails the run instead of hanging it. */
const OP_TIMEOUT_MS = 20_000;

export interface SimViewer {
  /** Joins (or re-announces in) swarm number `swarm`; resolves on the tracker's answer. */
  join(swarm: number): Promise<void>;
  /** Sends one offer through the tracker and resolves when the answer comes back. */
  signal(): Promise<void>;
  close(): void;
}

export interface TrackerDriver {
  readonly impl: 'relaycast' | 'bittorrent';
  /** Connects a relay that serves every swarm (Relaycast: registers; bittorrent: a seeder in each swarm). */
  addRelay(swarms: number): Promise<void>;
  addViewer(): Promise<SimViewer>;
  close(): void;
}

type Json = Record<string, unknown>;

/**
 * Opens a socket with its message handler attached from the start: the tracker's first message can
 * arrive in the same packet as the upgrade response, before an awaiting caller could attach one.
 */
function open(url: string, protocol: string | undefined, onMessage: (ws: WebSocket, m: Json) => void): Promise<WebSocket> {
  const ws = protocol === undefined ? new WebSocket(url, { perMessageDeflate: false }) : new WebSocket(url, protocol, { perMessageDeflate: false });
  ws.on('message', (data) => onMessage(ws, JSON.parse(String(data)) as Json));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** One pending operation per simulated viewer: the closed loop never has two. */
class Waiter {
  private pending: { match: (m: Json) => boolean; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;

  wait(what: string, match: (m: Json) => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        reject(new RelaycastError(ErrorCode.TIMEOUT, `tracker bench: no ${what} within ${OP_TIMEOUT_MS} ms`));
      }, OP_TIMEOUT_MS);
      this.pending = { match, resolve, reject, timer };
    });
  }

  offer(m: Json): void {
    const p = this.pending;
    if (p === undefined || !p.match(m)) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve();
  }

  fail(err: Error): void {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.reject(err);
  }
}

function swarmName(i: number): string {
  return `http://origin.bench/stream${i}/master.m3u8`;
}

export function relaycastDriver(url: string): TrackerDriver {
  const sockets = new Set<WebSocket>();
  const timers = new Set<NodeJS.Timeout>();
  let nextConnection = 0;
  return {
    impl: 'relaycast',
    async addRelay() {
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const der = publicKey.export({ format: 'der', type: 'spki' });
      const relayId = encodeBase58(new Uint8Array(der.subarray(der.byteLength - 32)));
      const registered = new Waiter();
      const done = registered.wait('registered', (m) => m['type'] === 'registered');
      const ws = await open(url, TRACKER_SUBPROTOCOL, (ws, m) => {
        if (m['type'] === 'hello') {
          const nonce = fromBase64(m['nonce'] as string);
          if (nonce === undefined) throw new RelaycastError(ErrorCode.MESSAGE_FIELD, 'bad nonce');
          const signature = toBase64(signEd25519(privateKey, registrationSigningBytes(nonce)));
          ws.send(
            JSON.stringify({
              type: 'register',
              relayId,
              signature,
              capacity: 1000,
              load: 0,
              region: '',
              pricePerGiB: '0',
              streams: [],
            } satisfies RegisterMessage),
          );
          const t = setInterval(
            () => ws.send(JSON.stringify({ type: 'heartbeat', capacity: 1000, load: 0, streams: [] } satisfies HeartbeatMessage)),
            m['heartbeatIntervalMs'] as number,
          );
          timers.add(t);
        } else if (m['type'] === 'signal') {
          const s = m['signal'] as Json;
          if (s['kind'] === 'offer')
            ws.send(
              JSON.stringify({
                type: 'signal',
                to: m['from'] as string,
                connectionId: m['connectionId'] as string,
                signal: { kind: 'answer', sdp: FAKE_SDP },
              } satisfies SignalMessage),
            );
        } else if (m['type'] === 'error') {
          registered.fail(new RelaycastError(ErrorCode.REGISTRATION_SIGNATURE, `relay registration refused: ${String(m['code'])} ${String(m['message'])}`));
        } else {
          registered.offer(m);
        }
      });
      sockets.add(ws);
      await done;
    },
    async addViewer() {
      const waiter = new Waiter();
      let relays: string[] = [];
      let turn = 0;
      const ws = await open(url, TRACKER_SUBPROTOCOL, (_ws, m) => {
        if (m['type'] === 'shortlist') relays = (m['relays'] as { relayId: string }[]).map((r) => r.relayId);
        if (m['type'] === 'error')
          waiter.fail(new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, `tracker error ${String(m['code'])}: ${String(m['message'])}`));
        waiter.offer(m);
      });
      sockets.add(ws);
      ws.on('close', () => waiter.fail(new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, 'tracker closed the socket')));
      return {
        join(swarm) {
          const p = waiter.wait('shortlist', (m) => m['type'] === 'shortlist');
          ws.send(JSON.stringify({ type: 'join', swarmId: swarmName(swarm), count: 3 } satisfies JoinMessage));
          return p;
        },
        signal() {
          const to = relays[turn++ % Math.max(1, relays.length)];
          if (to === undefined) return Promise.reject(new RelaycastError(ErrorCode.NO_RELAY, 'no relay in the shortlist'));
          const connectionId = `c${nextConnection++}`;
          const p = waiter.wait('answer', (m) => m['type'] === 'signal' && m['connectionId'] === connectionId);
          ws.send(JSON.stringify({ type: 'signal', to, connectionId, signal: { kind: 'offer', sdp: FAKE_SDP } } satisfies SignalMessage));
          return p;
        },
        close: () => {
          sockets.delete(ws);
          ws.terminate();
        },
      };
    },
    close() {
      for (const t of timers) clearInterval(t);
      for (const ws of sockets) ws.terminate();
      sockets.clear();
    },
  };
}

/** bittorrent-tracker's ids: 20-character binary strings. */
function id20(): string {
  return randomBytes(20).toString('latin1');
}

export function bittorrentDriver(url: string): TrackerDriver {
  const sockets = new Set<WebSocket>();
  const infoHashes: string[] = [];
  const infoHash = (i: number): string => (infoHashes[i] ??= id20());

  /** Every simulated peer answers offers, as a WebTorrent peer would (viewers get offers from viewers here). */
  function answerOffers(ws: WebSocket, peerId: string, m: Json): void {
    if (m['offer'] === undefined) return;
    ws.send(
      JSON.stringify({
        action: 'announce',
        info_hash: m['info_hash'],
        peer_id: peerId,
        to_peer_id: m['peer_id'],
        offer_id: m['offer_id'],
        answer: { type: 'answer', sdp: FAKE_SDP },
      }),
    );
  }

  return {
    impl: 'bittorrent',
    async addRelay(swarms) {
      const peerId = id20();
      const waiter = new Waiter();
      const ws = await open(url, undefined, (ws, m) => {
        answerOffers(ws, peerId, m);
        waiter.offer(m);
      });
      sockets.add(ws);
      for (let s = 0; s < swarms; s++) {
        const hash = infoHash(s);
        const p = waiter.wait('announce response', (m) => m['interval'] !== undefined && m['info_hash'] === hash);
        ws.send(
          JSON.stringify({
            action: 'announce',
            info_hash: hash,
            peer_id: peerId,
            event: 'started',
            uploaded: 0,
            downloaded: 0,
            left: 0,
            numwant: 0,
            offers: [],
          }),
        );
        await p;
      }
    },
    async addViewer() {
      const peerId = id20();
      const waiter = new Waiter();
      let current: string | undefined;
      const ws = await open(url, undefined, (ws, m) => {
        if (m['failure reason'] !== undefined)
          waiter.fail(new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, `tracker failure: ${String(m['failure reason'])}`));
        answerOffers(ws, peerId, m);
        waiter.offer(m);
      });
      sockets.add(ws);
      ws.on('close', () => waiter.fail(new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, 'tracker closed the socket')));
      const announce = (extra: Json): void => {
        ws.send(JSON.stringify({ action: 'announce', info_hash: current, peer_id: peerId, uploaded: 0, downloaded: 0, left: 1, ...extra }));
      };
      return {
        join(swarm) {
          const hash = infoHash(swarm);
          const first = current !== hash;
          current = hash;
          const p = waiter.wait('announce response', (m) => m['interval'] !== undefined && m['info_hash'] === hash);
          announce(first ? { event: 'started', offers: [] } : { offers: [] });
          return p;
        },
        signal() {
          if (current === undefined) return Promise.reject(new RelaycastError(ErrorCode.INTERNAL, 'signal before join'));
          const offerId = id20();
          const p = waiter.wait('answer', (m) => m['answer'] !== undefined && m['offer_id'] === offerId);
          announce({ offers: [{ offer: { type: 'offer', sdp: FAKE_SDP }, offer_id: offerId }] });
          return p;
        },
        close: () => {
          sockets.delete(ws);
          ws.terminate();
        },
      };
    },
    close() {
      for (const ws of sockets) ws.terminate();
      sockets.clear();
    },
  };
}
