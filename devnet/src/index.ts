export { ffmpegPath } from './ffmpeg.js';
export {
  DEFAULT_RENDITIONS,
  describeVod,
  generateVod,
  startLiveStream,
  type LiveStream,
  type Rendition,
  type Vod,
  type VodOptions,
  type VodRendition,
} from './sample-media.js';
export { serveStaticFile } from './static-files.js';
export { startChild, type Child, type ChildOptions } from './child-process.js';
export { NetworkMonitor, type NetworkSnapshot, type RelaySlot } from './network-monitor.js';
export { DEVNET_ACTION_HEADER, startWebServer, type PageConfig, type WebServer } from './web-server.js';
