/**
 * The three kinds of viewer the throughput bench compares, behind one shape: a relay viewer
 * speaking the relay protocol over a data channel (test/helpers/raw-viewer.ts), a viewer of the
 * protocol-less node-datachannel server, and a keep-alive HTTP client.
 */
import { get, Agent } from 'node:http';
import { ErrorCode, FrameType, RelaycastError, encodeFrame } from '@relaycast/protocol';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { LOOPBACK_RTC } from '../../../test/helpers/node-client.js';
import { openRawChannel, type RawChannel } from '../../../test/helpers/raw-viewer.js';
import type { Worker } from './worker.js';

export interface Fetched {
  bytes: number;
  /** Request sent to first payload byte. */
  ttfbMs: number;
  /** Request sent to last byte. */
  totalMs: number;
}

export interface BenchViewer {
  /** Fetches one segment whole; `name` is relative to the server's base. */
  fetch(name: string): Promise<Fetched>;
  close(): void;
}

/** Bounds one transfer; a hung one fails the run rather than the machine. */
const FETCH_TIMEOUT_MS = 30_000;

/** A viewer of a real relay: joins the tracker, opens a data channel to `relayId`, sends REQUEST frames. */
export async function relayViewer(trackerUrl: string, swarmId: string, relayId: string, originBase: string): Promise<BenchViewer & { channel: RawChannel }> {
  const channel = await openRawChannel(trackerUrl, swarmId, relayId);
  let nextId = 1;
  return {
    channel,
    async fetch(name) {
      const requestId = nextId++;
      const t0 = performance.now();
      channel.send(encodeFrame({ type: FrameType.REQUEST, requestId, url: new URL(name, originBase).href }));
      let bytes = 0;
      let ttfbMs = -1;
      for (;;) {
        const f = await channel.nextFrame(FETCH_TIMEOUT_MS);
        if (f.requestId !== requestId) continue;
        if (f.type === FrameType.DATA) {
          if (ttfbMs < 0) ttfbMs = performance.now() - t0;
          bytes += f.chunk.byteLength;
        } else if (f.type === FrameType.END) {
          return { bytes, ttfbMs, totalMs: performance.now() - t0 };
        } else if (f.type === FrameType.ABSENT || f.type === FrameType.ERROR) {
          throw new RelaycastError(ErrorCode.RELAY_ERROR, `relay answered ${f.type === FrameType.ABSENT ? 'ABSENT' : `ERROR ${f.code}`} for ${name}`);
        }
      }
    },
    close: () => channel.close(),
  };
}

/** Waits until the local description holds every candidate (no trickle in the raw baseline). */
async function gatheringComplete(pc: RTCPeerConnection): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (pc.iceGatheringState !== 'complete') {
    if (Date.now() > deadline) throw new RelaycastError(ErrorCode.TIMEOUT, 'ICE gathering did not complete');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A viewer of the protocol-less node-datachannel worker (raw-dc-worker.ts): sends a name, counts `size` bytes back. */
export async function rawDataChannelViewer(worker: Worker<unknown>, sizeOf: (name: string) => number): Promise<BenchViewer> {
  const pc = new RTCPeerConnection(LOOPBACK_RTC);
  const dc = pc.createDataChannel('raw');
  dc.binaryType = 'arraybuffer';
  const opened = new Promise<void>((resolve) => dc.addEventListener('open', () => resolve()));
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringComplete(pc);
  const { sdp } = await worker.request<{ sdp: string }>('offer', { sdp: pc.localDescription?.sdp });
  await pc.setRemoteDescription({ type: 'answer', sdp });
  await Promise.race([
    opened,
    new Promise((_, reject) => setTimeout(() => reject(new RelaycastError(ErrorCode.TIMEOUT, 'raw data channel did not open')), 15_000)),
  ]);
  let onBytes: ((n: number) => void) | undefined;
  dc.onmessage = (ev: MessageEvent) => onBytes?.((ev.data as ArrayBuffer).byteLength);
  return {
    fetch(name) {
      const size = sizeOf(name);
      const t0 = performance.now();
      return new Promise<Fetched>((resolve, reject) => {
        let bytes = 0;
        let ttfbMs = -1;
        const timer = setTimeout(() => reject(new RelaycastError(ErrorCode.TIMEOUT, `raw transfer of ${name} timed out`)), FETCH_TIMEOUT_MS);
        onBytes = (n) => {
          if (ttfbMs < 0) ttfbMs = performance.now() - t0;
          bytes += n;
          if (bytes >= size) {
            clearTimeout(timer);
            onBytes = undefined;
            resolve({ bytes, ttfbMs, totalMs: performance.now() - t0 });
          }
        };
        dc.send(name);
      });
    },
    close() {
      dc.close();
      pc.close();
    },
  };
}

/** A keep-alive HTTP client on one connection, like a browser fetching segments one after another. */
export function httpViewer(base: string): BenchViewer {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return {
    fetch(name) {
      const t0 = performance.now();
      return new Promise<Fetched>((resolve, reject) => {
        const req = get(new URL(name, base), { agent, timeout: FETCH_TIMEOUT_MS }, (res) => {
          let bytes = 0;
          let ttfbMs = -1;
          res.on('data', (chunk: Buffer) => {
            if (ttfbMs < 0) ttfbMs = performance.now() - t0;
            bytes += chunk.byteLength;
          });
          res.on('end', () => {
            if (res.statusCode !== 200 && res.statusCode !== 206) reject(new RelaycastError(ErrorCode.ORIGIN_HTTP, `HTTP ${res.statusCode} for ${name}`));
            else resolve({ bytes, ttfbMs, totalMs: performance.now() - t0 });
          });
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new RelaycastError(ErrorCode.TIMEOUT, `HTTP ${name} timed out`)));
        req.on('error', reject);
      });
    },
    close: () => agent.destroy(),
  };
}
