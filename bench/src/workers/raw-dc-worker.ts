/**
 * Baseline: node-datachannel with no protocol. A viewer sends a file name as text; the worker
 * answers with the file's bytes in 64 KiB messages, pausing at the relay's water marks. Signaling
 * is one offer/answer over IPC with all candidates inside (no trickle).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import nodeDataChannel from 'node-datachannel';
import { serveWorker } from '../lib/worker.js';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

export interface RawDcWorkerConfig {
  dir: string;
  files: string[];
  /** Bytes per message: the relay's largest frame, so both send the same number of messages. */
  messageBytes: number;
  highWaterBytes: number;
  lowWaterBytes: number;
  /**
   * Copy every message into a freshly allocated Uint8Array before sending, as the relay's frame
   * encoder does: isolates the cost of that allocation and copy (profiling mode `raw-copy`).
   */
  copyEachMessage?: boolean | undefined;
}

type Pc = InstanceType<typeof nodeDataChannel.PeerConnection>;
type Dc = ReturnType<Pc['createDataChannel']>;

/** Loopback answers gather in milliseconds; this only bounds a broken one. */
const GATHER_TIMEOUT_MS = 10_000;

serveWorker<RawDcWorkerConfig, Record<string, never>>(async (config) => {
  const bodies = new Map<string, Buffer>();
  for (const f of config.files) bodies.set(f, await readFile(join(config.dir, f)));
  const peers = new Set<Pc>();
  let nextPeer = 0;

  function serve(dc: Dc): void {
    // One transfer at a time per channel, like one relay request: queued names wait their turn.
    const queue: Buffer[] = [];
    let current: { body: Buffer; offset: number } | undefined;
    const pump = (): void => {
      for (;;) {
        if (current === undefined) {
          const next = queue.shift();
          if (next === undefined) return;
          current = { body: next, offset: 0 };
        }
        while (current.offset < current.body.byteLength) {
          if (dc.bufferedAmount() > config.highWaterBytes) return;
          const end = Math.min(current.offset + config.messageBytes, current.body.byteLength);
          const piece = current.body.subarray(current.offset, end);
          dc.sendMessageBinary(config.copyEachMessage === true ? new Uint8Array(piece) : piece);
          current.offset = end;
        }
        current = undefined;
      }
    };
    dc.setBufferedAmountLowThreshold(config.lowWaterBytes);
    dc.onBufferedAmountLow(pump);
    dc.onMessage((msg) => {
      const body = typeof msg === 'string' ? bodies.get(msg) : undefined;
      if (body === undefined) return dc.close();
      queue.push(body);
      if (queue.length > 64) return dc.close();
      pump();
    });
  }

  return {
    info: {},
    handlers: {
      offer: async (arg) => {
        const pc = new nodeDataChannel.PeerConnection(`raw${nextPeer++}`, { iceServers: [], bindAddress: '127.0.0.1', maxMessageSize: 256 * 1024 });
        peers.add(pc);
        pc.onStateChange((s) => {
          if (s === 'closed' || s === 'failed') peers.delete(pc);
        });
        pc.onDataChannel(serve);
        const gathered = new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new RelaycastError(ErrorCode.TIMEOUT, 'ICE gathering timed out')), GATHER_TIMEOUT_MS);
          pc.onGatheringStateChange((s) => {
            if (s === 'complete') {
              clearTimeout(t);
              resolve();
            }
          });
        });
        pc.setRemoteDescription((arg as { sdp: string }).sdp, 'offer');
        await gathered;
        const answer = pc.localDescription();
        if (answer === null) throw new RelaycastError(ErrorCode.INTERNAL, 'no local answer');
        return { sdp: answer.sdp };
      },
    },
    async close() {
      for (const pc of peers) pc.close();
      nodeDataChannel.cleanup();
    },
  };
});
