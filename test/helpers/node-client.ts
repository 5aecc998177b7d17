import { RelaycastClient, type RelaycastClientOptions } from '@relaycast/player-sdk';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { WebSocket } from 'ws';

/** Loopback WebRTC for node-datachannel: it ignores 127.0.0.1 unless told to bind there. */
export const LOOPBACK_RTC = { iceServers: [], bindAddress: '127.0.0.1' } as RTCConfiguration;

/**
 * node-datachannel's polyfill hands libdatachannel `turn:USER:PASS@host` strings, and
 * libdatachannel splits USER at the first ':' and percent-decodes both parts. TURN REST usernames
 * are "<expiry>:<id>" and base64 credentials hold '/', '+' and '=': percent-encoded they arrive
 * intact (a browser takes them as they are).
 */
class NodeRTCPeerConnection extends RTCPeerConnection {
  constructor(config?: RTCConfiguration) {
    super(
      config?.iceServers === undefined
        ? config
        : {
            ...config,
            iceServers: config.iceServers.map((s) =>
              s.username === undefined || s.credential === undefined
                ? s
                : { ...s, username: encodeURIComponent(s.username), credential: encodeURIComponent(String(s.credential)) },
            ),
          },
    );
  }
}

/** An SDK client wired to Node's WebSocket (ws) and WebRTC (node-datachannel's polyfill). */
export function nodeClient(options: Omit<RelaycastClientOptions, 'WebSocket' | 'RTCPeerConnection'>): RelaycastClient {
  return new RelaycastClient({
    rtcConfiguration: LOOPBACK_RTC,
    ...options,
    WebSocket: WebSocket as unknown as RelaycastClientOptions['WebSocket'],
    RTCPeerConnection: NodeRTCPeerConnection as unknown as RelaycastClientOptions['RTCPeerConnection'],
  });
}
