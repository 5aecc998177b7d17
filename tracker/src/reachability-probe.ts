import nodeDataChannel from 'node-datachannel';
import { stripSdpCandidates, type SignalPayload } from '@relaycast/protocol';

/** Outcome of one probe: whether the relay answered unsolicited traffic, and where. */
export interface ProbeResult {
  reachable: boolean;
  /** `ip:port` of the relay candidate the probe connected to. */
  address?: string | undefined;
}

/** One probe in flight: the hub feeds it the relay's signals. */
export interface ProbeSession {
  deliver(signal: SignalPayload): void;
  readonly result: Promise<ProbeResult>;
}

/** Starts a probe; `send` carries the probe's offer to the relay through the tracker. */
export type StartProbe = (opts: { id: string; send: (signal: SignalPayload) => void; timeoutMs: number; signal: AbortSignal }) => ProbeSession;

/**
 * A reachability probe over real WebRTC: the tracker offers a data channel to the relay exactly as
 * a viewer would, but never tells the relay its own candidates (and strips any from the offer).
 * The relay can then only answer checks it receives, so the channel opens only if the relay's
 * candidates accept unsolicited traffic: a public address or a working port mapping. A relay
 * behind a NAT without a mapping cannot hole-punch towards an address it does not know.
 */
export function createWebRtcProbe(opts: { bindAddress?: string | undefined }): StartProbe {
  return ({ id, send, timeoutMs, signal }) => {
    const pc = new nodeDataChannel.PeerConnection(`probe-${id}`, { iceServers: [], bindAddress: opts.bindAddress });
    let settle!: (r: ProbeResult) => void;
    const result = new Promise<ProbeResult>((resolve) => (settle = resolve));
    let done = false;
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      try {
        pc.close();
      } catch {
        // already torn down
      }
      settle(r);
    };
    const onAbort = (): void => finish({ reachable: false });
    const timer = setTimeout(() => finish({ reachable: false }), timeoutMs);
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });

    pc.onLocalDescription((sdp, type) => {
      if (type === 'offer') send({ kind: 'offer', sdp: stripSdpCandidates(sdp) });
    });
    // pc.onLocalCandidate is deliberately not forwarded: see above.
    // 'connected' means ICE and DTLS completed both ways: the relay is reachable. Waiting for the
    // data channel would add a round trip and depend on what the relay does with a channel it does
    // not serve (it closes it).
    pc.onStateChange((state) => {
      if (state === 'connected') finish({ reachable: true, address: selectedRemote(pc) });
      else if (state === 'failed' || state === 'closed') finish({ reachable: false });
    });
    // A data channel gives the offer its m=application section; it is never used.
    pc.createDataChannel('reachability');
    if (signal.aborted) finish({ reachable: false });

    return {
      result,
      deliver(s) {
        if (done) return;
        try {
          if (s.kind === 'answer') pc.setRemoteDescription(s.sdp, 'answer');
          else if (s.kind === 'candidate') pc.addRemoteCandidate(s.candidate, s.sdpMid ?? '0');
        } catch {
          // A relay's malformed answer or candidate just fails its own probe.
          if (s.kind === 'answer') finish({ reachable: false });
        }
      },
    };
  };
}

function selectedRemote(pc: InstanceType<typeof nodeDataChannel.PeerConnection>): string | undefined {
  try {
    const pair = pc.getSelectedCandidatePair();
    if (pair === null) return undefined;
    const { address, port } = pair.remote;
    return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
  } catch {
    return undefined; // only informative
  }
}
