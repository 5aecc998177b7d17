export { RelaycastHls, type RelaycastHlsOptions, type RelaycastHlsStats } from './relaycast-hls.js';
export { createFragmentLoaderClass, type FragmentLoaderDeps } from './fragment-loader.js';
