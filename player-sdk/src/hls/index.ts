// `@relaycast/player-sdk/hls`: the hls.js adapter, plus everything `@relaycast/player-sdk` exports
// (error codes, stats and event types), so an hls.js platform needs this one import.
export * from '../index.js';
export { RelaycastHls, type RelaycastHlsOptions, type RelaycastHlsStats } from './relaycast-hls.js';
export { createFragmentLoaderClass, type FragmentLoaderClass, type FragmentLoaderDeps } from './fragment-loader.js';
