export {
  RelaycastClient,
  type RelaycastClientEvents,
  type RelaycastClientOptions,
  type RelaycastClientStats,
  type SegmentLoadedInfo,
} from './relaycast-client.js';
export type { PaymentsOptions } from './grant-source.js';
export type { ReceiptTotals } from './receipt-signer.js';
export type { FallbackInfo, IntegrityFailure, LoadOptions, LoadRequest, LoadResult } from './segment-loader.js';
export type { IntegrityOptions, NoDigestPolicy } from './segment-verifier.js';
export type { FallbackReason, IntegrityStats, RelayStatsEntry, SdkStatsSnapshot, SetupFailureCause, SetupStats, StartupStats } from './stats.js';
export type { StartupOptions } from './startup-policy.js';
export type { SdkLogger } from './logger.js';
export type { PlaybackStatsSnapshot } from './playback-monitor.js';
export type { TypedEmitter } from './typed-emitter.js';
export type { NetworkPath, RTCPeerConnectionConstructor } from './relay-connection.js';
export type { WebSocketConstructor } from './tracker-client.js';
export { swarmIdFromUrl, RelaycastError, ErrorCode, isRelaycastError } from '@relaycast/protocol';
