export { startRelay, type RelayNode, type RelayNodeOptions, type RelayStats } from './relay-node.js';
export { createOriginSegmentSource, type OriginSourceOptions } from './origin-segment-source.js';
export { serveChannel, type ChannelServerOptions, type ChannelSession } from './channel-server.js';
export { NodeDataChannelTransport, type NodeDataChannelTransportOptions } from './node-datachannel-transport.js';
export { RelayKeypair, loadKeypair, loadOrCreateKeypair, parseKeypairFile } from './keypair.js';
export { RelayTrackerClient, type RelayTrackerClientOptions } from './relay-tracker-client.js';
export type { SegmentRequest, SegmentSource, SegmentStream } from './segment-source.js';
export type { RelayDataChannel, RelayPeer, RelayTransport } from './transport.js';
