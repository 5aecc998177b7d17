import { RelaycastClient, type RelaycastClientOptions } from '@relaycast/player-sdk';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { WebSocket } from 'ws';

/** Loopback WebRTC for node-datachannel: it ignores 127.0.0.1 unless told to bind there. */
export const LOOPBACK_RTC = { iceServers: [], bindAddress: '127.0.0.1' } as RTCConfiguration;

/** An SDK client wired to Node's WebSocket (ws) and WebRTC (node-datachannel's polyfill). */
export function nodeClient(options: Omit<RelaycastClientOptions, 'WebSocket' | 'RTCPeerConnection'>): RelaycastClient {
  return new RelaycastClient({
    rtcConfiguration: LOOPBACK_RTC,
    ...options,
    WebSocket: WebSocket as unknown as RelaycastClientOptions['WebSocket'],
    RTCPeerConnection: RTCPeerConnection as unknown as RelaycastClientOptions['RTCPeerConnection'],
  });
}
