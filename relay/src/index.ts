export { startRelay, type RelayNode, type RelayNodeOptions, type RelayStats } from './relay-node.js';
export { createOriginSegmentSource, type OriginSourceOptions } from './origin-segment-source.js';
export { ChannelServer, type ChannelServerOptions, type ChannelServerStats, type ChannelSession } from './channel-server.js';
export { NodeDataChannelTransport, type NodeDataChannelTransportOptions } from './node-datachannel-transport.js';
export { RelayKeypair, loadKeypair, loadOrCreateKeypair, parseKeypairFile, type KeypairFileOptions } from './keypair.js';
export { TrackerClient, type RelayAdvertisement, type RelaySigner, type TrackerClientOptions } from './tracker-client.js';
export { parseCliArgs, resolveConfig, readConfigFile, type CliCommand, type RelayConfig } from './relay-config.js';
export type { SegmentRequest, SegmentSource, SegmentStream } from './segment-source.js';
export type { RelayDataChannel, RelayPeer, RelayTransport } from './transport.js';
