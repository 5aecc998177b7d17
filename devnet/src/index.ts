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
